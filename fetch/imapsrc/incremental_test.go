package imapsrc_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestIncrementalSendsOnlyTheChange: on a CONDSTORE server, a run after
// new mail or flag changes in one folder of several sends, beyond the
// listing, one EXAMINE of that folder, one UID FETCH of what changed since
// the recorded HIGHESTMODSEQ (CHANGEDSINCE, never a 1:* sweep of every
// message's flags), the new bodies, and nothing else: no UID SEARCH when
// EXISTS equals the catalog's live messages plus the new ones, no STATUS
// or second connection for the folder. When one message is expunged and
// one appended (EXISTS unchanged), the counts no longer add up and the
// expunge is still found by UID SEARCH.
func TestIncrementalSendsOnlyTheChange(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := range 3 {
		imaptest.Create(t, c, fmt.Sprintf("Box%d", i))
		imaptest.Append(t, c, fmt.Sprintf("Box%d", i), nil, time.Now(), []byte(fmt.Sprintf("Subject: b%d\r\n\r\nb\r\n", i)))
	}
	for i := range 20 {
		imaptest.Append(t, c, "INBOX", []string{`\Seen`}, time.Now(), []byte(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)))
	}
	rec := startRecorder(t, dv.IMAPAddr)
	s := server{name: "dovecot", addr: rec.addr, delim: '/', condstore: true, dv: dv}
	dir := filepath.Join(t.TempDir(), "a")
	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 23 {
		t.Fatalf("first run fetched %d, want 23", st.Fetched)
	}
	rec.take()

	// want checks one run's commands: the preamble, one LIST, one LOGOUT
	// and exactly the folder commands given (name and a part of the line).
	want := func(run string, folderCmds ...string) {
		t.Helper()
		lines := rec.takeLines()
		var got []string
		lists, logins, logouts := 0, 0, 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			switch strings.ToUpper(f[1]) {
			case "LOGIN", "AUTHENTICATE":
				logins++
			case "CAPABILITY", "NAMESPACE":
			case "LIST":
				lists++
			case "LOGOUT":
				logouts++
			default:
				got = append(got, strings.Join(f[1:], " "))
			}
		}
		if lists != 1 || logins != 1 || logouts != 1 {
			t.Errorf("%s: %d LIST, %d logins, %d LOGOUT, want 1 each (one connection): %q", run, lists, logins, logouts, lines)
		}
		if len(got) != len(folderCmds) {
			t.Fatalf("%s: folder commands %q, want %d like %q", run, got, len(folderCmds), folderCmds)
		}
		for i, w := range folderCmds {
			if !strings.Contains(strings.ToUpper(got[i]), strings.ToUpper(w)) {
				t.Errorf("%s: command %d is %q, want one containing %q (all: %q)", run, i, got[i], w, got)
			}
		}
	}

	// Two new messages.
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: new1\r\n\r\nx\r\n"))
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: new2\r\n\r\ny\r\n"))
	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 2 || st.FlagChanges+st.Expunged != 0 {
		t.Errorf("after two new messages: %+v", st)
	}
	want("+2 new", "EXAMINE INBOX", "CHANGEDSINCE", "UID FETCH 21:22 (UID BODY.PEEK[])")

	// Flag changes on three.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store(t, c, imap.UIDSetNum(3, 7, 11), imap.StoreFlagsAdd, `\Flagged`)
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if st := backup(t, s, dir, archive.MboxZstd); st.FlagChanges != 3 || st.Fetched+st.Expunged != 0 {
		t.Errorf("after three flag changes: %+v", st)
	}
	want("3 flag changes", "EXAMINE INBOX", "CHANGEDSINCE")

	// One expunged and one new: EXISTS is what the catalog held.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store(t, c, imap.UIDSetNum(5), imap.StoreFlagsAdd, `\Deleted`)
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: new3\r\n\r\nz\r\n"))
	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 1 || st.Expunged != 1 || st.FlagChanges != 0 {
		t.Errorf("after one expunged and one new (EXISTS unchanged): %+v, want 1 fetched, 1 expunged", st)
	}
	want("1 expunged + 1 new", "EXAMINE INBOX", "CHANGEDSINCE", "UID SEARCH", "UID FETCH 23 (UID BODY.PEEK[])")
	compare(t, s, c, dir)

	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched+st.FlagChanges+st.Expunged != 0 {
		t.Errorf("run after did work: %+v", st)
	}
	want("no-op")
}
