package dovecottest

import (
	"net"
	"os"
	"testing"
)

// TestPortCollisionRetry hands the first launch a port that is taken and
// checks that New retries with fresh ports.
func TestPortCollisionRetry(t *testing.T) {
	if err := Installed(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[2] = busyPort // POP3
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()

	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if calls != 2 {
		t.Errorf("ports picked %d times, want 2", calls)
	}
	if _, port, _ := net.SplitHostPort(s.POP3Addr); port == "" || s.POP3Addr == busy.Addr().String() {
		t.Errorf("POP3Addr = %s, the busy port", s.POP3Addr)
	}
	c, err := net.Dial("tcp", s.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := c.Read(buf); err != nil || string(buf) != "+OK" {
		t.Errorf("POP3 greeting %q, %v", buf, err)
	}
	c.Close()
}
