package icloudtest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/icloudtest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

const user, pass = "dave@icloud.com", "app-specific-password"

func start(t *testing.T, n int) *icloudtest.Server {
	t.Helper()
	s := icloudtest.Start(t)
	s.Dovecot.AddUser(t, user, pass)
	c, err := imapclient.DialInsecure(s.Dovecot.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		b := []byte(fmt.Sprintf("From: a@example.com\r\nSubject: %d\r\n\r\nhi\r\n", i))
		cmd := c.Append("INBOX", int64(len(b)), nil)
		cmd.Write(b)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func raw(t *testing.T, s *icloudtest.Server) *imapconn.Raw {
	t.Helper()
	r, err := imapconn.DialRaw(context.Background(), imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestQuirks(t *testing.T) {
	s := start(t, 3)
	r := raw(t, s)
	lines, err := r.Cmd("CAPABILITY")
	if err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "* CAPABILITY XAPPLEPUSHSERVICE ") {
		t.Fatalf("CAPABILITY: %q %v", lines, err)
	}
	caps := strings.Fields(lines[0])
	if !slices.Contains(caps, "QRESYNC") || !slices.Contains(caps, "CONDSTORE") || slices.Contains(caps, "ESEARCH") {
		t.Errorf("capabilities %v: want QRESYNC and CONDSTORE, no ESEARCH", caps)
	}

	if lines, err := r.Cmd("EXAMINE INBOX"); err != nil || slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "VANISHED") }) {
		t.Errorf("EXAMINE without QRESYNC: %q %v", lines, err)
	}
	if lines, err := r.Cmd("UID SEARCH ALL"); err != nil || !slices.Contains(lines, "* SEARCH 1 2 3") {
		t.Errorf("UID SEARCH (ok): %q %v", lines, err)
	}
	s.SetSearch(icloudtest.SearchInvalid)
	if lines, err := r.Cmd("UID SEARCH ALL"); err != nil || !slices.Equal(lines, []string{"* SEARCH 0 4294967295"}) {
		t.Errorf("UID SEARCH (invalid): %q %v", lines, err)
	}
	s.SetSearch(icloudtest.SearchOmitted)
	if lines, err := r.Cmd("UID SEARCH ALL"); err != nil || len(lines) != 0 {
		t.Errorf("UID SEARCH (omitted): %q %v", lines, err)
	}
	if s.Searches() != 2 || s.QResyncUsed() {
		t.Errorf("searches changed %d (want 2), QRESYNC used %v", s.Searches(), s.QResyncUsed())
	}

	if _, err := r.Cmd("ENABLE QRESYNC"); err != nil {
		t.Fatal(err)
	}
	lines, err = r.Cmd("EXAMINE INBOX (QRESYNC (1 1))")
	if err != nil || !slices.Contains(lines, "* VANISHED (EARLIER) 1:4294967295") {
		t.Errorf("EXAMINE (QRESYNC): %q %v, want the broken VANISHED", lines, err)
	}
	if !s.QResyncUsed() {
		t.Error("QRESYNC use not recorded")
	}
}
