package memimap_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/memimap"
)

func dial(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStart(t *testing.T) {
	s := memimap.Start(t, "alice", "pw")
	if host, _, err := net.SplitHostPort(s.Addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr = %q, want 127.0.0.1:port", s.Addr)
	}

	tests := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "pw", true},
		{"alice", "wrong", false},
		{"bob", "pw", false},
	}
	for _, tt := range tests {
		c := dial(t, s.Addr)
		err := c.Login(tt.user, tt.pass).Wait()
		if (err == nil) != tt.ok {
			t.Errorf("LOGIN %s/%s: err = %v, want ok=%v", tt.user, tt.pass, err, tt.ok)
		}
	}

	c := dial(t, s.Addr)
	if err := c.Login("alice", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev2, imap.CapUIDPlus, imap.CapMove, imap.CapNamespace} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}

	// A mailbox made through User is visible to clients, and a client
	// APPEND is visible through User.
	if err := s.User().Create("Made/Directly", nil); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]rune{}
	for _, l := range list {
		names[l.Mailbox] = l.Delim
	}
	if len(names) != 2 || names["INBOX"] != memimap.Delim || names["Made/Directly"] != memimap.Delim {
		t.Errorf("LIST = %v, want INBOX and Made/Directly with delimiter %q", names, memimap.Delim)
	}
	msg := "Subject: x\r\n\r\nbody\r\n"
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	ac := c.Append("Made/Directly", int64(len(msg)), &imap.AppendOptions{Time: date})
	ac.Write([]byte(msg))
	ac.Close()
	data, err := ac.Wait()
	if err != nil || data.UID == 0 {
		t.Fatalf("APPEND: %v, UID %d", err, data.UID)
	}
	st, err := s.User().Status("Made/Directly", &imap.StatusOptions{NumMessages: true, Size: true})
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 || *st.Size != int64(len(msg)) {
		t.Errorf("STATUS via User: %d messages, %d bytes; want 1, %d", *st.NumMessages, *st.Size, len(msg))
	}
}

func TestClose(t *testing.T) {
	s, err := memimap.New("u", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr)
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Error("client connection still open after Close")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Error("listener still accepting after Close")
	}
}

// TestCloseImmediately closes before the serving goroutine may have run.
func TestCloseImmediately(t *testing.T) {
	for range 20 {
		s, err := memimap.New("u", "p", nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- s.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close hangs")
		}
	}
}

// TestCutLiteral: a connection cut in the middle of an APPEND's literal
// stores nothing (imapmemserver alone would store the torn half), and a
// whole one is stored.
func TestCutLiteral(t *testing.T) {
	s := memimap.Start(t, "alice", "pw")
	raw, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: torn\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	br := bufio.NewReader(raw)
	fmt.Fprintf(raw, "a LOGIN alice pw\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "a ") {
			break
		}
	}
	fmt.Fprintf(raw, "b APPEND INBOX {%d+}\r\n%s", len(msg), msg[:len(msg)/2])
	raw.Close()
	select {
	case <-s.Ended(): // the server is done with the connection
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not end the cut connection's session")
	}
	c := dial(t, s.Addr)
	if err := c.Login("alice", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 0 {
		t.Fatalf("INBOX holds %d messages after a cut APPEND, want 0", *st.NumMessages)
	}
	ac := c.Append("INBOX", int64(len(msg)), nil)
	ac.Write([]byte(msg))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	st, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 {
		t.Fatalf("INBOX holds %d messages after a whole APPEND, want 1", *st.NumMessages)
	}
}
