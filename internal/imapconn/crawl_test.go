package imapconn

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock moves 15 s at every look, so that each Read or Write of a
// guard waits 15 s; skip moves it further.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(15 * time.Second)
	return c.t
}

func (c *fakeClock) skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// crawlPair is a guard on the fake clock over one end of a pipe, and the
// server end.
func crawlPair(t *testing.T) (*guard, net.Conn, *fakeClock) {
	t.Helper()
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	g := newGuard(c, "crawler@example.com", time.Minute)
	g.now = clk.now
	g.owedSince = clk.now()
	delete(g.pending, greeting)
	return g, s, clk
}

// serve answers the command the guard writes with a body literal sent in
// chunks of size bytes, one chunk per Read of the guard.
func serveBody(s net.Conn, chunk int) {
	go func() {
		r := bufio.NewReader(s)
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		fmt.Fprintf(s, "* 1 FETCH (UID 1 BODY[] {%d}\r\n", 1<<30)
		b := []byte(strings.Repeat("x", chunk))
		for {
			if _, err := s.Write(b); err != nil {
				return
			}
		}
	}()
}

// A server that owes an answer and sends it at a crawl (Gmail past its
// daily limit) is ended with ErrTooSlow once a whole RateWindow of waiting
// moved less than MinRate a second; one that sends fast enough is not, and
// time with no answer owed does not count.
func TestCrawl(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int
		crawl bool
	}{
		{"100 bytes every 15 s", 100, true},
		{"64 KB every 15 s", 64 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, s, _ := crawlPair(t)
			serveBody(s, tc.chunk)
			if _, err := g.Write([]byte("A1 UID FETCH 1:* BODY.PEEK[]\r\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, tc.chunk)
			reads := 0
			var err error
			for ; reads < 200 && err == nil; reads++ {
				_, err = g.Read(buf)
			}
			if !tc.crawl {
				if err != nil {
					t.Fatalf("ended after %d reads: %v", reads, err)
				}
				return
			}
			var ge *GuardError
			if !errors.Is(err, ErrTooSlow) || !errors.As(err, &ge) || !strings.Contains(ge.Detail, "bytes in") {
				t.Fatalf("after %d reads: %v; want ErrTooSlow", reads, err)
			}
			// 5 minutes of waiting at 15 s a read: about 20 reads.
			if reads < 15 || reads > 30 {
				t.Errorf("ended after %d reads of 15 s; want about %d", reads, int(RateWindow/(15*time.Second)))
			}
			if _, err := g.Read(buf); !errors.Is(err, ErrTooSlow) {
				t.Errorf("the next read: %v; want the same error", err)
			}
		})
	}
	// go-imap's reader is always blocked in Read, also while the
	// connection is idle: an hour idle before a command is not an hour
	// spent waiting for its answer.
	t.Run("idle time", func(t *testing.T) {
		g, s, clk := crawlPair(t)
		serveBody(s, 100)
		type result struct {
			n   int
			err error
		}
		got := make(chan result, 1)
		buf := make([]byte, 100)
		reading := make(chan struct{})
		var once sync.Once
		g.now = func() time.Time {
			t := clk.now()
			once.Do(func() { close(reading) }) // the Read's start
			return t
		}
		go func() {
			n, err := g.Read(buf) // blocked: nothing owed yet
			got <- result{n, err}
		}()
		<-reading
		clk.skip(time.Hour)
		if _, err := g.Write([]byte("A1 UID FETCH 1:* BODY.PEEK[]\r\n")); err != nil {
			t.Fatal(err)
		}
		if r := <-got; r.err != nil || r.n == 0 {
			t.Fatalf("first read after an idle hour: %d bytes, %v", r.n, r.err)
		}
	})
}
