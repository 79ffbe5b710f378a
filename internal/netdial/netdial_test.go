package netdial

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// listen starts a loopback listener whose accepted connections are given
// to serve.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestOwedSilentServer: a server that owes an answer and sends nothing
// ends the read after the timeout with a typed error (ErrTimeout, a
// net.Error timeout, os.ErrDeadlineExceeded).
func TestOwedSilentServer(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	addr := listen(t, func(c net.Conn) { <-hold })
	conn, _, err := Dial(context.Background(), addr, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := Owed(conn, 100*time.Millisecond)
	c.SetReadDeadline(time.Now().Add(time.Hour)) // ignored: the policy is the timeout's
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	var te *TimeoutError
	var ne net.Error
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &te) || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent server: %v (%T), want a *TimeoutError", err, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed out after %s", d)
	}
}

// TestOwedTrickle: the timeout bounds the wait for each byte, not for a
// whole answer: a server sending one byte per 20 ms answers in full even
// though the answer takes longer than the 200 ms timeout.
func TestOwedTrickle(t *testing.T) {
	const answer = "+OK trickled answer\r\n"
	addr := listen(t, func(c net.Conn) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := range len(answer) {
			<-tick.C
			if _, err := c.Write([]byte{answer[i]}); err != nil {
				return
			}
		}
	})
	conn, _, err := Dial(context.Background(), addr, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := Owed(conn, 200*time.Millisecond)
	start := time.Now()
	got, err := io.ReadAll(io.LimitReader(c, int64(len(answer))))
	if err != nil || string(got) != answer {
		t.Fatalf("got %q, %v", got, err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatalf("the answer took %s, not longer than the timeout: the test proves nothing", time.Since(start))
	}
}

// TestDialTLSConfig: the TLS settings are a clone with ServerName from the
// address; the caller's are not changed.
func TestDialTLSConfig(t *testing.T) {
	addr := listen(t, func(net.Conn) {})
	for _, tc := range []struct {
		in   *tls.Config
		want string
	}{
		{nil, "127.0.0.1"},
		{&tls.Config{}, "127.0.0.1"},
		{&tls.Config{ServerName: "mail.example"}, "mail.example"},
	} {
		conn, got, err := Dial(context.Background(), addr, tc.in, 0)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if got.ServerName != tc.want || got == tc.in {
			t.Errorf("Dial(%v): ServerName %q (same config: %v), want %q in a clone", tc.in, got.ServerName, got == tc.in, tc.want)
		}
	}
}

// TestHandshakeTimeout: a server that accepts and never speaks TLS ends
// the handshake after the timeout, as ErrTimeout.
func TestHandshakeTimeout(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	addr := listen(t, func(c net.Conn) { <-hold })
	conn, tc, err := Dial(context.Background(), addr, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = Handshake(context.Background(), conn, tc, 100*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("handshake with a silent server: %v, want ErrTimeout", err)
	}
}

func TestTimeoutDefault(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{{0, DefaultTimeout}, {-1, DefaultTimeout}, {time.Second, time.Second}} {
		if got := Timeout(tc.in); got != tc.want {
			t.Errorf("Timeout(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
