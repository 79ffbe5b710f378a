package pop3

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed server stream and discards
// what is written.
type scriptConn struct {
	r io.Reader
}

func (s *scriptConn) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReader: whatever the server sends to LIST, UIDL, CAPA, TOP and RETR,
// the client neither panics nor returns a line over its bound, and it
// reads at most what was sent.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n1 100\r\n2 200\r\n.\r\n",
		"+OK\r\n1 uid-1\r\n..2 x\r\n.\r\n",
		"+OK caps\r\nUIDL\r\nSASL PLAIN\r\n.\r\n",
		"+OK 12 octets\r\nSubject: x\r\n\r\n.\r\n",
		"+OK\n1 1\n.\n",
		"-ERR no\r\n",
		"+OK\r\n1 ",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		newClient := func() *Client {
			c := &Client{cfg: Config{Timeout: time.Second, Window: 4}, stop: func() bool { return true }}
			c.setConn(&scriptConn{r: bytes.NewReader(in)})
			return c
		}
		ctx := context.Background()
		if list, err := newClient().List(ctx); err == nil {
			for _, m := range list {
				if m.ID <= 0 || m.Size < 0 {
					t.Fatalf("LIST accepted %+v", m)
				}
			}
		}
		if u, err := newClient().UIDL(ctx); err == nil {
			for _, v := range u {
				if len(v) > maxLine {
					t.Fatalf("UIDL of %d bytes", len(v))
				}
			}
		}
		c := newClient()
		c.capa()
		for k := range c.caps {
			if len(k) > maxLine {
				t.Fatalf("capability of %d bytes", len(k))
			}
		}
		if b, err := newClient().Top(ctx, 1, 0); err == nil && len(b) > 1<<20 {
			t.Fatalf("TOP returned %d bytes", len(b))
		}
		var n int64
		newClient().Retr(ctx, []int{1, 2}, func(id int, r io.Reader) error {
			k, err := io.Copy(io.Discard, r)
			n += k
			return err
		})
		if n > int64(len(in)) {
			t.Fatalf("RETR delivered %d bytes from %d", n, len(in))
		}
	})
}
