package pop3_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

var tricky = [][]byte{
	[]byte("Subject: dots\r\n\r\n.\r\n..\r\n.foo\r\n...\r\nend\r\n"),
	[]byte("Subject: from\r\n\r\nFrom x\r\n>From y\r\n"),
	[]byte("Subject: lf\n\nbare lf\n.dot lf\n"),
	[]byte("Subject: 8bit\r\n\r\n\xc3\xb6\xff\r\n"),
	[]byte("Subject: empty\r\n\r\n"),
	[]byte("Subject: long\r\n\r\n" + strings.Repeat("x", 200000) + "\r\n"),
}

func dial(t *testing.T, addr string, mode pop3.TLSMode, tc *tls.Config) *pop3.Client {
	t.Helper()
	c, err := pop3.Dial(context.Background(), pop3.Config{Addr: addr, TLS: mode, TLSConfig: tc, User: "u", Password: "p w"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func retrAll(t *testing.T, c *pop3.Client) [][]byte {
	t.Helper()
	list, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	var got [][]byte
	err = c.Retr(context.Background(), ids, func(id int, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestExactBytesAndPipelining(t *testing.T) {
	var msgs [][]byte
	for i := 0; i < 200; i++ {
		msgs = append(msgs, tricky[i%len(tricky)])
	}
	srv := pop3test.Start(t, "u", "p w", msgs, pop3test.Options{})
	c := dial(t, srv.Addr, pop3.TLSNone, nil)
	got := retrAll(t, c)
	if len(got) != len(msgs) {
		t.Fatalf("got %d messages", len(got))
	}
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Errorf("message %d: got %q, want %q", i+1, clip(got[i]), clip(msgs[i]))
		}
	}
	if srv.Pipelined() < 2 {
		t.Errorf("RETR was not pipelined: at most %d commands were waiting at the server", srv.Pipelined())
	}
	uidl, err := c.UIDL(context.Background())
	if err != nil || uidl[3] != "uid-0003" {
		t.Errorf("UIDL: %v %v", uidl[3], err)
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range srv.Commands() {
		if strings.Contains(cmd, "p w") {
			t.Errorf("password logged: %q", cmd)
		}
	}
}

func clip(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}

func TestNoPipeliningOneAtATime(t *testing.T) {
	srv := pop3test.Start(t, "u", "p w", tricky, pop3test.Options{NoPipelining: true})
	c := dial(t, srv.Addr, pop3.TLSNone, nil)
	if got := retrAll(t, c); len(got) != len(tricky) {
		t.Fatalf("got %d", len(got))
	}
	if srv.Pipelined() != 0 {
		t.Errorf("pipelined %d commands to a server without PIPELINING", srv.Pipelined())
	}
}

func TestSTLSAndSASL(t *testing.T) {
	dv := dovecottest.Start(t, nil) // borrow its certificate
	cert, err := tls.LoadX509KeyPair(dv.CACertFile, strings.TrimSuffix(dv.CACertFile, "cert.pem")+"key.pem")
	if err != nil {
		t.Fatalf("no key beside the test certificate: %v", err)
	}
	pem, _ := os.ReadFile(dv.CACertFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	srv := pop3test.Start(t, "u", "p w", tricky, pop3test.Options{STLS: &tls.Config{Certificates: []tls.Certificate{cert}}, SASLPlain: true})
	c := dial(t, srv.Addr, pop3.TLSStartTLS, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if got := retrAll(t, c); len(got) != len(tricky) {
		t.Fatalf("over STLS: %d messages", len(got))
	}
	cmds := strings.Join(srv.Commands(), "|")
	if !strings.Contains(cmds, "STLS") || !strings.Contains(cmds, "AUTH ***") || strings.Contains(cmds, "USER") {
		t.Errorf("commands: %s", cmds)
	}
	// STLS required but not offered: refused before any password is sent.
	plain := pop3test.Start(t, "u", "p w", tricky, pop3test.Options{})
	_, err = pop3.Dial(context.Background(), pop3.Config{Addr: plain.Addr, TLS: pop3.TLSStartTLS, User: "u", Password: "p w"})
	if err == nil || !strings.Contains(err.Error(), "STLS") {
		t.Fatalf("STLS not offered: %v", err)
	}
	for _, cmd := range plain.Commands() {
		if strings.HasPrefix(cmd, "USER") || strings.HasPrefix(cmd, "PASS") || strings.HasPrefix(cmd, "AUTH") {
			t.Errorf("credentials sent without TLS: %q", cmd)
		}
	}
}

func TestFailures(t *testing.T) {
	srv := pop3test.Start(t, "u", "p w", tricky, pop3test.Options{NoUIDL: true, DropDuringRetr: 3, DeleErr: 2})
	c := dial(t, srv.Addr, pop3.TLSNone, nil)
	if _, err := c.UIDL(context.Background()); !errors.Is(err, pop3.ErrNoUIDL) {
		t.Errorf("UIDL: %v", err)
	}
	if err := c.Dele(context.Background(), []int{1, 2}); err == nil {
		t.Error("DELE -ERR not reported")
	}
	c.Close() // no QUIT
	if len(srv.Deleted()) != 0 {
		t.Errorf("deleted without QUIT: %v", srv.Deleted())
	}
	c = dial(t, srv.Addr, pop3.TLSNone, nil)
	var whole int
	err := c.Retr(context.Background(), []int{1, 2, 3, 4}, func(id int, r io.Reader) error {
		if _, err := io.ReadAll(r); err != nil {
			return err
		}
		whole++
		return nil
	})
	if err == nil || whole != 2 {
		t.Errorf("dropped connection: %d whole messages, err %v", whole, err)
	}
	if _, err := pop3.Dial(context.Background(), pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: "u", Password: "wrong"}); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}
}

// TestCancelUnblocks: a server that stops answering does not hang the
// client past ctx.
func TestCancelUnblocks(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "+OK hi\r\n")
		io.Copy(io.Discard, c) // never answers CAPA
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pop3.Dial(ctx, pop3.Config{Addr: ln.Addr().String(), TLS: pop3.TLSNone, User: "u", Password: "p"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled server: err %v after %v", err, time.Since(start))
	}
}

func TestDovecot(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "u", "p w")
	ic := imaptest.Dial(t, dv.IMAPAddr, "u", "p w")
	for _, m := range tricky {
		imaptest.Append(t, ic, "INBOX", nil, time.Now(), m)
	}
	size := 50 << 20
	if testing.Short() {
		size = 5 << 20
	}
	imaptest.AppendReader(t, ic, "INBOX", nil, time.Now(), imaptest.BigMessage(size), int64(size))
	want := imaptest.Snapshot(t, ic, false)["INBOX"]
	pem, _ := os.ReadFile(dv.CACertFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := pop3.Dial(context.Background(), pop3.Config{Addr: dv.POP3SAddr, TLS: pop3.TLSImplicit, TLSConfig: &tls.Config{RootCAs: pool}, User: "u", Password: "p w"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Caps()["PIPELINING"]; !ok {
		t.Errorf("Dovecot CAPA: %v", c.Caps())
	}
	list, err := c.List(context.Background())
	if err != nil || len(list) != len(want) {
		t.Fatalf("LIST: %d, %v", len(list), err)
	}
	var ids []int
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	i := 0
	err = c.Retr(context.Background(), ids, func(id int, r io.Reader) error {
		h := newHash()
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		if h.sum() != want[i].SHA256 || n != want[i].Size {
			t.Errorf("message %d: %d bytes %s, IMAP says %d %s", id, n, h.sum(), want[i].Size, want[i].SHA256)
		}
		i++
		return nil
	})
	if err != nil || i != len(want) {
		t.Fatalf("RETR: %d of %d, %v", i, len(want), err)
	}
}
