// Package gmailtest runs a Gmail double for tests: go-imap's imapserver on
// a loopback listener with a session over one Gmail-like account (labels
// as folders over one message store), and a line-level tap
// (internal/imaptap) for what imapserver cannot express: the X-GM-EXT-1
// FETCH items and STORE X-GM-LABELS, MODSEQ/CHANGEDSINCE/HIGHESTMODSEQ,
// Gmail's capability list and its answers to limits.
//
// What it copies, and from where:
//
//   - Login: LOGIN and AUTHENTICATE PLAIN with the password; with
//     Options.AccessToken, AUTHENTICATE XOAUTH2 (developers.google.com/
//     gmail/imap/xoauth2-protocol: a refused token gets a continuation
//     with a JSON error, then NO) and OAUTHBEARER; a failure answers
//     "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)".
//   - Capabilities (developers.google.com/gmail/imap/imap-extensions,
//     "Checking for the presence of extensions"; APPENDLIMIT=35651584 as
//     imap.gmail.com advertises it after login): IMAP4rev1 X-GM-EXT-1
//     CONDSTORE UIDPLUS MOVE NAMESPACE ESEARCH SPECIAL-USE LIST-EXTENDED
//     LIST-STATUS CHILDREN UNSELECT IDLE ENABLE LITERAL- APPENDLIMIT. Not
//     LITERAL+ (the doc's example lists it; imap.gmail.com today sends
//     LITERAL-), not QUOTA, ID, XLIST or COMPRESS (not served here).
//   - Folders (imap-extensions, "Special-Use Extension of the LIST
//     command"; imapsync FAQ.Gmail): INBOX, [Gmail] (\Noselect),
//     [Gmail]/All Mail \All, Drafts \Drafts, Important \Important,
//     Sent Mail \Sent, Spam \Junk, Starred \Flagged, Trash \Trash, and one
//     folder per user label, delimiter "/". All Mail shows every message
//     except those in Spam and Trash; a label folder shows the messages
//     with that label; each folder numbers its messages with its own UIDs
//     (so a message with three labels is listed in four folders).
//   - X-GM-MSGID, X-GM-THRID, X-GM-LABELS (imap-extensions, "Access to the
//     Gmail unique message ID", "thread ID", "labels"): the same message
//     has the same X-GM-MSGID in every folder; X-GM-THRID is the
//     X-GM-MSGID of the thread's first message; X-GM-LABELS lists the
//     message's labels, system labels as "\\Inbox" (quoted, backslash
//     escaped), user labels as atoms when they can be, else quoted, in
//     modified UTF-7. The IDs are above 2^63, as unsigned 64-bit numbers.
//   - STORE [+-]X-GM-LABELS (imap-extensions): changes the labels, so the
//     message enters or leaves label folders (EXISTS/EXPUNGE to the
//     sessions that have them selected); the answer is FETCH X-GM-LABELS.
//     A label that does not exist is created. \Starred and the \Flagged
//     flag are one thing.
//   - CONDSTORE (Gmail advertises it; imapserver does not parse it): each
//     message has a MODSEQ from one account-wide counter, bumped by every
//     flag or label change; a folder's HIGHESTMODSEQ is the counter at
//     the last change to a message it shows or to its membership. The
//     tap serves SELECT/EXAMINE (CONDSTORE) with "* OK [HIGHESTMODSEQ n]",
//     HIGHESTMODSEQ in STATUS and LIST-STATUS, FETCH MODSEQ and the
//     CHANGEDSINCE modifier, and ENABLE CONDSTORE.
//   - APPEND into a folder makes a message in All Mail carrying that
//     folder's label; over APPENDLIMIT the answer is "BAD [TOOBIG] Message
//     too large." (as reported by imapsync FAQ.Gmail and GYB users; the
//     issue quotes it).
//   - EXPUNGE with Gmail's default IMAP settings: from a label folder it
//     removes the label, from All Mail it moves to Trash, from Trash or
//     Spam the message is gone.
//   - Limits: 15 simultaneous connections per account, the 16th LOGIN
//     answered "NO [ALERT] Too many simultaneous connections. (Failure)"
//     (Gmail's IMAP limits as imapsync FAQ.Gmail and issue 13 report them);
//     a daily download quota (Gmail bandwidth limits, support.google.com/a/
//     answer/1071518: 2,500 MB a day of IMAP download) counted in message
//     bytes served by FETCH body sections, after which a FETCH of a body
//     answers "NO [OVERQUOTA] Account exceeded command or bandwidth
//     limits. (Failure)" (seen from Gmail by IMAPClient users), or, with
//     Options.ByeOnQuota, the connection ends with "* BYE Session expired,
//     please login again." (the other answer imapsync FAQ.Gmail reports);
//     the quota resets when the injected clock enters a new UTC day.
//     A daily upload quota (Gmail's IMAP upload limit, about 500 MB a
//     day: support.google.com/a/answer/1071518) counted in the bytes of
//     messages APPENDed, after which APPEND stores nothing and answers
//     "NO [ALERT] Account exceeded command or bandwidth limits. (Failure)";
//     it resets with the day as the download quota does.
//     [THROTTLED] on OK responses while the account is throttled
//     (switchable, or after Options.Throttle.Commands commands within
//     Options.Throttle.Window of the injected clock).
//
// Not copied: the crawl below 1 KB/s that sometimes replaces the quota
// answer, the BYE that sometimes answers an APPEND past the upload
// quota, APPEND's de-duplication by
// Message-ID, X-GM-RAW search, auto-expunge on STORE \Deleted, and
// MODSEQ in unsolicited FETCH updates.
package gmailtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/internal/imaptap"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// Gmail's limits, the defaults of [Options].
const (
	MaxConns      = 15
	AppendLimit   = 35651584
	DailyDownload = 2500 << 20
	DailyUpload   = 500 << 20
)

// Throttle marks OK responses [THROTTLED] once more than Commands
// commands arrived within Window (by the injected clock).
type Throttle struct {
	Commands int
	Window   time.Duration
}

// Options change the double's limits; the zero value is Gmail's.
type Options struct {
	MaxConns      int    // simultaneous logged-in connections; 0: 15
	AppendLimit   uint32 // 0: 35651584
	DailyDownload int64  // bytes of message a day; 0: 2,500 MiB
	DailyUpload   int64  // bytes of message APPENDed a day; 0: 500 MiB
	// ByeOnQuota ends the session with "* BYE Session expired, please login
	// again." when the quota is spent, instead of NO [OVERQUOTA].
	ByeOnQuota bool
	Throttle   Throttle
	// AccessToken, when set, is the OAuth2 access token AUTHENTICATE
	// XOAUTH2 and OAUTHBEARER accept for the user (Gmail offers both).
	AccessToken string
	// Now is the clock of the quota and the throttle; nil: time.Now.
	Now func() time.Time
}

// Server is the Gmail double, with one account.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	opt        Options
	user, pass string

	mu        sync.Mutex
	acct      *account
	conns     int
	connsCh   chan struct{} // closed and replaced when conns changes
	quotaDay  string
	used      int64
	upDay     string
	uploaded  int64
	upRefused int
	throttled bool
	cmds      []time.Time

	double *memimap.Double
}

// Start starts a double for user/pass and stops it when the test ends.
func Start(t testing.TB, user, pass string, opt Options) *Server {
	t.Helper()
	logger := memimap.NewTestLogger(t, "gmailtest")
	s, err := New(user, pass, opt, logger)
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
func New(user, pass string, opt Options, logger imapserver.Logger) (*Server, error) {
	if opt.MaxConns == 0 {
		opt.MaxConns = MaxConns
	}
	if opt.AppendLimit == 0 {
		opt.AppendLimit = AppendLimit
	}
	if opt.DailyDownload == 0 {
		opt.DailyDownload = DailyDownload
	}
	if opt.DailyUpload == 0 {
		opt.DailyUpload = DailyUpload
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gmailtest: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), opt: opt, user: user, pass: pass, acct: newAccount(), connsCh: make(chan struct{})}
	tapped := &imaptap.Listener{Listener: ln, New: func(c *imaptap.Conn) imaptap.Hooks {
		return &tap{srv: s, injects: map[imap.UID]string{}, selects: map[string]string{}, status: map[string]bool{}}
	}}
	caps := imap.CapSet{
		imap.CapIMAP4rev1:    {},
		imap.CapNamespace:    {},
		imap.CapUIDPlus:      {},
		imap.CapESearch:      {},
		imap.CapListExtended: {},
		imap.CapListStatus:   {},
		imap.CapMove:         {},
		imap.CapSpecialUse:   {},
		imap.CapChildren:     {},
	}
	s.double = memimap.ServeDouble(tapped, caps, logger, func(c *imapserver.Conn) imapserver.Session {
		sess := &session{srv: s, conn: c}
		if tc, ok := c.NetConn().(*imaptap.Conn); ok {
			sess.tap = tc.Hooks().(*tap)
		}
		return sess
	})
	return s, nil
}

// Close stops the server and its connections.
func (s *Server) Close() {
	s.double.Close()
}

// NewMessage is a message for [Server.Add].
type NewMessage struct {
	Body []byte
	// Labels: user labels ("Work", "Family/Kids") and system labels
	// (LabelInbox, LabelSent, LabelImportant, LabelStarred, LabelDraft,
	// LabelSpam, LabelTrash).
	Labels []string
	Flags  []imap.Flag
	Date   time.Time // zero: the injected clock
	// Thread is the X-GM-MSGID of a message whose thread this one joins;
	// 0 starts a thread.
	Thread uint64
}

// Add puts a message into the account and returns its X-GM-MSGID.
func (s *Server) Add(m NewMessage) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	date := m.Date
	if date.IsZero() {
		date = s.opt.Now()
	}
	return s.addLocked(m.Body, m.Labels, m.Flags, date, m.Thread).id
}

func (s *Server) addLocked(body []byte, labels []string, flags []imap.Flag, date time.Time, thread uint64) *msg {
	a := s.acct
	m := &msg{id: a.nextID, labels: map[string]bool{}, flags: map[imap.Flag]bool{}, body: append([]byte(nil), body...), date: date}
	a.nextID++
	m.thr = m.id
	if t := a.byID[thread]; t != nil {
		m.thr = t.thr
	}
	for _, f := range flags {
		m.flags[canonicalFlag(f)] = true
	}
	a.syncFlagsToLabels(m)
	for _, l := range labels {
		a.setLabel(m, canonicalLabel(l), true)
	}
	a.bump(m)
	a.msgs = append(a.msgs, m)
	a.byID[m.id] = m
	a.place(m)
	return m
}

// ErrNoMessage is returned for an unknown X-GM-MSGID.
var ErrNoMessage = fmt.Errorf("gmailtest: no such message")

// AddLabels and RemoveLabels change a message's labels as the Gmail web
// interface would (sessions see EXISTS/EXPUNGE in the label folders).
func (s *Server) AddLabels(id uint64, labels ...string) error { return s.label(id, true, labels) }

// RemoveLabels: see AddLabels.
func (s *Server) RemoveLabels(id uint64, labels ...string) error { return s.label(id, false, labels) }

func (s *Server) label(id uint64, on bool, labels []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.acct.byID[id]
	if m == nil || m.deleted {
		return fmt.Errorf("%w: %d", ErrNoMessage, id)
	}
	before := fmt.Sprint(flagList(m))
	for _, l := range labels {
		s.acct.setLabel(m, canonicalLabel(l), on)
	}
	s.acct.place(m)
	if fmt.Sprint(flagList(m)) != before {
		s.acct.flagsChanged(m, nil, nil)
	}
	return nil
}

// Message is what the account holds about one message.
type Message struct {
	MsgID, ThrID uint64
	Labels       []string // sorted; system labels with their backslash
	Flags        []imap.Flag
	Body         []byte
	Date         time.Time
	ModSeq       uint64
	Folders      []string // the folders that show it, sorted
}

// Messages returns every message the account holds (Trash and Spam
// included), in X-GM-MSGID order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.acct.msgs {
		if m.deleted {
			continue
		}
		out = append(out, s.snapshot(m))
	}
	return out
}

// Message returns one message by X-GM-MSGID.
func (s *Server) Message(id uint64) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.acct.byID[id]
	if m == nil || m.deleted {
		return Message{}, false
	}
	return s.snapshot(m), true
}

func (s *Server) snapshot(m *msg) Message {
	var folders []string
	for _, f := range s.acct.folders {
		if f.index(m) >= 0 {
			folders = append(folders, f.name)
		}
	}
	sort.Strings(folders)
	return Message{MsgID: m.id, ThrID: m.thr, Labels: labelList(m), Flags: flagList(m), Body: append([]byte(nil), m.body...), Date: m.date, ModSeq: m.modseq, Folders: folders}
}

// Entry is one message as a folder lists it.
type Entry struct {
	UID   imap.UID
	MsgID uint64
}

// Folder lists a folder's messages in UID order, with its UIDVALIDITY;
// ok is false for a folder that does not exist.
func (s *Server) Folder(name string) (entries []Entry, uidValidity uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.acct.folder(name)
	if f == nil {
		return nil, 0, false
	}
	for _, e := range f.l {
		entries = append(entries, Entry{e.uid, e.m.id})
	}
	return entries, f.uidValidity, true
}

// Folders lists every folder name.
func (s *Server) Folders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.acct.sortedFolders() {
		out = append(out, f.name)
	}
	return out
}

// SetThrottled turns [THROTTLED] on OK responses on or off.
func (s *Server) SetThrottled(on bool) {
	s.mu.Lock()
	s.throttled = on
	s.mu.Unlock()
}

// Downloaded returns the message bytes served today (by the injected
// clock) against the daily quota.
func (s *Server) Downloaded() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quotaDay != s.opt.Now().UTC().Format(time.DateOnly) {
		return 0
	}
	return s.used
}

// Uploaded returns the message bytes APPENDed today (by the injected
// clock) against the daily upload quota.
func (s *Server) Uploaded() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upDay != s.opt.Now().UTC().Format(time.DateOnly) {
		return 0
	}
	return s.uploaded
}

// UploadsRefused returns the number of APPENDs refused past the upload
// quota, all days together.
func (s *Server) UploadsRefused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upRefused
}

// Conns returns the number of logged-in connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitConns waits until n connections are logged in, or ctx ends.
func (s *Server) WaitConns(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.conns, s.connsCh
		s.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("gmailtest: %d connections, want %d: %w", got, n, ctx.Err())
		}
	}
}

// connsChanged wakes WaitConns. The caller holds s.mu.
func (s *Server) connsChanged() {
	close(s.connsCh)
	s.connsCh = make(chan struct{})
}

// spend counts n bytes of download against today's quota, or reports
// that the quota is spent. A message is served while the quota is not
// yet reached, so the day ends at most one message over it. The caller
// holds s.mu.
func (s *Server) spend(now time.Time, n int64) bool {
	if day := now.UTC().Format(time.DateOnly); day != s.quotaDay {
		s.quotaDay, s.used = day, 0
	}
	if s.used >= s.opt.DailyDownload {
		return false
	}
	s.used += n
	return true
}

// spendUpload counts an APPEND of n bytes against today's upload quota,
// or reports that the quota is spent: as for downloads, a message is
// taken while the quota is not yet reached. The caller holds s.mu.
func (s *Server) spendUpload(now time.Time, n int64) bool {
	if day := now.UTC().Format(time.DateOnly); day != s.upDay {
		s.upDay, s.uploaded = day, 0
	}
	if s.uploaded >= s.opt.DailyUpload {
		s.upRefused++
		return false
	}
	s.uploaded += n
	return true
}

func (s *Server) noteCommand() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.Throttle.Commands == 0 {
		return
	}
	now := s.opt.Now()
	s.cmds = append(s.cmds, now)
	keep := s.cmds[:0]
	for _, t := range s.cmds {
		if now.Sub(t) < s.opt.Throttle.Window {
			keep = append(keep, t)
		}
	}
	s.cmds = keep
}

func (s *Server) isThrottled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttled {
		return true
	}
	if s.opt.Throttle.Commands == 0 {
		return false
	}
	now, n := s.opt.Now(), 0
	for _, t := range s.cmds {
		if now.Sub(t) < s.opt.Throttle.Window {
			n++
		}
	}
	return n > s.opt.Throttle.Commands
}

// highestModSeq returns a folder's HIGHESTMODSEQ (0 for no folder).
func (s *Server) highestModSeq(folder string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.acct.folder(folder); f != nil {
		return f.modseq
	}
	return 0
}

func headerOf(body []byte) (textproto.Header, error) {
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
}

// fetchReq is what the tap took out of one FETCH command (or the STORE
// X-GM-LABELS it turned into a FETCH) for the session to answer.
type fetchReq struct {
	tag                          string
	msgID, thrID, labels, modSeq bool
	changedSince                 uint64
	store                        *storeReq
}

type storeReq struct {
	op     imap.StoreFlagsOp
	labels []string
}

// extra returns the items to add after the UID of m's FETCH response.
// The caller holds srv.mu.
func (r *fetchReq) extra(m *msg) string {
	var parts []string
	if r.msgID {
		parts = append(parts, "X-GM-MSGID "+strconv.FormatUint(m.id, 10))
	}
	if r.thrID {
		parts = append(parts, "X-GM-THRID "+strconv.FormatUint(m.thr, 10))
	}
	if r.labels {
		var ls []string
		for _, l := range labelList(m) {
			if l == LabelSpam || l == LabelTrash {
				continue // the folder says it; Gmail lists neither as a label
			}
			ls = append(ls, encodeLabel(l))
		}
		parts = append(parts, "X-GM-LABELS ("+strings.Join(ls, " ")+")")
	}
	if r.modSeq {
		parts = append(parts, "MODSEQ ("+strconv.FormatUint(m.modseq, 10)+")")
	}
	return strings.Join(parts, " ")
}

// encodeLabel spells a label in X-GM-LABELS: a system label quoted with
// its backslash escaped ("\\Inbox"), a user label as an atom when it is
// one, else quoted, in modified UTF-7.
func encodeLabel(l string) string {
	if strings.HasPrefix(l, `\`) {
		return `"\\` + l[1:] + `"`
	}
	enc := gmailext.EncodeUTF7(l)
	atom := enc != "" && !strings.EqualFold(enc, "NIL")
	for i := 0; i < len(enc); i++ {
		if strings.IndexByte(`(){ %*"\]`, enc[i]) >= 0 || enc[i] < 0x21 || enc[i] > 0x7e {
			atom = false
		}
	}
	if atom {
		return enc
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(enc) + `"`
}

// tap is one connection's protocol rewriting (see the package doc).
type tap struct {
	srv *Server

	mu      sync.Mutex
	queue   []*fetchReq         // one per FETCH command imapserver has yet to answer
	injects map[imap.UID]string // items to add after "UID n" in FETCH responses
	selects map[string]string   // tag of SELECT/EXAMINE -> folder
	status  map[string]bool     // tags of STATUS/LIST asking for HIGHESTMODSEQ
	enable  bool                // an ENABLE CONDSTORE is being answered
}

func (t *tap) takeFetch() *fetchReq {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 {
		return nil
	}
	r := t.queue[0]
	t.queue = t.queue[1:]
	return r
}

func (t *tap) inject(uid imap.UID, extra string) {
	t.mu.Lock()
	t.injects[uid] = extra
	t.mu.Unlock()
}

var gmItems = map[string]bool{"X-GM-MSGID": true, "X-GM-THRID": true, "X-GM-LABELS": true, "MODSEQ": true}

// Command rewrites what imapserver cannot parse.
func (t *tap) Command(line []byte) []byte {
	t.srv.noteCommand()
	tag, name, args := imaptap.Command(line)
	switch name {
	case "FETCH", "UID FETCH":
		req, newArgs := splitFetch(args)
		req.tag = tag
		t.mu.Lock()
		t.queue = append(t.queue, req)
		t.mu.Unlock()
		return []byte(tag + " " + name + " " + newArgs + "\r\n")
	case "STORE", "UID STORE":
		set, rest, _ := strings.Cut(args, " ")
		item, list, _ := strings.Cut(rest, " ")
		op, silent, ok := labelItem(item)
		if !ok {
			return line
		}
		labels, ok := parseLabels(list)
		if !ok {
			return line // imapserver answers BAD
		}
		req := &fetchReq{tag: tag, labels: !silent, store: &storeReq{op: op, labels: labels}}
		t.mu.Lock()
		t.queue = append(t.queue, req)
		t.mu.Unlock()
		return []byte(tag + " " + strings.Replace(name, "STORE", "FETCH", 1) + " " + set + " (UID)\r\n")
	case "SELECT", "EXAMINE":
		folder, _ := mailboxArg(args)
		t.mu.Lock()
		t.selects[tag] = folder
		t.mu.Unlock()
		if i := strings.LastIndex(strings.ToUpper(args), " (CONDSTORE)"); i >= 0 {
			return []byte(tag + " " + name + " " + args[:i] + "\r\n")
		}
	case "STATUS", "LIST":
		// STATUS and LIST-STATUS items: imapserver knows no HIGHESTMODSEQ.
		if out, ok := stripHMS(args); ok {
			t.mu.Lock()
			t.status[tag] = true
			t.mu.Unlock()
			return []byte(tag + " " + name + " " + out + "\r\n")
		}
	case "ENABLE":
		if strings.Contains(strings.ToUpper(args), "CONDSTORE") {
			t.mu.Lock()
			t.enable = true
			t.mu.Unlock()
		}
	}
	return line
}

// labelItem recognises [+-]X-GM-LABELS[.SILENT].
func labelItem(item string) (imap.StoreFlagsOp, bool, bool) {
	u := strings.ToUpper(item)
	op := imap.StoreFlagsSet
	switch {
	case strings.HasPrefix(u, "+"):
		op, u = imap.StoreFlagsAdd, u[1:]
	case strings.HasPrefix(u, "-"):
		op, u = imap.StoreFlagsDel, u[1:]
	}
	silent := strings.HasSuffix(u, ".SILENT")
	u = strings.TrimSuffix(u, ".SILENT")
	return op, silent, u == "X-GM-LABELS"
}

// parseLabels parses "(l1 l2 ...)" or a single label: atoms and quoted
// strings in modified UTF-7 (a literal is not taken: imapserver answers
// BAD to the command it stays in).
func parseLabels(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") {
			return nil, false
		}
		s = s[1 : len(s)-1]
	}
	var out []string
	for s != "" {
		var raw string
		if s[0] == '"' {
			var sb strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				sb.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			raw, s = sb.String(), s[i+1:]
		} else {
			i := strings.IndexByte(s, ' ')
			if i < 0 {
				i = len(s)
			}
			raw, s = s[:i], s[i:]
			if strings.ContainsAny(raw, `(){"`) {
				return nil, false
			}
		}
		l, err := gmailext.DecodeUTF7(raw)
		if err != nil || l == "" {
			return nil, false
		}
		out = append(out, canonicalLabel(l))
		s = strings.TrimPrefix(s, " ")
	}
	return out, true
}

// splitFetch takes the Gmail items, MODSEQ and the CHANGEDSINCE modifier
// out of FETCH's arguments ("set atts [modifiers]").
func splitFetch(args string) (*fetchReq, string) {
	req := &fetchReq{}
	set, rest, _ := strings.Cut(args, " ")
	var atts, mods string
	if strings.HasPrefix(rest, "(") {
		end := matchParen(rest)
		if end < 0 {
			return req, args
		}
		atts, mods = rest[1:end], strings.TrimSpace(rest[end+1:])
	} else {
		atts, mods, _ = strings.Cut(rest, " ")
	}
	var kept []string
	for _, a := range splitTop(atts) {
		switch u := strings.ToUpper(a); {
		case !gmItems[u]:
			kept = append(kept, a)
		case u == "X-GM-MSGID":
			req.msgID = true
		case u == "X-GM-THRID":
			req.thrID = true
		case u == "X-GM-LABELS":
			req.labels = true
		case u == "MODSEQ":
			req.modSeq = true
		}
	}
	if m := changedSinceRe.FindStringSubmatch(mods); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err == nil {
			req.changedSince, req.modSeq, mods = n, true, ""
		}
	}
	if len(kept) == 0 {
		kept = []string{"UID"}
	}
	out := set + " (" + strings.Join(kept, " ") + ")"
	if mods != "" {
		out += " " + mods
	}
	return req, out
}

var changedSinceRe = regexp.MustCompile(`(?i)^\(CHANGEDSINCE (\d+)\)$`)

// matchParen returns the index of the ")" closing s[0], or -1.
func matchParen(s string) int {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits FETCH attributes at the spaces outside brackets.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '<':
			depth++
		case ')', ']', '>':
			depth--
		case ' ':
			if depth == 0 {
				if i > start {
					out = append(out, s[start:i])
				}
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// stripHMS takes HIGHESTMODSEQ out of a STATUS item list (a list of
// only HIGHESTMODSEQ becomes (UIDNEXT): imapserver refuses an empty one).
func stripHMS(args string) (string, bool) {
	u := strings.ToUpper(args)
	for _, p := range []struct{ find, repl string }{
		{"(HIGHESTMODSEQ)", "(UIDNEXT)"},
		{" HIGHESTMODSEQ)", ")"},
		{" HIGHESTMODSEQ ", " "},
		{"(HIGHESTMODSEQ ", "("},
	} {
		if i := strings.Index(u, p.find); i >= 0 {
			return args[:i] + p.repl + args[i+len(p.find):], true
		}
	}
	return args, false
}

// mailboxArg reads a mailbox argument (atom or quoted string, modified
// UTF-7) at the start of s.
func mailboxArg(s string) (string, string) {
	var raw, rest string
	if strings.HasPrefix(s, `"`) {
		var sb strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			sb.WriteByte(s[i])
		}
		raw = sb.String()
		if i < len(s) {
			rest = s[i+1:]
		}
	} else {
		raw, rest, _ = strings.Cut(s, " ")
		rest = " " + rest
	}
	name, err := gmailext.DecodeUTF7(raw)
	if err != nil {
		return raw, rest
	}
	return name, rest
}

var fetchUIDRe = regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+)`)

// Response adds what imapserver cannot say.
func (t *tap) Response(line []byte) []byte {
	if bytes.HasPrefix(line, []byte("* ")) {
		if m := fetchUIDRe.FindSubmatchIndex(line); m != nil {
			uid, _ := strconv.ParseUint(string(line[m[2]:m[3]]), 10, 32)
			t.mu.Lock()
			extra := t.injects[imap.UID(uid)]
			delete(t.injects, imap.UID(uid))
			t.mu.Unlock()
			if extra != "" {
				return []byte(string(line[:m[1]]) + " " + extra + string(line[m[1]:]))
			}
			return line
		}
		if rest, ok := bytes.CutPrefix(line, []byte("* STATUS ")); ok {
			t.mu.Lock()
			want := len(t.status) > 0
			t.mu.Unlock()
			if want && bytes.HasSuffix(line, []byte(")\r\n")) {
				folder, _ := mailboxArg(string(rest))
				body := bytes.TrimSuffix(line, []byte(")\r\n"))
				sep := " "
				if bytes.HasSuffix(body, []byte("(")) {
					sep = ""
				}
				return []byte(fmt.Sprintf("%s%sHIGHESTMODSEQ %d)\r\n", body, sep, t.srv.highestModSeq(folder)))
			}
			return line
		}
		if bytes.HasPrefix(line, []byte("* ENABLED")) {
			t.mu.Lock()
			en := t.enable
			t.enable = false
			t.mu.Unlock()
			if en {
				return append(bytes.TrimRight(line, "\r\n"), []byte(" CONDSTORE\r\n")...)
			}
		}
		return addCaps(line)
	}
	tag, status, rest, ok := imaptap.Tagged(line)
	if !ok {
		return line
	}
	t.mu.Lock()
	for i, r := range t.queue {
		if r.tag == tag {
			t.queue = append(t.queue[:i], t.queue[i+1:]...)
			break
		}
	}
	clear(t.injects)
	sel, isSel := t.selects[tag]
	delete(t.selects, tag)
	delete(t.status, tag)
	t.enable = false
	t.mu.Unlock()
	var pre string
	switch status {
	case "NO":
		if bytes.HasPrefix(rest, []byte("[TOOBIG]")) {
			return []byte(tag + " BAD [TOOBIG] Message too large.\r\n")
		}
	case "OK":
		line = addCaps(line)
		if isSel {
			pre = fmt.Sprintf("* OK [HIGHESTMODSEQ %d] Highest\r\n", t.srv.highestModSeq(sel))
		}
		if t.srv.isThrottled() {
			if bytes.HasPrefix(rest, []byte("[")) {
				pre += "* OK [THROTTLED] Account is being throttled\r\n"
			} else {
				line = []byte(tag + " OK [THROTTLED] " + string(rest))
			}
		}
	}
	return append([]byte(pre), line...)
}

// addCaps adds X-GM-EXT-1 and CONDSTORE to a capability list.
func addCaps(line []byte) []byte {
	return bytes.Replace(line, []byte("CAPABILITY IMAP4rev1"), []byte("CAPABILITY IMAP4rev1 X-GM-EXT-1 CONDSTORE"), 1)
}
