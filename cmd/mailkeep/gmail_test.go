package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestGmailCLI: backup of a Gmail account stores each message once and
// ls, cat and search show every label as a folder; --gmail=false backs
// the account up folder by folder.
func TestGmailCLI(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	labels := [][]string{{gmailtest.LabelInbox, "Work"}, {"Work", "Work/2014", gmailtest.LabelStarred}, {gmailtest.LabelInbox}, {gmailtest.LabelSent, "Work"}}
	for i, l := range labels {
		body := fmt.Sprintf("From: s%d@example.com\r\nMessage-ID: <cli%d@example.com>\r\nSubject: gmail cli %d zebra%d\r\n\r\nbody %d\r\n", i, i, i, i, i)
		g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: l, Date: time.Date(2024, 3, 1, 0, i, 0, 0, time.UTC)})
	}
	url := "imap://" + user + "@" + g.Addr
	dir := filepath.Join(t.TempDir(), "gm")
	r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"fetched": 4`) {
		t.Fatalf("backup: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if want := int64(0); g.Downloaded() == want {
		t.Fatal("nothing downloaded")
	}
	var once int64
	for _, m := range g.Messages() {
		once += int64(len(m.Body))
	}
	if g.Downloaded() != once {
		t.Errorf("downloaded %d bytes, the messages once are %d", g.Downloaded(), once)
	}
	r = mailkeep(t, nil, "ls", "--archive", dir)
	for _, want := range []string{"INBOX", "Work/2014", "[Gmail]/All Mail", "[Gmail]/Starred", "[Gmail]/Sent Mail"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ls lacks %s:\n%s", want, r.stdout)
		}
	}
	// Work lists three messages, under All Mail's UIDs; cat gives the bytes.
	work, _, _ := g.Folder("Work")
	all, _, _ := g.Folder(gmailtest.AllMail)
	allUID := map[uint64]uint32{}
	for _, e := range all {
		allUID[e.MsgID] = uint32(e.UID)
	}
	r = mailkeep(t, nil, "ls", "--archive", dir, "--folder", "Work")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1+len(work) {
		t.Errorf("ls --folder Work: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, e := range work {
		m, _ := g.Message(e.MsgID)
		r = mailkeep(t, nil, "cat", "--archive", dir, "Work", fmt.Sprint(allUID[e.MsgID]))
		got, want := sha256.Sum256([]byte(r.stdout)), sha256.Sum256(m.Body)
		if r.code != 0 || hex.EncodeToString(got[:]) != hex.EncodeToString(want[:]) {
			t.Errorf("cat Work %d: %d %s", allUID[e.MsgID], r.code, r.stderr)
		}
	}
	// search: folder: and label: see the labels.
	if r = mailkeep(t, nil, "index", "--archive", dir); r.code != 0 {
		t.Fatalf("index: %d %s", r.code, r.stderr)
	}
	for q, n := range map[string]int{"folder:Work": 3, "label:work/2014": 1, "label:inbox": 2, "in:[Gmail]/Starred": 1, "zebra2 folder:INBOX": 1, "zebra2 folder:Work": 0} {
		r = mailkeep(t, nil, "search", "--archive", dir, "--json", q)
		if got := strings.Count(r.stdout, `"uid"`); r.code > 1 || got != n {
			t.Errorf("search %q: %d hits, want %d (exit %d)\n%s%s", q, got, n, r.code, r.stdout, r.stderr)
		}
	}
	if r = mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
		t.Errorf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Against the server: the views are not compared with the label
	// folders' own UIDs; nothing differs right after the backup.
	if r = mailkeep(t, pwEnv(), "verify", "--archive", dir, "--server", "--imap", url, "--tls", "none"); r.code != 0 {
		t.Errorf("verify --server: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = mailkeep(t, pwEnv(), "check", "--imap", url, "--tls", "none", "--archive", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "Gmail label") || !strings.Contains(r.stdout, "fetch 0 messages") {
		t.Errorf("check: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// serve: each label is a mailbox with its messages' bytes.
	sc := imaptest.Dial(t, startServe(t, nil, "--archive", dir), user, "x")
	msgs := fetchAll(t, sc, "Work", &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if len(msgs) != len(work) {
		t.Errorf("serve: Work holds %d messages, want %d", len(msgs), len(work))
	}
	for _, m := range msgs {
		if !strings.Contains(string(m.BodySection[0].Bytes), "gmail cli") {
			t.Errorf("serve: Work uid %d: %q", m.UID, m.BodySection[0].Bytes)
		}
	}
	sc.Logout().Wait()

	// --gmail=false: folder by folder, every label folder its own copy.
	off := filepath.Join(t.TempDir(), "off")
	before := g.Downloaded()
	r = mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", off, "--gmail=false", "--json")
	if r.code != 0 || g.Downloaded()-before <= once {
		t.Fatalf("--gmail=false: exit %d, downloaded %d (once: %d)\n%s", r.code, g.Downloaded()-before, once, r.stderr)
	}
	r = mailkeep(t, nil, "ls", "--archive", off, "--folder", "Work")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1+len(work) {
		t.Errorf("folder by folder ls --folder Work: %d\n%s", r.code, r.stdout)
	}
}
