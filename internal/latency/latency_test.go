package latency

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxyDelays checks bytes arrive intact, a round trip takes about rtt.
func TestProxyDelays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte("echo " + line))
		}
	}()
	const rtt = 40 * time.Millisecond
	c, err := net.Dial("tcp", Proxy(t, ln.Addr().String(), rtt))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		start := time.Now()
		c.Write([]byte("ping\n"))
		got, err := r.ReadString('\n')
		if err != nil || got != "echo ping\n" {
			t.Fatalf("got %q, %v", got, err)
		}
		if el := time.Since(start); el < rtt || el > 10*rtt {
			t.Errorf("round trip %v, want about %v", el, rtt)
		}
	}
}
