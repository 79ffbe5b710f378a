package main

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFailedFirstRunDoesNotBind: a first backup that never logs in (the
// host mistyped, a wrong user or password) leaves nothing that binds the
// archive directory to that account: the corrected command works.
func TestFailedFirstRunDoesNotBind(t *testing.T) {
	dv := startDovecot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := filepath.Join(t.TempDir(), "a")
	for _, url := range []string{
		"imap://" + user + "@localhost:" + itoa(closed), // nothing listens: like a mistyped host
		"imap://mallory@" + dv.IMAPAddr,                 // login refused
	} {
		r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		if r.code == 0 {
			t.Fatalf("%s: exit 0", url)
		}
	}
	// The corrected command may also choose another format: nothing was
	// stored yet.
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet", "--format", "maildir")
	if r.code != 0 {
		t.Fatalf("corrected command after failed first runs: exit %d: %s", r.code, r.stderr)
	}
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet", "--format", "mbox"); r.code == 0 {
		t.Fatal("an archive holding mail changed format")
	}
	// Now it is bound: another account is refused.
	r = mailkeep(t, pwEnv(), "backup", "--imap", "imap://bob@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet")
	if r.code != exitUsage || !strings.Contains(r.stderr, "belongs to imap:"+user+"@127.0.0.1") {
		t.Fatalf("other account on a bound archive: exit %d: %s", r.code, r.stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
