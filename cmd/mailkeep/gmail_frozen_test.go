package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// frozenBody is message i's bytes in the upgraded account.
func frozenBody(i int) []byte {
	return []byte(fmt.Sprintf("From: f%d@example.com\r\nMessage-ID: <frozen%d@example.com>\r\nSubject: frozen %d wombat%d\r\n\r\nbody %d\r\n", i, i, i, i, i))
}

// deleteForever removes a message from the Gmail double as a client
// would: expunged from All Mail (into Trash), then from Trash.
func deleteForever(t *testing.T, g *gmailtest.Server, id uint64) {
	t.Helper()
	c := imaptest.Dial(t, g.Addr, user, pass)
	defer c.Close()
	for _, f := range []string{gmailtest.AllMail, gmailtest.Trash} {
		entries, _, _ := g.Folder(f)
		var uids imap.UIDSet
		for _, e := range entries {
			if e.MsgID == id {
				uids.AddNum(e.UID)
			}
		}
		if len(uids) == 0 {
			t.Fatalf("message %d not in %q", id, f)
		}
		if _, err := c.Select(f, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := g.Message(id); ok {
		t.Fatalf("message %d still on the double", id)
	}
}

// upgradedArchive backs a Gmail account up folder by folder, deletes two
// messages on the server (one labelled Old only, one in INBOX only), and
// backs it up again in Gmail mode: the old label folders become frozen
// folders, and the two messages are only in "[before Gmail mode]/Old" and
// "[before Gmail mode]/INBOX". It returns the double, the archive and the
// bodies (by index) that must come out of a restore, with where.
func upgradedArchive(t *testing.T) (*gmailtest.Server, string) {
	t.Helper()
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	labels := [][]string{
		{gmailtest.LabelInbox, "Old"},      // 0: twins in All Mail
		{"Old"},                            // 1: deleted: only in the frozen Old
		{gmailtest.LabelInbox},             // 2: deleted: only in the frozen INBOX
		{"Old", "Work"},                    // 3: twins
		{gmailtest.LabelInbox, "Old"},      // 4: moved to Trash: twin in Trash
		{"Old", gmailtest.LabelInbox, "X"}, // 5: deleted: only in the frozen INBOX, Old and X
	}
	ids := make([]uint64, len(labels))
	for i, l := range labels {
		ids[i] = g.Add(gmailtest.NewMessage{Body: frozenBody(i), Labels: l, Flags: []imap.Flag{imap.FlagSeen}, Date: time.Date(2013, 2, 1, 0, i, 0, 0, time.UTC)})
	}
	dir := filepath.Join(t.TempDir(), "up")
	url := "imap://" + user + "@" + g.Addr
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--gmail=false", "--quiet"); r.code != 0 {
		t.Fatalf("folder-by-folder backup: %d %s", r.code, r.stderr)
	}
	for _, i := range []int{1, 2, 5} {
		deleteForever(t, g, ids[i])
	}
	if err := g.AddLabels(ids[4], gmailtest.LabelTrash); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveLabels(ids[4], gmailtest.LabelInbox, "Old"); err != nil {
		t.Fatal(err)
	}
	g.Add(gmailtest.NewMessage{Body: frozenBody(6), Labels: []string{"X"}, Date: time.Date(2013, 2, 1, 0, 6, 0, 0, time.UTC)}) // keeps X a label
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatalf("Gmail-mode backup: %d %s", r.code, r.stderr)
	}
	r := mailkeep(t, nil, "ls", "--archive", dir)
	for _, f := range []string{"[before Gmail mode]/Old", "[before Gmail mode]/INBOX"} {
		if !strings.Contains(r.stdout, f) {
			t.Fatalf("ls lacks %q: the archive was not upgraded as expected\n%s", f, r.stdout)
		}
	}
	return g, dir
}

// TestGmailFrozenRestore: an upgraded archive restored onto Dovecot
// (--labels folders and keywords), onto Gmail and exported: the frozen
// folders' copies of messages All Mail or Trash hold are not restored
// again, the messages only they hold are, once, where their labels go;
// no "[before Gmail mode]" folder is made; reruns append nothing.
func TestGmailFrozenRestore(t *testing.T) {
	g, dir := upgradedArchive(t)
	body := func(i int) string { return sum256(frozenBody(i)) }
	want := map[int][]string{
		0: {gmailtest.Inbox, "Old"},
		1: {"Old"},
		2: {gmailtest.AllMail, gmailtest.Inbox},
		3: {"Old", "Work"},
		4: {gmailtest.Trash},
		5: {gmailtest.Inbox, "Old", "X"},
		6: {"X"},
	}
	n := 0
	for _, w := range want {
		sort.Strings(w)
		n += len(w)
	}
	check := func(how string, where map[string][]string) {
		t.Helper()
		for i, w := range want {
			if !slices.Equal(where[body(i)], w) {
				t.Errorf("%s: message %d in %q, want %q", how, i, where[body(i)], w)
			}
		}
		for k, fl := range where {
			for _, f := range fl {
				if strings.Contains(f, "before Gmail mode") {
					t.Errorf("%s: %s… restored into %q", how, k[:8], f)
				}
			}
		}
	}

	dv := startDovecot(t)
	dv.AddUser(t, "bob", pass)
	dv.AddUser(t, "carol", pass)
	r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr, "--tls", "none", "--dry-run")
	// It names the old folders' messages where `show` finds them, and
	// makes no folder of them.
	if out := r.stdout + r.stderr; r.code != 0 || strings.Contains(out, `would create folder "[before Gmail mode]`) || strings.Contains(out, `would append to "[before Gmail mode]`) ||
		!strings.Contains(out, `would append to "Old" from "Old": UID 2 in "[before Gmail mode]/Old"`) {
		t.Errorf("--dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sum := restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr)
	where, _ := byBody(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "bob", pass), false))
	check("--labels folders", where)
	if sum.Appended != n {
		t.Errorf("--labels folders: appended %d, want %d", sum.Appended, n)
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr); sum.Appended != 0 {
		t.Errorf("--labels folders rerun: %+v", sum)
	}

	sum = restoreJSON(t, "--archive", dir, "--imap", "imap://carol@"+dv.IMAPAddr, "--labels", "keywords")
	where, flags := byBody(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "carol", pass), false))
	if sum.Appended != len(want) {
		t.Errorf("--labels keywords: appended %d, want %d", sum.Appended, len(want))
	}
	for i, kws := range map[int][]string{1: {"$label-Old"}, 2: {"$label-+5CInbox"}, 5: {"$label-+5CInbox", "$label-Old", "$label-X"}} {
		fl := flags[body(i)+" "+gmailtest.AllMail]
		if !slices.Equal(where[body(i)], []string{gmailtest.AllMail}) {
			t.Errorf("--labels keywords: message %d in %q", i, where[body(i)])
		}
		for _, kw := range kws {
			if !slices.ContainsFunc(fl, func(f string) bool { return strings.EqualFold(f, kw) }) {
				t.Errorf("--labels keywords: message %d lacks %s: %q", i, kw, fl)
			}
		}
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", "imap://carol@"+dv.IMAPAddr, "--labels", "keywords"); sum.Appended != 0 {
		t.Errorf("--labels keywords rerun: %+v", sum)
	}

	// Onto Gmail: each message once, the orphans with their labels.
	dst := gmailtest.Start(t, user, pass, gmailtest.Options{})
	url := "imap://" + user + "@" + dst.Addr
	sum = restoreJSON(t, "--archive", dir, "--imap", url)
	got := gmailStateOf(dst)
	wantGmail := gmailState{}
	for _, m := range g.Messages() {
		wantGmail[sum256(m.Body)] = ""
	}
	for i, l := range map[int][]string{1: {"Old"}, 2: {gmailtest.LabelInbox}, 5: {"Old", "X", gmailtest.LabelInbox}} {
		wantGmail[body(i)] = fmt.Sprintf("labels %q flags %q date %s", l, []string{`\Seen`}, time.Date(2013, 2, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339))
	}
	src := gmailStateOf(g)
	for k := range wantGmail {
		if wantGmail[k] == "" {
			wantGmail[k] = src[k]
		}
	}
	if d := diffStates(wantGmail, got); d != "" {
		t.Errorf("onto Gmail:\n%s", d)
	}
	for _, f := range dst.Folders() {
		if strings.Contains(f, "before Gmail mode") {
			t.Errorf("onto Gmail: label %q made", f)
		}
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", url); sum.Appended != 0 || sum.LabelsStored != 0 {
		t.Errorf("onto Gmail, rerun: %+v", sum)
	}

	// Export, labels as folders.
	to := filepath.Join(t.TempDir(), "eml")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "eml", "--quiet"); r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	where = emlFolders(t, to)
	for k := range where {
		sort.Strings(where[k])
	}
	check("export", where)
	// Export, labels as keywords: the orphans in All Mail with theirs.
	to = filepath.Join(t.TempDir(), "mbox")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "mbox", "--labels", "keywords", "--quiet"); r.code != 0 {
		t.Fatalf("export --labels keywords: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(to, "[Gmail]", "All Mail.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\nSubject: frozen "); n != 6 {
		t.Errorf("export --labels keywords: All Mail.mbox holds %d messages, want 6", n)
	}
	for _, kw := range []string{"X-Keywords: $label-Old\r\nFrom: f1@", "X-Keywords: $label-+5CInbox\r\nFrom: f2@", "X-Keywords: $label-+5CInbox $label-Old $label-X\r\nFrom: f5@"} {
		if !strings.Contains(string(b), kw) {
			t.Errorf("export --labels keywords: All Mail.mbox lacks %q", kw)
		}
	}
	if ents, _ := os.ReadDir(to); len(ents) != 1 {
		t.Errorf("export --labels keywords wrote %d entries at the top, want [Gmail] alone", len(ents))
	}
	// The frozen folders stay listed in the archive.
	r = mailkeep(t, nil, "ls", "--archive", dir, "--folder", "[before Gmail mode]/Old")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1+5 {
		t.Errorf("ls --folder '[before Gmail mode]/Old': %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
