// Package latency is a test and benchmark helper: a TCP proxy on loopback
// that delays every byte by half a round-trip time in each direction,
// without limiting throughput, to measure mailkeep as if the server were
// far away.
package latency

import (
	"net"
	"testing"
	"time"
)

// Proxy forwards connections to target and returns its own address. It
// stops when the test ends.
func Proxy(tb testing.TB, target string, rtt time.Duration) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(s, c, rtt/2)
			go pipe(c, s, rtt/2)
		}
	}()
	return ln.Addr().String()
}

// pipe copies src to dst, each chunk held back by delay after it was read.
func pipe(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(delay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}
