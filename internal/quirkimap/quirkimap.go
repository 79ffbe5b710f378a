// Package quirkimap runs a scripted IMAP server for tests: go-imap's
// imapserver with an imapmemserver backend on a loopback listener, plus
// switchable behaviours that reproduce what real servers do to messages
// appended to them (issue 12):
//
//   - [Options.DropKeywordsOnSelected] (UW IMAP): keywords are dropped on
//     APPEND into the folder the same connection has selected.
//   - [Options.UnknownKeywords] (UW IMAP): a keyword the folder does not
//     know yet is not stored, and the APPEND still answers OK, with the text
//     "Unknown flag: K". A folder learns a keyword through STORE (which
//     works) or an APPEND that kept it.
//   - [Options.EightBitHeaders] (Cyrus IMAP): every byte >= 0x80 in the
//     header section becomes 'X'.
//   - [Options.AddFinalCRLF] (Courier IMAP): a message that does not end in
//     CRLF gets one.
//   - [Options.FutureDateNow] (Dovecot): an INTERNALDATE in the future is
//     replaced by the time of the APPEND.
//   - [Options.RefuseHeader] (any server): a message carrying this header
//     is refused with "NO [CANNOT] <header value>".
//   - [Options.DotNamespace] (Cyrus, Courier): the personal namespace is
//     "INBOX." with delimiter '.'; CREATE outside "INBOX." is refused.
//
// Otherwise it is imapmemserver as internal/memimap runs it (with its own
// quirks: keywords lowercased, BODY[] header rebuilt).
package quirkimap

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/internal/memimap"
)

// Options choose the behaviours of a [Server]; the zero value is plain
// imapmemserver.
type Options struct {
	DropKeywordsOnSelected bool
	UnknownKeywords        bool
	EightBitHeaders        bool
	AddFinalCRLF           bool
	FutureDateNow          bool
	// RefuseHeader names a header field ("X-Refuse"); a message carrying it
	// is refused with NO [CANNOT] and the field's value as text.
	RefuseHeader string
	DotNamespace bool
	// Now is the server's clock (FutureDateNow); nil means time.Now.
	Now func() time.Time
}

// Prefix and Delim of the personal namespace with DotNamespace.
const (
	DotPrefix = "INBOX."
	DotDelim  = '.'
)

// Server is a scripted IMAP server on 127.0.0.1 with one user.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	opt      Options
	user     *imapmemserver.User
	username string

	mu      sync.Mutex
	known   map[string]map[string]bool // folder -> keywords it knows (UnknownKeywords)
	folders map[string]bool            // folder names (DotNamespace LIST)

	ln     net.Listener
	srv    *imapserver.Server
	served chan error
	once   sync.Once
}

// Start starts a server with one user owning an empty INBOX and registers
// its shutdown with t.Cleanup.
func Start(t testing.TB, username, password string, opt Options) *Server {
	t.Helper()
	logger := memimap.NewTestLogger(t, "quirkimap")
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

// New is [Start] without a testing.TB; the caller must call [Server.Close].
func New(username, password string, opt Options, logger imapserver.Logger) (*Server, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	u := imapmemserver.NewUser(username, password)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("quirkimap: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("quirkimap: %w", err)
	}
	caps := imap.CapSet{}
	for c := range memimap.Caps {
		caps[c] = struct{}{}
	}
	if opt.DotNamespace {
		// LIST-STATUS would need imapmemserver's own LIST.
		delete(caps, imap.CapListStatus)
	}
	s := &Server{
		Addr:     ln.Addr().String(),
		opt:      opt,
		user:     u,
		username: username,
		known:    map[string]map[string]bool{},
		folders:  map[string]bool{"INBOX": true},
		ln:       &listener{Listener: ln},
		served:   make(chan error, 1),
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			qc, _ := c.NetConn().(*conn)
			return &session{srv: s, conn: qc, UserLogin: memimap.UserLogin{Username: s.username, User: s.user}}, nil, nil
		},
		Caps:         caps,
		Logger:       logger,
		InsecureAuth: true,
	})
	go func() { s.served <- s.srv.Serve(s.ln) }()
	return s, nil
}

// User returns the backend user, to create folders or append directly
// (bypassing every behaviour).
func (s *Server) User() *imapmemserver.User { return s.user }

// Close stops the server and closes client connections.
func (s *Server) Close() {
	s.once.Do(func() {
		s.srv.Close()
		s.ln.Close()
		<-s.served
	})
}

func (s *Server) knows(folder, kw string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[folder][strings.ToLower(kw)]
}

func (s *Server) learn(folder string, flags []imap.Flag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range flags {
		if isKeyword(f) {
			if s.known[folder] == nil {
				s.known[folder] = map[string]bool{}
			}
			s.known[folder][strings.ToLower(string(f))] = true
		}
	}
}

func isKeyword(f imap.Flag) bool { return !strings.HasPrefix(string(f), `\`) }

// listener hands out *conn, so that a session can change the text of its
// APPEND's tagged OK (imapserver always writes "APPEND completed").
type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

type conn struct {
	net.Conn
	mu     sync.Mutex
	okText string // replaces "APPEND completed" in the next tagged OK
}

var appendOK = []byte("] APPEND completed\r\n")

func (c *conn) setAppendText(text string) {
	c.mu.Lock()
	c.okText = text
	c.mu.Unlock()
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	text := c.okText
	c.mu.Unlock()
	if text == "" || !bytes.Contains(p, appendOK) {
		return c.Conn.Write(p)
	}
	c.setAppendText("")
	q := bytes.Replace(p, appendOK, []byte("] "+text+"\r\n"), 1)
	if _, err := c.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// session is imapmemserver's UserSession with the behaviours on top.
type session struct {
	memimap.UserLogin // UserSession set by LOGIN
	srv               *Server
	conn              *conn
	selected          string
}

var _ imapserver.Session = (*session)(nil)

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.selected = ""
	data, err := s.UserSession.Select(name, options)
	if err == nil {
		s.selected = canonical(name)
	}
	return data, err
}

func (s *session) Unselect() error {
	s.selected = ""
	return s.UserSession.Unselect()
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if err := s.UserSession.Store(w, numSet, flags, options); err != nil {
		return err
	}
	if flags.Op != imap.StoreFlagsDel {
		s.srv.learn(s.selected, flags.Flags)
	}
	return nil
}

// literal is a message held in memory, as an imap.LiteralReader.
type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	body, err := memimap.WholeLiteral(r)
	if err != nil {
		return nil, err
	}
	opt := *options
	opt.Flags = append([]imap.Flag(nil), options.Flags...)
	hdr, _ := header(body)
	if name := s.srv.opt.RefuseHeader; name != "" {
		if v, ok := headerValue(hdr, name); ok {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: "CANNOT", Text: v}
		}
	}
	if s.srv.opt.DropKeywordsOnSelected && canonical(mailbox) == s.selected {
		opt.Flags = systemOnly(opt.Flags)
	}
	var unknown []string
	if s.srv.opt.UnknownKeywords {
		var keep []imap.Flag
		for _, f := range opt.Flags {
			if isKeyword(f) && !s.srv.knows(canonical(mailbox), string(f)) {
				unknown = append(unknown, string(f))
				continue
			}
			keep = append(keep, f)
		}
		opt.Flags = keep
	}
	if s.srv.opt.EightBitHeaders {
		for i := range len(hdr) {
			if body[i] >= 0x80 {
				body[i] = 'X'
			}
		}
	}
	if s.srv.opt.AddFinalCRLF && !bytes.HasSuffix(body, []byte("\r\n")) {
		body = append(body, '\r', '\n')
	}
	if now := s.srv.opt.Now(); s.srv.opt.FutureDateNow && opt.Time.After(now) {
		opt.Time = now
	}
	data, err := s.UserSession.Append(mailbox, literal{bytes.NewReader(body), int64(len(body))}, &opt)
	if err != nil {
		return nil, err
	}
	s.srv.learn(canonical(mailbox), opt.Flags)
	if len(unknown) > 0 && s.conn != nil {
		s.conn.setAppendText("Unknown flag: " + strings.Join(unknown, " "))
	}
	return data, nil
}

// canonical spells INBOX in upper case, whatever the client wrote.
func canonical(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func systemOnly(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if !isKeyword(f) {
			out = append(out, f)
		}
	}
	return out
}

// header returns the header section of msg (up to and including the blank
// line, or all of msg when it has none) and whether a blank line was found.
func header(msg []byte) ([]byte, bool) {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return msg, false
		}
		line := msg[i : i+j]
		i += j + 1
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return msg[:i], true
		}
	}
	return msg, false
}

// headerValue returns the value of the first field called name in hdr.
func headerValue(hdr []byte, name string) (string, bool) {
	for _, line := range strings.Split(string(hdr), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// Namespace, List, Create, Delete and Rename give DotNamespace; without it
// they are imapmemserver's.

func (s *session) Namespace() (*imap.NamespaceData, error) {
	if !s.srv.opt.DotNamespace {
		return s.UserSession.Namespace()
	}
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: DotPrefix, Delim: DotDelim}}}, nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if !s.srv.opt.DotNamespace {
		return s.UserSession.List(w, ref, patterns, options)
	}
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: DotDelim})
	}
	s.srv.mu.Lock()
	var names []string
	for n := range s.srv.folders {
		names = append(names, n)
	}
	s.srv.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		for _, p := range patterns {
			if imapserver.MatchList(n, DotDelim, ref, p) {
				if err := w.WriteList(&imap.ListData{Mailbox: n, Delim: DotDelim}); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// errPermission is Cyrus's answer to a CREATE outside the user's namespace.
var errPermission = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Permission denied"}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	if s.srv.opt.DotNamespace {
		name = strings.TrimRight(name, string(DotDelim))
		if !strings.HasPrefix(name, DotPrefix) || len(name) == len(DotPrefix) {
			return errPermission
		}
	}
	if err := s.UserSession.Create(name, options); err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.folders[name] = true
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Delete(name string) error {
	if err := s.UserSession.Delete(name); err != nil {
		return err
	}
	s.srv.mu.Lock()
	delete(s.srv.folders, name)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	if s.srv.opt.DotNamespace && !strings.HasPrefix(newName, DotPrefix) {
		return errPermission
	}
	if err := s.UserSession.Rename(oldName, newName, options); err != nil {
		return err
	}
	s.srv.mu.Lock()
	delete(s.srv.folders, oldName)
	s.srv.folders[strings.TrimRight(newName, string(DotDelim))] = true
	s.srv.mu.Unlock()
	return nil
}
