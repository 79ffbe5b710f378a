// Package pop3test is a small in-process POP3 server for the cases a real
// Dovecot cannot be made to produce: no UIDL, a connection dropped in the
// middle of RETR, -ERR on DELE, STLS, and a record of how commands arrived.
package pop3test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Options choose the server's behaviour.
type Options struct {
	NoUIDL         bool
	NoPipelining   bool
	STLS           *tls.Config // offer STLS with this config
	DropDuringRetr int         // close the connection half way through RETR of this message number
	DeleErr        int         // answer -ERR to DELE of this message number
	SASLPlain      bool

	// Hostile behaviours, for the tests that a broken server cannot hang
	// the client, exhaust its memory or make it lose mail.
	SilentAfterPass bool // answer PASS +OK, then never answer again
	StallInRetr     bool // send half of each RETR's message, then nothing
	EndlessList     bool // answer LIST +OK, then a line that never ends
	EndlessStatus   bool // answer LIST with a status line that never ends
	ShortRetr       bool // RETR sends the first half of each message (LIST and "+OK n octets" announce all of it)
	EndlessRetr     bool // RETR sends a message that never ends
	// UTF8 offers RFC 6856 UTF8 and, like Courier, replaces a message
	// with 8-bit headers by a notice unless the client sent UTF8.
	UTF8 bool
}

// UTF8Notice is what a UTF8 server sends instead of a message with 8-bit
// headers to a client that did not send UTF8.
const UTF8Notice = "Subject: Cannot display Unicode content\r\n\r\nThis message has Unicode content.\r\n"

type message struct {
	uidl string
	body []byte
}

// Server is a running test server.
type Server struct {
	Addr string
	user string
	pass string
	opt  Options
	ln   net.Listener

	mu        sync.Mutex
	conns     []net.Conn
	msgs      []message
	deleted   []string // UIDLs deleted at QUIT
	commands  []string
	pipelined int // most commands found waiting when one was answered
	wg        sync.WaitGroup
}

// Start serves msgs to user/pass on a loopback port until the test ends.
func Start(t testing.TB, user, pass string, msgs [][]byte, opt Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), user: user, pass: pass, opt: opt, ln: ln}
	for i, m := range msgs {
		s.msgs = append(s.msgs, message{uidl: fmt.Sprintf("uid-%04d", i+1), body: append([]byte(nil), m...)})
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// SetOptions changes the behaviour of the sessions that start from now on
// (Options{} heals a hostile server).
func (s *Server) SetOptions(opt Options) {
	s.mu.Lock()
	s.opt = opt
	s.mu.Unlock()
}

// Messages returns what the maildrop holds now.
func (s *Server) Messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, m := range s.msgs {
		out = append(out, m.body)
	}
	return out
}

// Deleted returns the UIDLs of messages deleted by committed sessions.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deleted...)
}

// Commands returns the commands received, passwords redacted.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Pipelined returns the largest number of further commands that had
// already arrived when the server answered one: > 0 means the client sent
// commands without waiting for answers.
func (s *Server) Pipelined() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pipelined
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.session(c)
		}()
	}
}

func (s *Server) session(conn net.Conn) {
	s.mu.Lock()
	opt := s.opt
	s.mu.Unlock()
	br := bufio.NewReader(conn)
	bw := bufio.NewWriter(conn)
	out := func(format string, a ...any) {
		fmt.Fprintf(bw, format+"\r\n", a...)
		bw.Flush()
	}
	out("+OK pop3test ready")
	authed := false
	utf8 := false
	user := ""
	withhold := func() { io.Copy(io.Discard, conn) } // silent until the client goes
	endless := func(head string) {
		bw.WriteString(head)
		bw.Flush()
		buf := bytes.Repeat([]byte{'7'}, 64<<10)
		for {
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}
	var view []message // the maildrop as this session sees it
	marked := map[int]bool{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // dropped: no deletion
		}
		line = strings.TrimRight(line, "\r\n")
		f := strings.Fields(line)
		if len(f) == 0 {
			out("-ERR empty command")
			continue
		}
		cmd := strings.ToUpper(f[0])
		s.mu.Lock()
		rec := line
		if cmd == "PASS" || cmd == "AUTH" {
			rec = cmd + " ***"
		}
		s.commands = append(s.commands, rec)
		if q := strings.Count(peekBuffered(br), "\n"); q > s.pipelined {
			s.pipelined = q
		}
		s.mu.Unlock()
		arg := func(i int) (int, bool) {
			if len(f) <= i {
				return 0, false
			}
			n, err := strconv.Atoi(f[i])
			if err != nil || n < 1 || n > len(view) || marked[n] {
				return 0, false
			}
			return n, true
		}
		switch {
		case cmd == "CAPA":
			out("+OK capabilities")
			out("USER")
			out("TOP")
			if !opt.NoUIDL {
				out("UIDL")
			}
			if !opt.NoPipelining {
				out("PIPELINING")
			}
			if opt.STLS != nil {
				out("STLS")
			}
			if opt.SASLPlain {
				out("SASL PLAIN")
			}
			if opt.UTF8 {
				out("UTF8")
			}
			out(".")
		case cmd == "UTF8" && opt.UTF8 && !authed:
			utf8 = true
			out("+OK UTF8 enabled")
		case cmd == "STLS" && opt.STLS != nil && !authed:
			out("+OK begin TLS")
			t := tls.Server(conn, opt.STLS)
			if err := t.Handshake(); err != nil {
				return
			}
			conn, br, bw = t, bufio.NewReader(t), bufio.NewWriter(t)
		case cmd == "USER" && len(f) == 2:
			user = f[1]
			out("+OK")
		case cmd == "PASS" || (cmd == "AUTH" && opt.SASLPlain && len(f) == 3 && strings.EqualFold(f[1], "PLAIN")):
			ok := false
			if cmd == "PASS" {
				ok = user == s.user && strings.TrimPrefix(line, f[0]+" ") == s.pass
			} else if b, err := base64.StdEncoding.DecodeString(f[2]); err == nil {
				ok = string(b) == "\x00"+s.user+"\x00"+s.pass
			}
			if !ok {
				out("-ERR [AUTH] authentication failed")
				continue
			}
			authed = true
			s.mu.Lock()
			view = append([]message(nil), s.msgs...)
			s.mu.Unlock()
			out("+OK logged in")
			if opt.SilentAfterPass {
				withhold()
				return
			}
		case !authed && cmd != "QUIT":
			out("-ERR not logged in")
		case cmd == "STAT":
			n, size := 0, 0
			for i, m := range view {
				if !marked[i+1] {
					n++
					size += len(m.body)
				}
			}
			out("+OK %d %d", n, size)
		case cmd == "LIST" && opt.EndlessStatus:
			endless("+OK ")
			return
		case cmd == "LIST" && opt.EndlessList && len(f) == 1:
			endless("+OK\r\n1 ")
			return
		case cmd == "LIST" || (cmd == "UIDL" && !opt.NoUIDL):
			if len(f) > 1 {
				n, ok := arg(1)
				if !ok {
					out("-ERR no such message")
					continue
				}
				if cmd == "LIST" {
					out("+OK %d %d", n, len(view[n-1].body))
				} else {
					out("+OK %d %s", n, view[n-1].uidl)
				}
				continue
			}
			out("+OK")
			for i, m := range view {
				if marked[i+1] {
					continue
				}
				if cmd == "LIST" {
					out("%d %d", i+1, len(m.body))
				} else {
					out("%d %s", i+1, m.uidl)
				}
			}
			out(".")
		case cmd == "RETR" || cmd == "TOP":
			n, ok := arg(1)
			if !ok {
				out("-ERR no such message")
				continue
			}
			body := view[n-1].body
			if opt.UTF8 && !utf8 && bytes.IndexFunc(body, func(r rune) bool { return r > 0x7e }) >= 0 {
				body = []byte(UTF8Notice)
			}
			if cmd == "TOP" {
				if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
					body = body[:i+4]
				} else if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
					body = body[:i+2]
				}
			}
			out("+OK %d octets", len(body))
			if cmd == "RETR" && opt.EndlessRetr {
				endless("")
				return
			}
			if cmd == "RETR" && opt.ShortRetr {
				half := body[:len(body)/2]
				if i := bytes.LastIndexByte(half, '\n'); i >= 0 {
					half = half[:i+1]
				}
				bw.Write(stuff(half))
				out(".")
				continue
			}
			stuffed := stuff(body)
			if cmd == "RETR" && opt.StallInRetr {
				bw.Write(stuffed[:len(stuffed)/2])
				bw.Flush()
				withhold()
				return
			}
			if cmd == "RETR" && n == opt.DropDuringRetr {
				bw.Write(stuffed[:len(stuffed)/2])
				bw.Flush()
				return
			}
			bw.Write(stuffed)
			out(".")
		case cmd == "DELE":
			n, ok := arg(1)
			if !ok || n == opt.DeleErr {
				out("-ERR cannot delete")
				continue
			}
			marked[n] = true
			out("+OK marked")
		case cmd == "RSET":
			marked = map[int]bool{}
			out("+OK")
		case cmd == "NOOP":
			out("+OK")
		case cmd == "QUIT":
			if authed {
				s.mu.Lock()
				gone := map[string]bool{}
				for i := range view {
					if marked[i+1] {
						gone[view[i].uidl] = true
						s.deleted = append(s.deleted, view[i].uidl)
					}
				}
				var keep []message
				for _, m := range s.msgs {
					if !gone[m.uidl] {
						keep = append(keep, m)
					}
				}
				s.msgs = keep
				s.mu.Unlock()
			}
			out("+OK bye")
			return
		default:
			out("-ERR unknown command")
		}
	}
}

func peekBuffered(br *bufio.Reader) string {
	b, _ := br.Peek(br.Buffered())
	return string(b)
}

// stuff dot-stuffs a message and makes sure it ends with CRLF, as RFC 1939
// requires before the terminating ".".
func stuff(body []byte) []byte {
	var b bytes.Buffer
	bol := true
	for _, c := range body {
		if bol && c == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(c)
		bol = c == '\n'
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
