package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestRestoreKilledAndResumed kills restores at random instants, then lets
// one finish: the destination holds every message exactly once.
func TestRestoreKilledAndResumed(t *testing.T) {
	dv := startDovecot(t)
	dv.AddUser(t, "bob", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := 0; i < 150; i++ {
		body := fmt.Sprintf("Message-ID: <r%d@t>\r\nSubject: %d\r\n\r\n%s\r\n", i, i, strings.Repeat("restore me ", 50+i*20))
		imaptest.Append(t, c, []string{"INBOX", "Sent", "Deep/er/folder"}[i%3], []string{`\Seen`, "$Label"}[:1+i%2], time.Date(2022, 1, 1, 0, i, 0, 0, time.UTC), []byte(body))
	}
	want := imaptest.Snapshot(t, c, false)
	dir := filepath.Join(t.TempDir(), "a")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	dst := "imap://bob@" + dv.IMAPAddr
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 8; i++ {
		cmd := exec.Command(bin, "restore", "--archive", dir, "--imap", dst, "--tls", "none", "--quiet")
		cmd.Env = append(os.Environ(), pwEnv()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+rng.IntN(200)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", dst, "--tls", "none", "--json")
	if r.code != 0 {
		t.Fatalf("final restore: exit %d: %s", r.code, r.stderr)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "bob", pass), false)
	if d := imaptest.Diff(want, got, nil); d != "" {
		t.Fatalf("after killed restores:\n%s", d)
	}
	// Once more: nothing to do.
	r = mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", dst, "--tls", "none", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"appended": 0`) {
		t.Fatalf("rerun: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// --dry-run lists, changes nothing, exit 0.
	r = mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--prefix", "Copy", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, `would create folder "Copy/Sent"`) || strings.Count(r.stdout, "would append") != 150 || strings.Contains(r.stderr, "refuses") {
		t.Fatalf("dry run: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if _, ok := imaptest.Snapshot(t, c, false)["Copy"]; ok {
		t.Fatal("dry run created a folder")
	}
}

// TestPOP3CLI: backup with --delete, killed between download and delete
// many times, loses nothing and stores nothing twice; the server keeps
// every message until it is archived.
func TestPOP3CLI(t *testing.T) {
	var msgs [][]byte
	for i := 0; i < 60; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Subject: pop %d\r\nReceived: from a by b; Mon, 2 Mar 2026 10:%02d:00 +0000\r\n\r\n%s\r\n", i, i%60, strings.Repeat(".dotted line\r\n", 100+i*50))))
	}
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	dir := filepath.Join(t.TempDir(), "pop")
	url := "pop3://" + user + "@" + srv.Addr

	r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete", "--dry-run")
	if r.code != 0 || len(srv.Deleted()) != 0 || strings.Count(r.stdout, "would delete") != len(msgs) {
		t.Fatalf("dry run: exit %d, deleted %d, stdout %q %s", r.code, len(srv.Deleted()), r.stdout, r.stderr)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 6; i++ {
		cmd := exec.Command(bin, "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete", "--quiet")
		cmd.Env = append(os.Environ(), pwEnv()...)
		cmd.Start()
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	r = mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete", "--json")
	if r.code != 0 {
		t.Fatalf("final run: %d %s", r.code, r.stderr)
	}
	if left := srv.Messages(); len(left) != 0 {
		t.Fatalf("%d messages left on the server", len(left))
	}
	r = mailkeep(t, nil, "ls", "--archive", dir, "--folder", "INBOX", "--expunged")
	if got := strings.Count(r.stdout, "\n") - 1; got != len(msgs) {
		t.Fatalf("archive lists %d messages, want %d exactly once each:\n%s", got, len(msgs), r.stdout)
	}
	// A POP3 archive restores like any other (expunged ones included, since
	// --delete removed them all from the server).
	dv := startDovecot(t)
	r = mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--include-expunged", "--quiet")
	if r.code != 0 {
		t.Fatalf("restore of the POP3 archive: %d %s", r.code, r.stderr)
	}
	restored := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, user, pass), true)["INBOX"]
	if len(restored) != len(msgs) {
		t.Fatalf("restored %d of %d POP3 messages", len(restored), len(msgs))
	}
	for i, m := range restored {
		if string(m.Body) != string(msgs[i]) {
			t.Errorf("restored POP3 message %d differs", i)
		}
	}
	for i, uidl := range []string{"uid-0001", "uid-0060"} {
		r = mailkeep(t, nil, "cat", "--archive", dir, "INBOX", uidl)
		want := msgs[[]int{0, 59}[i]]
		if r.code != 0 || r.stdout != string(want) {
			t.Errorf("cat %s: exit %d, %d bytes, want %d (%s)", uidl, r.code, len(r.stdout), len(want), r.stderr)
		}
	}
}
