// Package hostile runs IMAP servers that misbehave on purpose, for the
// tests that mailkeep survives broken or hostile servers: a proxy in front
// of a real (in-process) IMAP server that goes silent, stalls inside a
// literal, sends a line that never ends or rewrites folder names into ones
// a client cannot decode. POP3 faults are in internal/pop3test.
package hostile

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Fault is what the proxy does to the server's answers.
type Fault int

// The faults.
const (
	None                Fault = iota
	SilentAfterGreeting       // forward the greeting, then nothing
	SilentAfterLogin          // forward up to LOGIN's tagged OK, then nothing
	SilentAfterList           // forward up to LIST's tagged completion, then nothing (a stall between commands)
	StallInLiteral            // forward half of the first message body literal, then nothing
	EndlessList               // answer LIST with a line that never ends
	EndlessFetch              // answer the first FETCH with an item that never ends
	BadNames                  // rename folder "BadNul" to one with a NUL, "BadUtf7" to invalid modified UTF-7
)

func (f Fault) String() string {
	return [...]string{"none", "silent after greeting", "silent after LOGIN", "silent after LIST", "stall in literal", "endless LIST line", "endless FETCH item", "bad folder names"}[f]
}

// Proxy is a running hostile proxy.
type Proxy struct {
	Addr    string
	backend string
	fault   Fault
	ln      net.Listener

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// Start runs a proxy to the IMAP server at backend with fault f until the
// test ends.
func Start(t testing.TB, backend string, f Fault) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), backend: backend, fault: f, ln: ln}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// SetFault changes the fault of the connections accepted from now on
// (None heals the proxy).
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c)
		p.track(s)
		p.mu.Lock()
		f := p.fault
		p.mu.Unlock()
		sess := &session{p: p, fault: f, client: c, server: s, verbs: map[string]string{}}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); sess.up() }()
		go func() { defer p.wg.Done(); sess.down() }()
	}
}

type session struct {
	p              *Proxy
	fault          Fault
	client, server net.Conn

	mu    sync.Mutex
	verbs map[string]string // tag -> command verb, as the client sent them
}

// up copies the client's commands to the server, noting each tag's verb.
func (s *session) up() {
	defer s.server.Close()
	br := bufio.NewReader(s.client)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if f := strings.Fields(string(line)); len(f) >= 2 {
				verb := strings.ToUpper(f[1])
				if verb == "UID" && len(f) >= 3 {
					verb = "UID " + strings.ToUpper(f[2])
				}
				s.mu.Lock()
				s.verbs[f[0]] = verb
				s.mu.Unlock()
			}
			if _, werr := s.server.Write(line); werr != nil {
				return
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func (s *session) verb(tag string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verbs[tag]
}

// withhold sends nothing more but keeps the connection open until the
// client drops it (or the proxy closes).
func (s *session) withhold() {
	io.Copy(io.Discard, s.server)
}

// endless writes head and then filler bytes forever (until the client
// goes away).
func (s *session) endless(head string, fill byte) {
	s.client.Write([]byte(head))
	buf := bytes.Repeat([]byte{fill}, 64<<10)
	for {
		if _, err := s.client.Write(buf); err != nil {
			return
		}
	}
}

// down copies the server's answers to the client, applying the fault.
func (s *session) down() {
	defer s.client.Close()
	br := bufio.NewReaderSize(s.server, 64<<10)
	first := true
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if first && s.fault == SilentAfterGreeting {
			s.client.Write(line)
			s.withhold()
			return
		}
		first = false
		f := strings.Fields(string(line))
		switch {
		case s.fault == EndlessList && len(f) >= 2 && f[0] == "*" && strings.EqualFold(f[1], "LIST"):
			s.endless(`* LIST () "/" "`, 'a')
			return
		case s.fault == EndlessFetch && len(f) >= 3 && f[0] == "*" && strings.EqualFold(f[2], "FETCH"):
			s.endless(`* `+f[1]+` FETCH (FLAGS (\Seen `, 'x')
			return
		case s.fault == BadNames && len(f) >= 2 && f[0] == "*" && strings.EqualFold(f[1], "LIST"):
			line = bytes.Replace(line, []byte(`"BadNul"`), []byte("{7}\r\nBad\x00Nul"), 1)
			line = bytes.Replace(line, []byte(`"BadUtf7"`), []byte(`"Bad&Jjo"`), 1)
		}
		if _, err := s.client.Write(line); err != nil {
			return
		}
		if n, ok := literal(line); ok {
			if s.fault == StallInLiteral && bytes.Contains(bytes.ToUpper(line), []byte("BODY[")) && n > 1 {
				io.CopyN(s.client, br, n/2)
				s.withhold()
				return
			}
			if _, err := io.CopyN(s.client, br, n); err != nil {
				return
			}
			continue
		}
		if len(f) >= 2 && f[0] != "*" && f[0] != "+" {
			switch v := s.verb(f[0]); {
			case s.fault == SilentAfterLogin && v == "LOGIN",
				s.fault == SilentAfterList && v == "LIST":
				s.withhold()
				return
			}
		}
	}
}

// literal reports the size of a literal announced at the end of line.
func literal(line []byte) (int64, bool) {
	l := bytes.TrimRight(line, "\r\n")
	if !bytes.HasSuffix(l, []byte("}")) {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(string(l[i+1:len(l)-1]), "+"), 10, 64)
	return n, err == nil
}
