// Package mstest runs a Microsoft 365 (Exchange Online) IMAP double for
// tests: go-imap's imapserver with an imapmemserver backend on a loopback
// listener, and a line-level tap (internal/imaptap) for the answers
// imapserver cannot give. What it copies, and from where:
//
//   - Capabilities as outlook.office365.com sends them (protocol log in
//     MailKit issue #849: "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR
//     UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"), without
//     AUTH=XOAUTH2 and ID, which the double does not serve. No CONDSTORE:
//     SELECT (CONDSTORE) is a BAD, as at Exchange.
//   - Throttling (imapsync FAQ.Office365; imap_tools #135; email-oauth2-
//     proxy #191): once more than Throttle.Commands commands arrived within
//     Throttle.Window of the injected clock (on all of the mailbox's
//     connections: Exchange throttles per mailbox), every command until
//     Throttle.Backoff has passed is answered "BAD Request is throttled.
//     Suggested Backoff Time: N milliseconds", N the milliseconds left;
//     with ByeOnThrottle the connection then ends with "* BYE Connection
//     closed. 14" (the sequence email-oauth2-proxy #191 logged).
//   - Throttled APPENDs ([Options.ThrottleAppends]): every Nth APPEND is
//     answered "BAD Request is throttled. Suggested Backoff Time: N
//     milliseconds" whatever the rate, as a migration into Exchange
//     Online meets it (imapsync FAQ.Office365: "Request is throttled"
//     on APPEND, with its suggested backoff); the literal is swallowed
//     and the message not stored.
//   - Too many errors: after MaxErrors (10) NO or BAD answers on one
//     connection it ends with "* BYE Connection closed. 14" (issue 13:
//     "disconnect after 10 errors"; the BYE text is the one Exchange sends
//     when it drops a connection, MailKit #849).
//   - "BAD User is authenticated but not connected." to SELECT/EXAMINE
//     (log in wiki.jashankj.space/Rants/Office365), on demand
//     ([Server.FailSelects]).
//   - APPEND over the size limit: "NO Maximum size of appendable message
//     has been exceeded." after the literal was sent (issue 13, from
//     MailKit's tracker); no APPENDLIMIT capability.
//   - UIDVALIDITY changes on a folder ([Server.BumpUIDValidity]; issue 13:
//     "UIDVALIDITY changes on the Archive folder"): same messages, new
//     UIDVALIDITY, UIDs from 1.
package mstest

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/internal/imaptap"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// Defaults of [Options].
const (
	MaxErrors   = 10
	AppendLimit = 35 << 20 // Exchange Online's default message size limit, 35 MB
)

// Throttle: once more than Commands commands arrived within Window,
// commands are refused for Backoff.
type Throttle struct {
	Commands int
	Window   time.Duration
	Backoff  time.Duration
}

// Options; the zero value is Microsoft 365's defaults without throttling.
type Options struct {
	Throttle      Throttle
	ByeOnThrottle bool
	// ThrottleAppends, when > 0, answers every ThrottleAppends-th APPEND
	// (counted over all connections) as throttled, suggesting
	// AppendBackoff (default 2 s).
	ThrottleAppends int
	AppendBackoff   time.Duration
	MaxErrors       int   // 0: 10
	AppendLimit     int64 // 0: 35 MiB
	Now             func() time.Time
}

// Capabilities is the capability list the double sends.
const Capabilities = "IMAP4 IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS MOVE UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"

// Server is the Microsoft 365 double, with one user.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	opt        Options
	user       *imapmemserver.User
	username   string
	mu         sync.Mutex
	cmds       []time.Time
	until      time.Time // throttled until
	failSelect int
	appends    int

	double *memimap.Double
}

// Start starts a double with one user owning an empty INBOX and stops it
// when the test ends.
func Start(t testing.TB, username, password string, opt Options) *Server {
	t.Helper()
	logger := memimap.NewTestLogger(t, "mstest")
	s, err := New(username, password, opt, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		logger.Stop()
	})
	return s
}

// New is Start without a testing.TB; the caller must Close it.
func New(username, password string, opt Options, logger imapserver.Logger) (*Server, error) {
	if opt.MaxErrors == 0 {
		opt.MaxErrors = MaxErrors
	}
	if opt.AppendLimit == 0 {
		opt.AppendLimit = AppendLimit
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	u := imapmemserver.NewUser(username, password)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("mstest: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mstest: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), opt: opt, user: u, username: username}
	tapped := &imaptap.Listener{Listener: ln, New: func(c *imaptap.Conn) imaptap.Hooks {
		return &tap{srv: s, conn: c, replace: map[string]string{}}
	}}
	s.double = memimap.ServeDouble(tapped, memimap.DoubleCaps, logger, func(*imapserver.Conn) imapserver.Session {
		return &session{srv: s, UserLogin: memimap.UserLogin{Username: s.username, User: s.user}}
	})
	return s, nil
}

// Close stops the server and its connections.
func (s *Server) Close() {
	s.double.Close()
}

// User returns the backend user, to create folders and append directly.
func (s *Server) User() *imapmemserver.User { return s.user }

// UIDValidity returns a folder's UIDVALIDITY.
func (s *Server) UIDValidity(folder string) (uint32, error) {
	d, err := s.user.Status(folder, &imap.StatusOptions{UIDValidity: true})
	if err != nil {
		return 0, fmt.Errorf("mstest: %s: %w", folder, err)
	}
	return d.UIDValidity, nil
}

// BumpUIDValidity gives folder a new UIDVALIDITY, keeping its messages
// (flags and dates included) under new UIDs from 1, as Exchange does to
// its Archive folder. Sessions that have the folder selected keep the old
// folder until they select again.
func (s *Server) BumpUIDValidity(folder string) error {
	tmp := folder + ".mstest-old"
	if err := s.user.Rename(folder, tmp, nil); err != nil {
		return fmt.Errorf("mstest: bump %s: %w", folder, err)
	}
	if err := s.user.Create(folder, nil); err != nil {
		return fmt.Errorf("mstest: bump %s: %w", folder, err)
	}
	sess := imapmemserver.NewUserSession(s.user)
	defer sess.Close()
	data, err := sess.Select(tmp, &imap.SelectOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("mstest: bump %s: %w", folder, err)
	}
	if data.NumMessages > 0 {
		if _, err := sess.Copy(imap.SeqSet{{Start: 1, Stop: data.NumMessages}}, folder); err != nil {
			return fmt.Errorf("mstest: bump %s: %w", folder, err)
		}
	}
	if err := sess.Unselect(); err != nil {
		return fmt.Errorf("mstest: bump %s: %w", folder, err)
	}
	if err := s.user.Delete(tmp); err != nil {
		return fmt.Errorf("mstest: bump %s: %w", folder, err)
	}
	return nil
}

// FailSelects makes the next n SELECT or EXAMINE commands answer "BAD
// User is authenticated but not connected.".
func (s *Server) FailSelects(n int) {
	s.mu.Lock()
	s.failSelect = n
	s.mu.Unlock()
}

// throttle notes a command and returns the backoff to announce, or 0.
func (s *Server) throttle() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.opt.Throttle
	if t.Commands == 0 {
		return 0
	}
	now := s.opt.Now()
	if now.Before(s.until) {
		return s.until.Sub(now)
	}
	keep := s.cmds[:0]
	for _, c := range s.cmds {
		if now.Sub(c) < t.Window {
			keep = append(keep, c)
		}
	}
	s.cmds = append(keep, now)
	if len(s.cmds) > t.Commands {
		s.cmds = nil
		s.until = now.Add(t.Backoff)
		return t.Backoff
	}
	return 0
}

// throttleAppend counts an APPEND and returns the backoff to announce
// when it is the Nth, or 0.
func (s *Server) throttleAppend(name string) time.Duration {
	if name != "APPEND" || s.opt.ThrottleAppends <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	if s.appends%s.opt.ThrottleAppends != 0 {
		return 0
	}
	if s.opt.AppendBackoff > 0 {
		return s.opt.AppendBackoff
	}
	return 2 * time.Second
}

func (s *Server) takeFailSelect() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSelect > 0 {
		s.failSelect--
		return true
	}
	return false
}

// session is imapmemserver's UserSession with the size limit.
type session struct {
	memimap.UserLogin // UserSession set by LOGIN
	srv               *Server
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)

// ErrTooBig is the answer to an APPEND over the size limit.
var ErrTooBig = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Maximum size of appendable message has been exceeded."}

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > s.srv.opt.AppendLimit {
		io.Copy(io.Discard, r)
		return nil, ErrTooBig
	}
	return s.UserLogin.Append(mailbox, r, options)
}

// tap rewrites one connection's protocol.
type tap struct {
	srv     *Server
	conn    *imaptap.Conn
	mu      sync.Mutex
	replace map[string]string // tag -> status text that replaces the NOOP's answer
	errors  int
}

func (t *tap) Command(line []byte) []byte {
	tag, name, _ := imaptap.Command(line)
	if tag == "" || name == "" {
		return line
	}
	var answer string
	if d := t.srv.throttleAppend(name); d > 0 {
		answer = "BAD Request is throttled. Suggested Backoff Time: " + strconv.FormatInt(d.Milliseconds(), 10) + " milliseconds"
	} else if d := t.srv.throttle(); d > 0 {
		answer = "BAD Request is throttled. Suggested Backoff Time: " + strconv.FormatInt(d.Milliseconds(), 10) + " milliseconds"
	} else if (name == "SELECT" || name == "EXAMINE") && t.srv.takeFailSelect() {
		answer = "BAD User is authenticated but not connected."
	}
	if answer == "" {
		return line
	}
	t.mu.Lock()
	t.replace[tag] = answer
	t.mu.Unlock()
	return []byte(tag + " NOOP\r\n")
}

var capsRe = regexp.MustCompile(`CAPABILITY [^\]\r\n]*`)

func (t *tap) Response(line []byte) []byte {
	tag, status, _, ok := imaptap.Tagged(line)
	if !ok {
		if strings.Contains(string(line), "CAPABILITY ") {
			return capsRe.ReplaceAll(line, []byte("CAPABILITY "+Capabilities))
		}
		return line
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.replace[tag]; ok {
		delete(t.replace, tag)
		line = []byte(tag + " " + r + "\r\n")
		status = "BAD"
		if strings.HasPrefix(r, "BAD Request is throttled") && t.srv.opt.ByeOnThrottle {
			t.conn.CloseAfterWrite()
			return append(line, "* BYE Connection closed. 14\r\n"...)
		}
	}
	line = capsRe.ReplaceAll(line, []byte("CAPABILITY "+Capabilities))
	if status == "NO" || status == "BAD" {
		t.errors++
		if t.errors >= t.srv.opt.MaxErrors {
			t.conn.CloseAfterWrite()
			return append(line, "* BYE Connection closed. 14\r\n"...)
		}
	}
	return line
}
