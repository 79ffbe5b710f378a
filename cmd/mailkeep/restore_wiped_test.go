package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
