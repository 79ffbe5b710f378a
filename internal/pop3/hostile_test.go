package pop3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestHostileServer: silence, a stall inside RETR and endless lines end
// the session within a few timeouts with a typed error, and memory stays
// bounded.
func TestHostileServer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	msgs := [][]byte{[]byte("Subject: a\r\n\r\n" + strings.Repeat("line\r\n", 1000)), []byte("Subject: b\r\n\r\nb\r\n")}
	for _, tt := range []struct {
		name string
		opt  pop3test.Options
		want error
	}{
		{"silent after PASS", pop3test.Options{SilentAfterPass: true}, pop3.ErrTimeout},
		{"stall inside RETR", pop3test.Options{StallInRetr: true}, pop3.ErrTimeout},
		{"endless LIST line", pop3test.Options{EndlessList: true}, pop3.ErrTooLong},
		{"endless status line", pop3test.Options{EndlessStatus: true}, pop3.ErrTooLong},
		{"endless message", pop3test.Options{EndlessRetr: true}, pop3.ErrTooLong},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := pop3test.Start(t, "u", "p", msgs, tt.opt)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			c, err := pop3.Dial(context.Background(), pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: "u", Password: "p", Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			list, err := c.List(context.Background())
			if err == nil {
				err = c.Retr(context.Background(), []int{list[0].ID}, func(id int, r io.Reader) error {
					_, err := io.Copy(io.Discard, r)
					return err
				})
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 10*timeout {
				t.Errorf("took %s with a %s timeout", d, timeout)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 16<<20 {
				t.Errorf("allocated %d MB", grew>>20)
			}
		})
	}
}

// TestShortRetr: a message shorter than LIST and "+OK n octets" announce
// is delivered whole as received, and recorded in Mismatched.
func TestShortRetr(t *testing.T) {
	msgs := [][]byte{[]byte("Subject: a\r\n\r\n" + strings.Repeat("line\r\n", 100)), []byte("Subject: b\r\n\r\nb\r\n")}
	srv := pop3test.Start(t, "u", "p w", msgs, pop3test.Options{ShortRetr: true})
	c := dial(t, srv.Addr, pop3.TLSNone, nil)
	list, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	err = c.Retr(context.Background(), []int{list[0].ID, list[1].ID}, func(id int, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	mm := c.Mismatched()
	if len(mm) != 2 || mm[1] == nil || mm[1].Announced != int64(len(msgs[0])) || mm[1].Got != int64(len(got[0])) {
		t.Fatalf("mismatched: %v", mm)
	}
	if !bytes.HasPrefix(msgs[0], got[0]) || len(got[0]) >= len(msgs[0]) {
		t.Errorf("delivered %d bytes of %d", len(got[0]), len(msgs[0]))
	}
}

func TestSizeMatches(t *testing.T) {
	for _, tt := range []struct {
		announced, got, lfs int64
		ok                  bool
	}{
		{100, 100, 5, true},   // exact
		{95, 100, 5, true},    // server counted LF-only storage
		{105, 100, 5, true},   // server sent bare LF, counted CRLF
		{98, 100, 3, true},    // a line end added to a message without one
		{100, 102, 3, true},   //
		{100, 50, 3, false},   // half
		{100, 99, 0, false},   // one octet missing
		{100, 103, 0, false},  // more than a line end added
		{1000, 950, 5, false}, // truncated
	} {
		if got := pop3.SizeMatches(tt.announced, tt.got, tt.lfs); got != tt.ok {
			t.Errorf("SizeMatches(%d, %d, %d) = %v", tt.announced, tt.got, tt.lfs, got)
		}
	}
}

// TestUTF8: a server that offers UTF8 (RFC 6856) gets it before the
// login, and then delivers the message as stored instead of a notice.
func TestUTF8(t *testing.T) {
	msg := []byte("Subject: Grüße\r\nFrom: jörg@example.org\r\n\r\nHallo\r\n")
	srv := pop3test.Start(t, "u", "p w", [][]byte{msg}, pop3test.Options{UTF8: true})
	c := dial(t, srv.Addr, pop3.TLSNone, nil)
	if !c.UTF8Mode() {
		t.Error("UTF8 not enabled")
	}
	got := retrAll(t, c)
	if len(got) != 1 || !bytes.Equal(got[0], msg) {
		t.Errorf("got %q, want %q", got, msg)
	}
	if len(c.Mismatched()) != 0 {
		t.Errorf("mismatched: %v", c.Mismatched())
	}
	cmds := srv.Commands()
	iUTF8, iAuth := -1, -1
	for i, c := range cmds {
		if c == "UTF8" && iUTF8 < 0 {
			iUTF8 = i
		}
		if (strings.HasPrefix(c, "USER") || strings.HasPrefix(c, "AUTH")) && iAuth < 0 {
			iAuth = i
		}
	}
	if iUTF8 < 0 || iUTF8 > iAuth {
		t.Errorf("UTF8 not sent before the login: %v", cmds)
	}

	// Control: without UTF8 the server sends its notice instead.
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "USER u\r\nPASS p w\r\nRETR 1\r\nQUIT\r\n")
	all, _ := io.ReadAll(conn)
	if !bytes.Contains(all, []byte(pop3test.UTF8Notice)) || bytes.Contains(all, msg) {
		t.Errorf("a client without UTF8 got %q", all)
	}
}
