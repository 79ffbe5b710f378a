package yahootest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/yahootest"
)

const user, pass = "carol@yahoo.com", "app-password"

func login(t *testing.T, s *yahootest.Server) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCapabilities(t *testing.T) {
	s := yahootest.Start(t, user, pass, yahootest.Options{})
	caps := login(t, s).Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapUIDPlus, imap.CapLiteralPlus, "XYMHIGHESTMODSEQ", "UIDONLY"} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	if caps.Has(imap.CapCondStore) {
		t.Error("CONDSTORE advertised")
	}
}

// TestClientBug: an APPEND of a message without a final CRLF is "BAD
// [CLIENTBUG] ..." and stores nothing; with the CRLF it is stored.
func TestClientBug(t *testing.T) {
	s := yahootest.Start(t, user, pass, yahootest.Options{})
	c := login(t, s)
	msg := []byte("From: a@example.com\r\nSubject: no final CRLF\r\n\r\nlast line")
	err := imaptest.TryAppend(c, "INBOX", msg)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeBad || ie.Code != "CLIENTBUG" {
		t.Fatalf("APPEND without the final CRLF: %v, want BAD [CLIENTBUG]", err)
	}
	if err := imaptest.TryAppend(c, "INBOX", append(msg, "\r\n"...)); err != nil {
		t.Fatalf("APPEND with the final CRLF: %v", err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("INBOX: %v %v, want 1 message", st, err)
	}
	if s.ClientBugs() != 1 {
		t.Errorf("ClientBugs %d, want 1", s.ClientBugs())
	}
}

func fill(t *testing.T, s *yahootest.Server, folder string, n int) {
	t.Helper()
	if folder != "INBOX" {
		if err := s.User().Create(folder, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		b := []byte(fmt.Sprintf("From: a@example.com\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i))
		if _, err := s.User().Append(folder, bytes.NewReader(b), &imap.AppendOptions{Time: time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
}

func uids(t *testing.T, c *imapclient.Client, set imap.NumSet) []imap.UID {
	t.Helper()
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []imap.UID
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

// TestLimitedView: a folder of 25 messages with a view of 10 shows its
// newest 10 to EXAMINE, FETCH 1:*, UID FETCH 1:* and SEARCH; STATUS
// tells 25; an explicit UID range reaches the older ones, 10 a command;
// after ENABLE UIDONLY the whole folder shows.
func TestLimitedView(t *testing.T) {
	s := yahootest.Start(t, user, pass, yahootest.Options{MessageLimit: 10})
	fill(t, s, "Big", 25)
	fill(t, s, "Small", 5)
	c := login(t, s)
	st, err := c.Status("Big", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 25 {
		t.Fatalf("STATUS: %v %v, want 25", st, err)
	}
	sel, err := c.Select("Big", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.NumMessages != 10 {
		t.Fatalf("EXAMINE: %v %v, want 10 EXISTS", sel, err)
	}
	if got := uids(t, c, imap.UIDSet{{Start: 1, Stop: 0}}); len(got) != 10 || got[0] != 16 || got[9] != 25 {
		t.Errorf("UID FETCH 1:* gave %v, want 16..25", got)
	}
	if got := uids(t, c, imap.SeqSet{{Start: 1, Stop: 0}}); len(got) != 10 || got[0] != 16 {
		t.Errorf("FETCH 1:* gave %v, want 16..25", got)
	}
	if got := uids(t, c, imap.UIDSet{{Start: 1, Stop: 25}}); len(got) != 10 || got[0] != 1 || got[9] != 10 {
		t.Errorf("UID FETCH 1:25 gave %v, want 1..10", got)
	}
	if got := uids(t, c, imap.UIDSet{{Start: 11, Stop: 15}}); len(got) != 5 || got[0] != 11 {
		t.Errorf("UID FETCH 11:15 gave %v, want 11..15", got)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 10 {
		t.Errorf("UID SEARCH ALL: %v %v, want 10 UIDs", sd, err)
	}
	if sel, err := c.Select("Small", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.NumMessages != 5 {
		t.Errorf("small folder: %v %v", sel, err)
	}

	// go-imap's client refuses to ENABLE what it does not know: raw.
	r, err := imapconn.DialRaw(context.Background(), imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if lines, err := r.Cmd("ENABLE UIDONLY"); err != nil || !slices.Contains(lines, "* ENABLED UIDONLY") {
		t.Fatalf("ENABLE UIDONLY: %q %v", lines, err)
	}
	if lines, err := r.Cmd("EXAMINE Big"); err != nil || !slices.Contains(lines, "* 25 EXISTS") {
		t.Fatalf("EXAMINE after ENABLE UIDONLY: %q %v, want 25 EXISTS", lines, err)
	}
	if lines, err := r.Cmd("UID FETCH 1:* (UID)"); err != nil || len(lines) != 25 {
		t.Errorf("UID FETCH 1:* after UIDONLY: %d lines, %v; want 25", len(lines), err)
	}
}
