package mstest_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/mstest"
)

const user, pass = "alice@contoso.onmicrosoft.com", "pw"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func login(t *testing.T, s *mstest.Server) *imapclient.Client {
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

// raw logs in through mailkeep's raw connection (3 commands: CAPABILITY,
// LOGIN, CAPABILITY).
func raw(t *testing.T, s *mstest.Server) *imapconn.Raw {
	t.Helper()
	r, err := imapconn.DialRaw(context.Background(), imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func msg(n int, size int) []byte {
	b := fmt.Sprintf("From: bob@example.com\r\nSubject: message %d\r\n\r\n", n)
	for len(b) < size {
		b += "body text\r\n"
	}
	return []byte(b)
}

func TestNoCondstore(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{})
	c := login(t, s)
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapUIDPlus, imap.CapMove, imap.CapLiteralPlus, imap.CapIdle, imap.CapNamespace} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	for _, no := range []imap.Cap{imap.CapCondStore, imap.CapQResync, imap.CapIMAP4rev2, imap.CapAppendLimit, imap.CapEnable} {
		if caps.Has(no) {
			t.Errorf("capability %s advertised; Microsoft 365 has none", no)
		}
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err == nil {
		t.Error("SELECT (CONDSTORE) succeeded")
	}
}

var throttled = "BAD Request is throttled. Suggested Backoff Time: %d milliseconds"

func TestThrottle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	s := mstest.Start(t, user, pass, mstest.Options{
		Throttle: mstest.Throttle{Commands: 5, Window: time.Minute, Backoff: 300 * time.Second},
		Now:      clk.Now,
	})
	r := raw(t, s) // 3 commands
	for i := range 2 {
		if _, err := r.Cmd("NOOP"); err != nil {
			t.Fatalf("command %d: %v", 4+i, err)
		}
	}
	want := func(ms int) {
		t.Helper()
		_, err := r.Cmd("NOOP")
		if err == nil || statusLine(err) != fmt.Sprintf(throttled, ms) {
			t.Fatalf("throttled NOOP: %v, want %q", err, fmt.Sprintf(throttled, ms))
		}
	}
	want(300000)
	clk.Advance(100 * time.Second)
	want(200000)

	// A LITERAL+ APPEND refused while throttled: its literal is not taken
	// as commands, and nothing is stored.
	tag := r.NextTag()
	fmt.Fprintf(r.W, "%s APPEND INBOX {7+}\r\nA1 NOOP\r\n", tag)
	r.W.Flush()
	if _, _, err := r.ReadTagged(tag); err == nil || statusLine(err) != fmt.Sprintf(throttled, 200000) {
		t.Fatalf("throttled APPEND: %v", err)
	}
	clk.Advance(200 * time.Second)
	lines, err := r.Cmd("NOOP")
	if err != nil || len(lines) != 0 {
		t.Fatalf("after the backoff: %q %v", lines, err)
	}
	if d, _ := s.User().Status("INBOX", &imap.StatusOptions{NumMessages: true}); *d.NumMessages != 0 {
		t.Errorf("throttled APPEND stored %d messages", *d.NumMessages)
	}
}

func TestThrottleBye(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	s := mstest.Start(t, user, pass, mstest.Options{
		Throttle:      mstest.Throttle{Commands: 3, Window: time.Minute, Backoff: 89117 * time.Millisecond},
		ByeOnThrottle: true,
		Now:           clk.Now,
	})
	r := raw(t, s)
	lines, err := r.Cmd("NOOP")
	if err == nil || statusLine(err) != fmt.Sprintf(throttled, 89117) {
		t.Fatalf("4th command: %v", err)
	}
	if _, err := r.Cmd("NOOP"); err == nil {
		t.Fatalf("connection alive after the throttle BYE (%q)", lines)
	}
}

func TestErrorsDisconnect(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{})
	r := raw(t, s)
	for i := 1; i < mstest.MaxErrors; i++ {
		if _, err := r.Cmd("SELECT NoSuchFolder"); err == nil {
			t.Fatalf("error %d: SELECT of a missing folder succeeded", i)
		}
	}
	if _, err := r.Cmd("NOOP"); err != nil {
		t.Fatalf("after %d errors: %v", mstest.MaxErrors-1, err)
	}
	tag := r.NextTag()
	fmt.Fprintf(r.W, "%s SELECT NoSuchFolder\r\n", tag)
	r.W.Flush()
	if _, _, err := r.ReadTagged(tag); err == nil {
		t.Fatal("10th error: SELECT succeeded")
	}
	lines, err := r.Cmd("NOOP")
	if err == nil || !slices.Contains(lines, "* BYE Connection closed. 14") {
		t.Errorf("after the 10th error: %q %v, want BYE and a closed connection", lines, err)
	}
}

func TestAppendLimit(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{AppendLimit: 1000})
	c := login(t, s)
	for _, size := range []int{900, 2000, 9000} {
		b := msg(size, size)
		cmd := c.Append("INBOX", int64(len(b)), nil)
		cmd.Write(b)
		cmd.Close()
		_, err := cmd.Wait()
		var ie *imap.Error
		switch {
		case size <= 1000 && err != nil:
			t.Errorf("APPEND of %d bytes: %v", size, err)
		case size > 1000 && (!errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Text != "Maximum size of appendable message has been exceeded."):
			t.Errorf("APPEND of %d bytes: %v, want NO Maximum size of appendable message has been exceeded.", size, err)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("connection after refused APPENDs: %v", err)
	}
	if d, _ := s.User().Status("INBOX", &imap.StatusOptions{NumMessages: true}); *d.NumMessages != 1 {
		t.Errorf("%d messages stored, want 1", *d.NumMessages)
	}
}

func TestBumpUIDValidity(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{})
	c := login(t, s)
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range 3 {
		b := msg(i, 100)
		cmd := c.Append("Archive", int64(len(b)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, imap.Flag("$Label" + fmt.Sprint(i))}, Time: when})
		cmd.Write(b)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Delete one so that the old UIDs are not 1..n.
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	fetch := func() []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	before := fetch()
	oldV, _ := s.UIDValidity("Archive")
	inboxV, _ := s.UIDValidity("INBOX")
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	if err := s.BumpUIDValidity("Archive"); err != nil {
		t.Fatal(err)
	}
	data, err := c.Select("Archive", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if data.UIDValidity == oldV || data.NumMessages != 2 {
		t.Fatalf("after the bump: UIDVALIDITY %d (was %d), %d messages", data.UIDValidity, oldV, data.NumMessages)
	}
	if v, _ := s.UIDValidity("INBOX"); v != inboxV {
		t.Errorf("INBOX's UIDVALIDITY changed too")
	}
	after := fetch()
	for i := range after {
		if after[i].UID != imap.UID(i+1) {
			t.Errorf("message %d: UID %d after the bump, want %d", i, after[i].UID, i+1)
		}
		if !reflect.DeepEqual(sorted(after[i].Flags), sorted(before[i].Flags)) || !after[i].InternalDate.Equal(before[i].InternalDate) ||
			string(after[i].FindBodySection(&imap.FetchItemBodySection{})) != string(before[i].FindBodySection(&imap.FetchItemBodySection{})) {
			t.Errorf("message %d changed in the bump: %+v -> %+v", i, before[i], after[i])
		}
	}
	if before[0].UID == 1 {
		t.Errorf("old UIDs started at 1; the test wants them different from the new ones")
	}
}

func sorted(f []imap.Flag) []imap.Flag {
	f = slices.Clone(f)
	slices.Sort(f)
	return f
}

func TestFailSelects(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{})
	c := login(t, s)
	s.FailSelects(1)
	_, err := c.Select("INBOX", nil).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeBad || ie.Text != "User is authenticated but not connected." {
		t.Fatalf("SELECT: %v, want BAD User is authenticated but not connected.", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("second SELECT: %v", err)
	}
}

// statusLine is a tagged NO or BAD as the server sent it ("BAD [CODE]
// text"): imapconn's raw connection returns it as an *imap.Error.
func statusLine(err error) string {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return err.Error()
	}
	s := string(ie.Type)
	if ie.Code != "" {
		s += " [" + string(ie.Code) + "]"
	}
	return s + " " + ie.Text
}

func TestThrottleAppends(t *testing.T) {
	s := mstest.Start(t, user, pass, mstest.Options{ThrottleAppends: 3, AppendBackoff: 4500 * time.Millisecond})
	r := raw(t, s)
	for i := 1; i <= 6; i++ {
		tag := r.NextTag()
		fmt.Fprintf(r.W, "%s APPEND INBOX {7+}\r\nA1 NOOP\r\n", tag)
		r.W.Flush()
		_, _, err := r.ReadTagged(tag)
		if i%3 == 0 {
			if err == nil || statusLine(err) != fmt.Sprintf(throttled, 4500) {
				t.Fatalf("APPEND %d: %v, want throttled", i, err)
			}
		} else if err != nil {
			t.Fatalf("APPEND %d: %v", i, err)
		}
	}
	if d, _ := s.User().Status("INBOX", &imap.StatusOptions{NumMessages: true}); *d.NumMessages != 4 {
		t.Errorf("INBOX holds %d messages, want 4 (2 throttled)", *d.NumMessages)
	}
}
