package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestRestoreWiped: a restore onto an account that was wiped since the
// last restore brings every message back and says how many were recorded
// but missing (text and --json).
func TestRestoreWiped(t *testing.T) {
	dv := startDovecot(t)
	dv.AddUser(t, "bob", pass)
	dv.AddUser(t, "carol", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := 0; i < 30; i++ {
		body := "Message-ID: <w" + string(rune('a'+i%26)) + strings.Repeat("x", i) + "@t>\r\nSubject: wiped\r\n\r\nbody\r\n"
		imaptest.Append(t, c, []string{"INBOX", "Work", "Work/Deep"}[i%3], []string{`\Seen`}, time.Date(2022, 1, 1, 0, i, 0, 0, time.UTC), []byte(body))
	}
	want := imaptest.Snapshot(t, c, false)
	c.Close()
	dir := filepath.Join(t.TempDir(), "a")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	restoreTo := func(who, archive string) (restoreSummary, result) {
		t.Helper()
		r := mailkeep(t, pwEnv(), "restore", "--archive", archive, "--imap", "imap://"+who+"@"+dv.IMAPAddr, "--tls", "none", "--json")
		var sum restoreSummary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 {
			t.Fatalf("restore to %s: exit %d, %v\n%s\n%s", who, r.code, err, r.stdout, r.stderr)
		}
		if d := imaptest.Diff(want, imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, who, pass), false), nil); d != "" {
			t.Fatalf("restore to %s:\n%s", who, d)
		}
		return sum, r
	}
	if sum, _ := restoreTo("bob", dir); sum.Appended != 30 || sum.Missing != 0 {
		t.Fatalf("first restore: %+v", sum)
	}
	// The account is wiped: deleted and created again by an administrator.
	if err := os.RemoveAll(filepath.Dir(dv.Maildir("bob"))); err != nil {
		t.Fatal(err)
	}
	if err := dv.CreateUser("bob", pass); err != nil {
		t.Fatal(err)
	}
	sum, r := restoreTo("bob", dir)
	if sum.Appended != 30 || sum.Missing != 30 || sum.Skipped != 0 || !strings.Contains(r.stderr, "appended 30 messages (30 of them recorded as restored but missing from the destination)") {
		t.Fatalf("restore onto the wiped account: %+v\n%s", sum, r.stderr)
	}
	if sum, _ := restoreTo("bob", dir); sum.Appended != 0 || sum.Missing != 0 || sum.Skipped != 30 {
		t.Fatalf("rerun: %+v", sum)
	}
}

// TestRestoreCollisions: Dovecot's Child and INBOX/Child would both be
// INBOX.Child on a server whose namespace is INBOX's children: restore
// refuses (exit 2) naming both, and nothing is created; with
// --rename-collisions the second becomes "INBOX.Child (2)".
func TestRestoreCollisions(t *testing.T) {
	dv := startDovecot(t)
	cyr := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	cyr.AddUser(t, "bob", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i, f := range []string{"INBOX", "Child", "INBOX/Child"} {
		imaptest.Append(t, c, f, nil, time.Date(2022, 1, 1, 0, i, 0, 0, time.UTC), []byte("Subject: "+f+"\r\n\r\nin "+f+"\r\n"))
	}
	c.Close()
	dir := filepath.Join(t.TempDir(), "a")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	dst := "imap://bob@" + cyr.IMAPAddr
	r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", dst, "--tls", "none")
	if r.code != 2 || !strings.Contains(r.stderr, `folders "Child" and "INBOX/Child" would all be restored into "INBOX.Child"`) {
		t.Fatalf("restore with a collision: exit %d\n%s", r.code, r.stderr)
	}
	if got := imaptest.Snapshot(t, imaptest.Dial(t, cyr.IMAPAddr, "bob", pass), false); len(got) != 1 || len(got["INBOX"]) != 0 {
		t.Fatalf("refused restore changed the destination: %v", got)
	}
	r = mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", dst, "--tls", "none", "--rename-collisions", "--verify", "--json")
	var sum restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || sum.Appended != 3 || len(sum.Renamed) != 1 || sum.Renamed[0].Dest != "INBOX.Child (2)" ||
		!strings.Contains(r.stderr, `folder "INBOX/Child" restored as "INBOX.Child (2)"`) {
		t.Fatalf("--rename-collisions: exit %d %v %+v\n%s", r.code, err, sum, r.stderr)
	}
	exact := 0
	for _, fr := range sum.FolderReports {
		if !fr.Verified || fr.Checked != fr.Appended {
			t.Errorf("--verify: %+v", fr)
		}
		exact += fr.Exact
	}
	if exact != 3 || strings.Count(r.stderr, "verified: 1 exact, 0 altered, 0 refused") != 3 {
		t.Errorf("--verify: %d exact\n%s", exact, r.stderr)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, cyr.IMAPAddr, "bob", pass), false)
	if len(got["INBOX.Child"]) != 1 || len(got["INBOX.Child (2)"]) != 1 || len(got["INBOX"]) != 1 {
		t.Fatalf("after --rename-collisions: %v", got)
	}
}
