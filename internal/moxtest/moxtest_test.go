package moxtest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/moxtest"
)

// TestCorpusRoundTrip appends the whole corpus to mox and reads every
// message back over TLS. mox keeps bytes, flags and INTERNALDATE, with two
// alterations pinned here: bare LF line ends become CRLF (as in Dovecot:
// "bare-lf", "mixed-eol"), and keywords are stored in lower case
// ("$Label1" comes back as "$label1", as in imapmemserver).
func TestCorpusRoundTrip(t *testing.T) {
	s := moxtest.Start(t)
	c := s.Dial(t)
	corpus := imaptest.Corpus()
	for _, m := range corpus {
		imaptest.Append(t, c, "Work/Sub", m.Flags, m.Date, m.Body)
	}
	tc := s.DialTLS(t)
	snap := imaptest.Snapshot(t, tc, true)
	got := snap["Work/Sub"]
	if len(got) != len(corpus) {
		t.Fatalf("Work/Sub holds %d messages, want %d; folders %v", len(got), len(corpus), keys(snap))
	}
	for i, m := range corpus {
		g := got[i]
		wantBody := moxtest.WantBody(m.Body)
		sum := sha256.Sum256(wantBody)
		if g.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: body differs:\n got %q\nwant %q", m.Name, trunc(g.Body), trunc(wantBody))
		}
		if g.Size != int64(len(wantBody)) {
			t.Errorf("%s: RFC822.SIZE %d, want %d", m.Name, g.Size, len(wantBody))
		}
		want := moxtest.WantFlags(m.Flags)
		if !slices.Equal(g.Flags, want) {
			t.Errorf("%s: flags %v, want %v", m.Name, g.Flags, want)
		}
		if !g.InternalDate.Equal(m.Date) {
			t.Errorf("%s: INTERNALDATE %v, want %v", m.Name, g.InternalDate, m.Date)
		}
	}
	// A new account's folders. mox lists INBOX as "Inbox"; go-imap's
	// client reports it as "INBOX".
	for _, f := range []string{"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/Sub"} {
		if _, ok := snap[f]; !ok {
			t.Errorf("folder %q missing; have %v", f, keys(snap))
		}
	}
}

// TestBadPassword: the account takes only the generated password.
func TestBadPassword(t *testing.T) {
	s := moxtest.Start(t)
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.User, s.Password+"x").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

// TestClose: after Close nothing listens and the directory is gone.
func TestClose(t *testing.T) {
	s := moxtest.Start(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := imapclient.DialInsecure(s.Addr, nil); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections", s.Addr)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// TestBinaryMissing: a MAILKEEP_MOX that is not an executable is reported as
// ErrNotInstalled (which Start turns into a skip, or a failure under CI).
func TestBinaryMissing(t *testing.T) {
	t.Setenv("MAILKEEP_MOX", t.TempDir()+"/no-such-mox")
	if _, err := moxtest.Binary(); !errors.Is(err, moxtest.ErrNotInstalled) {
		t.Fatalf("Binary() error %v, want ErrNotInstalled", err)
	}
	if _, err := moxtest.New(); !errors.Is(err, moxtest.ErrNotInstalled) {
		t.Fatalf("New() error %v, want ErrNotInstalled", err)
	}
}
