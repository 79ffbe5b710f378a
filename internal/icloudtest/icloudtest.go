// Package icloudtest runs an iCloud Mail (imap.mail.me.com) IMAP double
// for tests: a Dovecot (internal/dovecottest, for its real CONDSTORE and
// QRESYNC) behind a loopback proxy whose line-level tap (internal/imaptap)
// gives Dovecot's answers iCloud's quirks. go-imap's imapserver cannot be
// used: it has no CONDSTORE, and only with CONDSTORE does a backup ask UID
// SEARCH. What it copies, and from where:
//
//   - XAPPLEPUSHSERVICE as the first capability of every CAPABILITY list
//     (issue 13, from MailKit #1282/#1396 and imap-backup #110/#234;
//     MailKit issue #221 shows the same atom in a Yahoo list). A client
//     must tolerate an unknown capability ahead of IMAP4rev1.
//   - QRESYNC advertised (Dovecot's own) but broken (issue 13: "advertises
//     QRESYNC but breaks it"): a SELECT or EXAMINE with the QRESYNC
//     parameter is answered with "* VANISHED (EARLIER) 1:4294967295" as
//     well, every UID of the folder reported expunged. The double records
//     any ENABLE QRESYNC or QRESYNC parameter ([Server.QResyncUsed]).
//   - UID SEARCH answers a client cannot use ([Server.SetSearch]):
//     [SearchOmitted] drops the untagged "* SEARCH" line and leaves only
//     the tagged OK, as iCloud does for a search without matches
//     (mcp-email-server pull request #237, Home Assistant core issue
//     #132042: "<tag> OK SEARCH completed (took 2 ms)"), which a client
//     reads as "no message"; [SearchInvalid] answers "* SEARCH 0
//     4294967295", UIDs no folder can hold (issue 13: "returns invalid
//     values in UID SEARCH"; nextcloud/mail issue #5181 and pull request
//     #9454: iCloud's searches for a folder's UIDs cannot be relied on).
//     ESEARCH is taken out of the capability list (nextcloud/mail #9454:
//     "iCloud doesn't support ESEARCH properly"; MailKit pull request
//     #863: iCloud answers "UID SEARCH RETURN ()" with "* SEARCH").
package icloudtest

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptap"
)

// SearchMode is how the double answers SEARCH and UID SEARCH.
type SearchMode int

const (
	SearchOK      SearchMode = iota // Dovecot's answer
	SearchOmitted                   // no untagged SEARCH, only the tagged OK
	SearchInvalid                   // "* SEARCH 0 4294967295"
)

// Server is the iCloud double.
type Server struct {
	// Addr is the proxy's "127.0.0.1:port" (no TLS).
	Addr string
	// Dovecot is the server behind it, to add users and mail directly.
	Dovecot *dovecottest.Server

	mu       sync.Mutex
	search   SearchMode
	searches int // SEARCH answers changed
	qresync  bool
	conns    map[net.Conn]bool

	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

// Start starts Dovecot and the proxy in front of it; both stop when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dv := dovecottest.Start(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), Dovecot: dv}
	s.ln = &imaptap.Listener{Listener: ln, New: func(c *imaptap.Conn) imaptap.Hooks { return &tap{srv: s, search: map[string]bool{}} }}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the proxy and its connections.
func (s *Server) Close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// SetSearch sets how SEARCH and UID SEARCH are answered from now on.
func (s *Server) SetSearch(m SearchMode) {
	s.mu.Lock()
	s.search = m
	s.mu.Unlock()
}

// Searches is the number of SEARCH answers the double changed.
func (s *Server) Searches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.searches
}

// QResyncUsed reports whether a client sent ENABLE QRESYNC or a SELECT
// or EXAMINE with the QRESYNC parameter.
func (s *Server) QResyncUsed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.qresync
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", s.Dovecot.IMAPAddr)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[net.Conn]bool{}
		}
		s.conns[c], s.conns[up] = true, true
		s.mu.Unlock()
		s.wg.Add(2)
		closeBoth := sync.OnceFunc(func() {
			c.Close()
			up.Close()
			s.mu.Lock()
			delete(s.conns, c)
			delete(s.conns, up)
			s.mu.Unlock()
		})
		go func() { defer s.wg.Done(); io.Copy(up, c); closeBoth() }() // commands, through the tap
		go func() { defer s.wg.Done(); io.Copy(c, up); closeBoth() }() // answers, through the tap
	}
}

// tap rewrites one connection's protocol.
type tap struct {
	srv    *Server
	mu     sync.Mutex
	search map[string]bool // tags of SEARCH commands in flight
	vanish map[string]bool // tags of SELECT/EXAMINE (QRESYNC ...) in flight
}

func (t *tap) Command(line []byte) []byte {
	tag, name, args := imaptap.Command(line)
	up := strings.ToUpper(args)
	switch {
	case name == "ENABLE" && strings.Contains(up, "QRESYNC"):
		t.srv.mu.Lock()
		t.srv.qresync = true
		t.srv.mu.Unlock()
	case (name == "SELECT" || name == "EXAMINE") && strings.Contains(up, "QRESYNC"):
		t.srv.mu.Lock()
		t.srv.qresync = true
		t.srv.mu.Unlock()
		t.mu.Lock()
		if t.vanish == nil {
			t.vanish = map[string]bool{}
		}
		t.vanish[tag] = true
		t.mu.Unlock()
	case name == "SEARCH" || name == "UID SEARCH":
		t.mu.Lock()
		t.search[tag] = true
		t.mu.Unlock()
	}
	return line
}

var capsRe = regexp.MustCompile(`CAPABILITY ([^\]\r\n]*)`)

func (t *tap) Response(line []byte) []byte {
	if tag, _, _, ok := imaptap.Tagged(line); ok {
		t.mu.Lock()
		delete(t.search, tag)
		v := t.vanish[tag]
		delete(t.vanish, tag)
		t.mu.Unlock()
		line = capsRe.ReplaceAllFunc(line, caps)
		if v {
			return append([]byte("* VANISHED (EARLIER) 1:4294967295\r\n"), line...)
		}
		return line
	}
	if bytes.HasPrefix(line, []byte("* SEARCH")) {
		t.mu.Lock()
		pending := len(t.search) > 0
		t.mu.Unlock()
		if pending {
			t.srv.mu.Lock()
			m := t.srv.search
			if m != SearchOK {
				t.srv.searches++
			}
			t.srv.mu.Unlock()
			switch m {
			case SearchOmitted:
				return nil
			case SearchInvalid:
				return []byte("* SEARCH 0 4294967295\r\n")
			}
		}
		return line
	}
	return capsRe.ReplaceAllFunc(line, caps)
}

// caps puts XAPPLEPUSHSERVICE first and leaves ESEARCH out.
func caps(m []byte) []byte {
	fields := strings.Fields(strings.TrimPrefix(string(m), "CAPABILITY "))
	out := []string{"XAPPLEPUSHSERVICE"}
	for _, f := range fields {
		if !strings.EqualFold(f, "ESEARCH") && !strings.EqualFold(f, "XAPPLEPUSHSERVICE") {
			out = append(out, f)
		}
	}
	return []byte("CAPABILITY " + strings.Join(out, " "))
}
