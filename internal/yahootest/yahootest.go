// Package yahootest runs a Yahoo Mail IMAP double for tests: go-imap's
// imapserver with an imapmemserver backend on a loopback listener, a
// session that changes what imapmemserver serves, and a line-level tap
// (internal/imaptap) for the capability list and ENABLE UIDONLY. What it
// copies, and from where:
//
//   - Capabilities as imap.mail.yahoo.com sends them (isbg issue #120:
//     "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER ID MOVE
//     NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT"),
//     without the SASL mechanisms and ID, which the double does not
//     serve, and with ENABLE and UIDONLY (RFC 9586), which Yahoo offers
//     for its "UID mode" (imap-proto pull request #198). No CONDSTORE
//     (Yahoo's XYMHIGHESTMODSEQ is its own).
//   - An APPEND whose message does not end in CRLF is refused with "BAD
//     [CLIENTBUG] Additional arguments found after last expected
//     argument" (imapsync FAQ.Yahoo and imapsync issue #209: the fix is a
//     final CRLF added to the message; MailKit issue #251: "the message
//     itself does not end with a CRLF ... once I add a newline to the end
//     of your message, it works reliably"). Nothing is stored.
//   - The limited view of a large folder (imapsync FAQ.Yahoo: "Yahoo via
//     imap.mail.yahoo.com can contain no more than 10_000 messages per
//     folder", 100,000 on export.imap.yahoo.com; imap-proto #198: "Its
//     default Limited mode exposes only a partial view for folders above
//     MESSAGELIMIT; UID mode, activated with ENABLE UIDONLY, allows
//     clients to fetch and operate on all messages"). Until ENABLE
//     UIDONLY, a folder of more than [Options.MessageLimit] messages
//     shows only its newest MessageLimit: SELECT/EXAMINE's EXISTS, FETCH
//     by sequence number, UID FETCH of a set with "*" (1:*) and SEARCH
//     see those alone. STATUS MESSAGES tells the whole count, and a UID
//     FETCH of an explicit range a:b reaches any message of it, at most
//     MessageLimit per command (the lowest UIDs first), as RFC 9738's
//     MESSAGELIMIT describes. The view follows the folder: messages
//     appended since the SELECT (over any connection) join it as its
//     newest. These details are the double's choice where
//     Yahoo's documentation is silent; sequence numbers in FETCH answers
//     are the folder's real ones, and after ENABLE UIDONLY answers are
//     still FETCH, not RFC 9586's UIDFETCH (go-imap cannot send them).
package yahootest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/internal/imaptap"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// MessageLimit is imap.mail.yahoo.com's view of a folder (imapsync
// FAQ.Yahoo).
const MessageLimit = 10000

// Capabilities is the capability list the double sends.
const Capabilities = "IMAP4rev1 MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT ENABLE UIDONLY"

// ClientBug is the answer to an APPEND of a message without a final CRLF.
var ClientBug = &imap.Error{Type: imap.StatusResponseTypeBad, Code: "CLIENTBUG", Text: "Additional arguments found after last expected argument"}

// Options; the zero value is imap.mail.yahoo.com.
type Options struct {
	// MessageLimit is how many messages of a folder the limited view
	// shows (0: 10,000; <0: no limit).
	MessageLimit int
	// MaxMessageSize bounds an APPEND's literal (0: 64 MiB).
	MaxMessageSize int64
}

// Server is the Yahoo double, with one user.
type Server struct {
	Addr string // "127.0.0.1:port"

	opt      Options
	user     *imapmemserver.User
	username string

	mu         sync.Mutex
	clientBugs int // APPENDs refused for their missing final CRLF
	limit      int // the limited view (opt.MessageLimit until SetMessageLimit)

	double *memimap.Double
}

// Start starts a double with one user owning an empty INBOX and stops it
// when the test ends.
func Start(t testing.TB, username, password string, opt Options) *Server {
	t.Helper()
	s, err := New(username, password, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// New is Start without a testing.TB; the caller must Close it. logger may
// be nil.
func New(username, password string, opt Options, logger imapserver.Logger) (*Server, error) {
	if opt.MessageLimit == 0 {
		opt.MessageLimit = MessageLimit
	}
	if opt.MaxMessageSize == 0 {
		opt.MaxMessageSize = 64 << 20
	}
	u := imapmemserver.NewUser(username, password)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("yahootest: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("yahootest: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), opt: opt, limit: opt.MessageLimit, user: u, username: username}
	tapped := &imaptap.Listener{Listener: ln, New: func(c *imaptap.Conn) imaptap.Hooks { return &tap{} }}
	if logger == nil {
		logger = discard{}
	}
	s.double = memimap.ServeDouble(tapped, memimap.DoubleCaps, logger, func(c *imapserver.Conn) imapserver.Session {
		sess := &session{srv: s, UserLogin: memimap.UserLogin{Username: s.username, User: s.user}}
		if tc, ok := c.NetConn().(*imaptap.Conn); ok {
			sess.tap, _ = tc.Hooks().(*tap)
		}
		return sess
	})
	return s, nil
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// Close stops the server and its connections.
func (s *Server) Close() {
	s.double.Close()
}

// User returns the backend user, to create folders and append directly
// (no CRLF rule there).
func (s *Server) User() *imapmemserver.User { return s.user }

// ClientBugs is the number of APPENDs refused for a missing final CRLF.
func (s *Server) ClientBugs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientBugs
}

// SetMessageLimit changes the limited view for the commands that follow
// (n < 0: no limit), e.g. to look at a whole folder with an ordinary
// client after a test.
func (s *Server) SetMessageLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
}

func (s *Server) messageLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// session is imapmemserver's UserSession with Yahoo's APPEND rule and
// limited view.
type session struct {
	memimap.UserLogin // UserSession set by LOGIN
	srv               *Server
	tap               *tap

	uids []imap.UID // the selected folder's UIDs, ascending
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > s.srv.opt.MaxMessageSize {
		io.Copy(io.Discard, r)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too large"}
	}
	b, err := memimap.WholeLiteral(r)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		s.srv.mu.Lock()
		s.srv.clientBugs++
		s.srv.mu.Unlock()
		return nil, ClientBug
	}
	return s.UserSession.Append(mailbox, bytes.NewReader(b), options)
}

// limited reports whether the selected folder shows its limited view,
// and how many of its oldest messages it hides.
func (s *session) limited() (bool, int) {
	lim := s.srv.messageLimit()
	if lim < 0 || (s.tap != nil && s.tap.uidOnly()) || len(s.uids) <= lim {
		return false, 0
	}
	return true, len(s.uids) - lim
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	if err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	if ok, hidden := s.limited(); ok {
		d := *data
		d.NumMessages = uint32(len(s.uids) - hidden)
		return &d, nil
	}
	return data, nil
}

// refresh learns the selected folder's UIDs again: messages appended
// since (over another connection too) join the view as its newest.
func (s *session) refresh() error {
	s.uids = nil
	all, err := s.UserSession.Search(imapserver.NumKindUID, &imap.SearchCriteria{}, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return err
	}
	if set, ok := all.All.(imap.UIDSet); ok {
		for _, r := range set {
			for u := r.Start; u <= r.Stop && r.Stop != 0; u++ {
				s.uids = append(s.uids, u)
			}
		}
	}
	slices.Sort(s.uids)
	return nil
}

func (s *session) Unselect() error {
	s.uids = nil
	return s.UserSession.Unselect()
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if err := s.refresh(); err != nil {
		return err
	}
	ok, hidden := s.limited()
	if !ok {
		return s.UserSession.Fetch(w, numSet, options)
	}
	var want []imap.UID
	switch set := numSet.(type) {
	case imap.SeqSet: // view numbers: the newest messages
		view := s.uids[hidden:]
		for _, r := range set {
			start, stop := r.Start, r.Stop
			if start == 0 {
				start = uint32(len(view))
			}
			if stop == 0 {
				stop = uint32(len(view))
			}
			if start > stop {
				start, stop = stop, start
			}
			for n := start; n <= stop && int(n) <= len(view); n++ {
				want = append(want, view[n-1])
			}
		}
	case imap.UIDSet:
		star := false
		for _, r := range set {
			star = star || r.Start == 0 || r.Stop == 0
		}
		from := s.uids
		if star {
			from = s.uids[hidden:] // "*": the view
		}
		for _, u := range from {
			if inUIDSet(set, u, s.uids[len(s.uids)-1]) {
				want = append(want, u)
			}
		}
		if lim := s.srv.messageLimit(); !star && lim >= 0 && len(want) > lim {
			want = want[:lim] // MESSAGELIMIT per command
		}
	}
	if len(want) == 0 {
		return nil
	}
	return s.UserSession.Fetch(w, imap.UIDSetNum(want...), options)
}

// inUIDSet reports whether u is in set, "*" being max.
func inUIDSet(set imap.UIDSet, u, max imap.UID) bool {
	for _, r := range set {
		start, stop := r.Start, r.Stop
		if start == 0 {
			start = max
		}
		if stop == 0 {
			stop = max
		}
		if start > stop {
			start, stop = stop, start
		}
		if u >= start && u <= stop {
			return true
		}
	}
	return false
}

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	data, err := s.UserSession.Search(kind, criteria, options)
	ok, hidden := s.limited()
	if err != nil || !ok {
		return data, err
	}
	out := &imap.SearchData{ModSeq: data.ModSeq}
	switch set := data.All.(type) {
	case imap.UIDSet:
		var keep []imap.UID
		for _, u := range s.uids[hidden:] {
			if set.Contains(u) {
				keep = append(keep, u)
			}
		}
		out.All = imap.UIDSetNum(keep...)
		out.Count = uint32(len(keep))
		if len(keep) > 0 {
			out.Min, out.Max = uint32(keep[0]), uint32(keep[len(keep)-1])
		}
	case imap.SeqSet:
		var keep []uint32
		for n := uint32(hidden) + 1; n <= uint32(len(s.uids)); n++ {
			if set.Contains(n) {
				keep = append(keep, n-uint32(hidden))
			}
		}
		out.All = imap.SeqSetNum(keep...)
		out.Count = uint32(len(keep))
		if len(keep) > 0 {
			out.Min, out.Max = keep[0], keep[len(keep)-1]
		}
	default:
		return data, nil
	}
	return out, nil
}

// tap rewrites the capability list and answers ENABLE UIDONLY.
type tap struct {
	mu       sync.Mutex
	uidonly  bool
	enabling bool
}

func (t *tap) uidOnly() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uidonly
}

func (t *tap) Command(line []byte) []byte {
	_, name, args := imaptap.Command(line)
	if name == "ENABLE" && slices.Contains(strings.Fields(strings.ToUpper(args)), "UIDONLY") {
		t.mu.Lock()
		t.enabling = true
		t.mu.Unlock()
	}
	return line
}

var capsRe = regexp.MustCompile(`CAPABILITY [^\]\r\n]*`)

func (t *tap) Response(line []byte) []byte {
	if bytes.HasPrefix(line, []byte("* ENABLED")) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.enabling {
			t.enabling, t.uidonly = false, true
			return []byte(strings.TrimRight(string(line), "\r\n") + " UIDONLY\r\n")
		}
		return line
	}
	if bytes.Contains(line, []byte("CAPABILITY ")) {
		return capsRe.ReplaceAll(line, []byte("CAPABILITY "+Capabilities))
	}
	return line
}
