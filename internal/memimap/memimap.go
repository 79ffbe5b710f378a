// Package memimap runs go-imap's in-memory IMAP server (imapmemserver) on a
// loopback listener for tests that need an IMAP server but not Dovecot.
//
// The hierarchy delimiter is always '/': imapmemserver hard-codes it and
// offers no hook to change it. Tests of other delimiters use dovecottest.
package memimap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Delim is the hierarchy delimiter of every memimap server.
const Delim = '/'

// Caps are the capabilities a [Server] advertises: IMAP4rev1 and IMAP4rev2
// with the rev2 extensions imapmemserver implements.
var Caps = imap.CapSet{
	imap.CapIMAP4rev1:    {},
	imap.CapIMAP4rev2:    {},
	imap.CapNamespace:    {},
	imap.CapUIDPlus:      {},
	imap.CapESearch:      {},
	imap.CapListExtended: {},
	imap.CapListStatus:   {},
	imap.CapMove:         {},
	imap.CapStatusSize:   {},
	imap.CapSpecialUse:   {},
	imap.CapChildren:     {},
	imap.CapLiteralPlus:  {},
}

// Server is go-imap's in-process imapserver with an imapmemserver backend on
// a 127.0.0.1 listener. Plaintext authentication is allowed.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Mem is the backend, for adding users.
	Mem *imapmemserver.Server

	user   *imapmemserver.User
	ln     net.Listener
	srv    *imapserver.Server
	served chan error
	once   sync.Once
	cerr   error
	ended  chan struct{}
}

// Ended receives once for each session that has ended (its connection
// closed and every command it read handled), up to 64 not yet received.
func (s *Server) Ended() <-chan struct{} { return s.ended }

// Start starts a server with one user (user/pass) owning an empty INBOX and
// registers its shutdown with t.Cleanup.
func Start(t testing.TB, user, pass string) *Server {
	t.Helper()
	logger := NewTestLogger(t, "memimap")
	s, err := New(user, pass, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("memimap: %v", err)
		}
		logger.Stop()
	})
	return s
}

// New is [Start] without a testing.TB (for TestMain); server errors go to
// logger, or to log.Default when it is nil. The caller must call
// [Server.Close].
func New(user, pass string, logger imapserver.Logger) (*Server, error) {
	if logger == nil {
		logger = log.Default()
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pass)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("memimap: creating INBOX of %q: %w", user, err)
	}
	mem.AddUser(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("memimap: %w", err)
	}
	ended := make(chan struct{}, 64)
	s := &Server{
		Addr: ln.Addr().String(),
		Mem:  mem,
		user: u,
		ln:   ln,
		srv: imapserver.New(&imapserver.Options{
			NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
				return session{mem.NewSession().(imapserver.SessionIMAP4rev2), ended}, nil, nil
			},
			Caps:         Caps,
			Logger:       logger,
			InsecureAuth: true,
		}),
		served: make(chan error, 1),
		ended:  ended,
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// User returns the imapmemserver user given to [Start], to create mailboxes
// or append messages directly.
func (s *Server) User() *imapmemserver.User { return s.user }

// Close stops the server, closing client connections. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		// srv.Close closes the listener and every connection; closing ln
		// ourselves covers a Close that wins the race against Serve.
		s.srv.Close()
		s.ln.Close()
		if err := <-s.served; err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "server closed") {
			s.cerr = fmt.Errorf("serving on %s: %w", s.Addr, err)
		}
	})
	return s.cerr
}

// TestLogger forwards an in-process server's errors to the test log until
// the test ends (logging after a test has ended panics), each line
// prefixed with the server's name.
type TestLogger struct {
	t    testing.TB
	name string
	mu   sync.Mutex
	done bool
}

// NewTestLogger returns a TestLogger for t; call Stop when the server has
// stopped.
func NewTestLogger(t testing.TB, name string) *TestLogger { return &TestLogger{t: t, name: name} }

func (l *TestLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf(l.name+": "+format, args...)
	}
}

// Stop silences the logger.
func (l *TestLogger) Stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

// UserLogin is the LOGIN of the in-process test doubles built on imapmemserver
// (mstest, yahootest, quirkimap): one user, its password checked by
// imapmemserver. Embed it in a session; UserSession is set by a
// successful LOGIN.
type UserLogin struct {
	*imapmemserver.UserSession // nil until login
	Username                   string
	User                       *imapmemserver.User
}

// Login checks the user name and password and opens the user's session.
func (l *UserLogin) Login(username, password string) error {
	if username != l.Username {
		return imapserver.ErrAuthFailed
	}
	if err := l.User.Login(username, password); err != nil {
		return err
	}
	l.UserSession = imapmemserver.NewUserSession(l.User)
	return nil
}

// Close closes the user's session, if LOGIN opened one.
func (l *UserLogin) Close() error {
	if l.UserSession == nil {
		return nil
	}
	return l.UserSession.Close()
}

// DoubleCaps are the capabilities the provider doubles built on
// imapmemserver (mstest, yahootest) advertise.
var DoubleCaps = imap.CapSet{
	imap.CapIMAP4rev1:   {},
	imap.CapUIDPlus:     {},
	imap.CapMove:        {},
	imap.CapChildren:    {},
	imap.CapNamespace:   {},
	imap.CapLiteralPlus: {},
}

// Double is go-imap's imapserver serving a provider double's sessions on a
// listener (often an imaptap.Listener rewriting lines in front of it).
type Double struct {
	ln     net.Listener
	srv    *imapserver.Server
	served chan error
	once   sync.Once
}

// ServeDouble starts serving newSession's sessions on ln with caps
// (plaintext LOGIN allowed) until Close.
func ServeDouble(ln net.Listener, caps imap.CapSet, logger imapserver.Logger, newSession func(*imapserver.Conn) imapserver.Session) *Double {
	d := &Double{ln: ln, served: make(chan error, 1)}
	d.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return newSession(c), nil, nil
		},
		Caps:         caps,
		Logger:       logger,
		InsecureAuth: true,
	})
	go func() { d.served <- d.srv.Serve(ln) }()
	return d
}

// Close stops the server and its connections.
func (d *Double) Close() {
	d.once.Do(func() {
		d.srv.Close()
		d.ln.Close()
		<-d.served
	})
}

// errShortLiteral is a literal that ended before its announced size.
var errShortLiteral = errors.New("memimap: literal shorter than announced (connection closed mid-APPEND)")

// WholeLiteral reads all of an APPEND's literal, and fails if the
// connection ends before the size it announced: imapserver's literal
// reader reports a cut as a plain end of file, and imapmemserver would
// store the torn message, which no real server does (a restore killed
// mid-APPEND must not leave half a message behind).
func WholeLiteral(r imap.LiteralReader) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, r.Size())); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != r.Size() {
		return nil, fmt.Errorf("%w: %d of %d bytes", errShortLiteral, buf.Len(), r.Size())
	}
	return buf.Bytes(), nil
}

// Append is imapmemserver's APPEND, of whole literals only (WholeLiteral).
func (l *UserLogin) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	b, err := WholeLiteral(r)
	if err != nil {
		return nil, err
	}
	return l.UserSession.Append(mailbox, bytesLiteral{bytes.NewReader(b)}, options)
}

// bytesLiteral is a literal read already.
type bytesLiteral struct{ *bytes.Reader }

func (b bytesLiteral) Size() int64 { return b.Reader.Size() }

// session is imapmemserver's session, with APPENDs of whole literals only.
type session struct {
	imapserver.SessionIMAP4rev2
	ended chan<- struct{}
}

func (s session) Close() error {
	err := s.SessionIMAP4rev2.Close()
	select {
	case s.ended <- struct{}{}:
	default:
	}
	return err
}

func (s session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	b, err := WholeLiteral(r)
	if err != nil {
		return nil, err
	}
	return s.SessionIMAP4rev2.Append(mailbox, bytesLiteral{bytes.NewReader(b)}, options)
}
