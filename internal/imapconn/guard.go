package imapconn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mailkeep/mailkeep/internal/netdial"
)

// DefaultTimeout is how long mailkeep waits for a byte from a server that
// owes it an answer when Config.Timeout is zero (netdial's, shared with
// POP3).
const DefaultTimeout = netdial.DefaultTimeout

// MaxLine bounds a server's protocol line outside literals (and a literal
// that is not a message body section), in bytes. 1 MiB: the longest lines
// mailkeep asks for are one message's FETCH metadata (flags, size, date,
// a short header field) or one LIST entry, a few KB even with hundreds of
// keywords; the bound stops a server that never ends its line from making
// go-imap's parser (which buffers a line's strings and lists) grow without
// limit, at a cost of at most a few MiB per connection.
const MaxLine = 1 << 20

// MaxSearchLine bounds a SEARCH or ESEARCH response line: a plain UID
// SEARCH ALL (what go-imap sends without ESEARCH) lists every UID of a
// folder on one line, about 8 bytes each, so 32 MiB allows four million
// messages; go-imap keeps them as 4-byte UIDs (at most 64 MB).
const MaxSearchLine = 32 << 20

// ErrTimeout is wrapped by the error of a connection whose server sent no
// byte for the timeout while an answer was owed (netdial's, shared with
// POP3).
var ErrTimeout = netdial.ErrTimeout

// ErrLineTooLong is wrapped by the error of a connection whose server sent
// a protocol line (or a non-body literal) longer than MaxLine.
var ErrLineTooLong = errors.New("server sent an over-long line")

// ErrTooSlow is wrapped by the error of a connection that moved fewer
// than MinRate bytes a second (both directions together) over a whole
// RateWindow while an answer was owed: Gmail's way of enforcing its
// daily download limit is to crawl below 1 KB/s rather than refuse, and
// such a run would take days. A backup treats it as the provider's daily
// limit (a clean stop, outcome partial; the next run continues).
var ErrTooSlow = errors.New("server sends too slowly")

// MinRate and RateWindow are the crawl bound (ErrTooSlow): at 1 KB/s a
// 25 MB message takes seven hours; five minutes lets a slow but working
// link, or a server thinking over a big SEARCH, well past it.
const (
	MinRate    = 1024
	RateWindow = 5 * time.Minute
)

// GuardError is why a guarded connection was ended.
type GuardError struct {
	Account string
	Kind    error // ErrTimeout, ErrLineTooLong or ErrTooSlow
	Detail  string
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Account, e.Kind, e.Detail)
}

func (e *GuardError) Unwrap() error { return e.Kind }

// Timeout lets net code that checks for net.Error timeouts see one.
func (e *GuardError) Timeout() bool   { return errors.Is(e.Kind, ErrTimeout) }
func (e *GuardError) Temporary() bool { return false }

// guard is the net.Conn handed to go-imap (and used by Raw). It sees both
// directions of the IMAP stream in the clear:
//
//   - Writes: each command's tag is noted when its first line is written
//     (lines of an AUTHENTICATE exchange after its command line are SASL
//     responses, not commands); literals in commands are skipped.
//   - Reads: each response line is scanned outside literals ({n} or {n+}
//     then CRLF then n bytes, skipped without buffering); a tagged response
//     completes its command. A line longer than max outside literals, or a
//     literal longer than max that does not carry a message body section
//     (BODY[...], BINARY[...], RFC822...), fails the read.
//
// The deadlines are netdial's policy (ArmRead, ArmWrite), shared with
// POP3: a read deadline of now+timeout is armed at the start of every read
// while a command is outstanding, and whenever a command is written; with no
// command outstanding reads have no deadline. So a server that owes an
// answer must send a byte every timeout, inside a literal too, while a
// connection idle between commands (the LIST connection while workers
// fetch, restore's go-imap connection while the raw one appends, any
// connection while mailkeep writes a big folder to disk and reads nothing)
// is never ended for being quiet. go-imap's own deadlines (SetReadDeadline,
// SetWriteDeadline) are ignored: they are fixed (30 s, 5 min) and would
// end idle connections.
type guard struct {
	net.Conn
	acct    string
	timeout time.Duration

	prefix []byte // bytes served before the connection's (synthetic greeting)

	mu          sync.Mutex
	rd          lineScan
	wr          lineScan
	pending     map[string]bool
	interactive string // tag of an AUTHENTICATE in progress
	err         error  // sticky
	bye         string // the server's last untagged BYE line (its first 64 bytes), see Bye

	// The crawl bound (ErrTooSlow): the time spent blocked in the
	// connection's Read and Write while an answer was owed, and the bytes
	// they moved; mailkeep's own pauses (a disk, a commit) do not count.
	now       func() time.Time
	owedSince time.Time // when the pending answers began to be owed
	winWait   time.Duration
	winBytes  int64
}

func newGuard(c net.Conn, acct string, timeout time.Duration) *guard {
	timeout = netdial.Timeout(timeout)
	// The greeting is owed from the start.
	g := &guard{Conn: c, acct: acct, timeout: timeout, pending: map[string]bool{greeting: true}, now: time.Now, owedSince: time.Now()}
	g.rd = lineScan{max: MaxLine, onEnd: g.readLine}
	g.wr = lineScan{onHead: g.wroteHead}
	return g
}

// Err returns the reason the guard ended the connection, or nil.
func (g *guard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guard) Read(p []byte) (int, error) {
	if len(g.prefix) > 0 {
		n := copy(p, g.prefix)
		g.prefix = g.prefix[n:]
		return n, nil
	}
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return 0, g.err
	}
	netdial.ArmRead(g.Conn, len(g.pending) > 0, g.timeout)
	g.mu.Unlock()

	t0 := g.now()
	n, err := g.Conn.Read(p)

	g.mu.Lock()
	defer g.mu.Unlock()
	if n > 0 {
		if serr := g.rd.scan(p[:n]); serr != nil {
			g.err = &GuardError{Account: g.acct, Kind: ErrLineTooLong, Detail: serr.Error()}
			g.Conn.Close()
			return 0, g.err
		}
	}
	if err != nil && netdial.IsDeadline(err) && len(g.pending) > 0 {
		g.err = &GuardError{Account: g.acct, Kind: ErrTimeout, Detail: fmt.Sprintf("no byte for %s while waiting for its answer%s", g.timeout, g.rd.where())}
		g.Conn.Close()
		return n, g.err
	}
	if g.crawling(n, t0) {
		return 0, g.err
	}
	return n, err
}

// crawling counts n bytes moved by a Read or Write that began at t0
// towards the crawl bound, and reports whether the connection is now
// ended for moving too few over a whole RateWindow of waiting (called
// with the lock held). Only the time an answer was owed counts (a read
// blocked while the connection was idle is counted from the command that
// made an answer owed); with none owed the window starts again.
func (g *guard) crawling(n int, t0 time.Time) bool {
	if len(g.pending) == 0 {
		g.winWait, g.winBytes = 0, 0
		return false
	}
	if g.owedSince.After(t0) {
		t0 = g.owedSince
	}
	if w := g.now().Sub(t0); w > 0 {
		g.winWait += w
	}
	g.winBytes += int64(n)
	if g.winWait < RateWindow {
		return false
	}
	if g.winBytes >= int64(MinRate*RateWindow.Seconds()) {
		g.winWait, g.winBytes = 0, 0
		return false
	}
	g.err = &GuardError{Account: g.acct, Kind: ErrTooSlow, Detail: fmt.Sprintf("%d bytes in %s of waiting for its answer%s (under %d bytes a second)", g.winBytes, g.winWait.Round(time.Second), g.rd.where(), MinRate)}
	g.Conn.Close()
	return true
}

func (g *guard) Write(p []byte) (int, error) {
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return 0, g.err
	}
	g.wr.scan(p)
	if len(g.pending) > 0 {
		netdial.ArmRead(g.Conn, true, g.timeout)
	}
	netdial.ArmWrite(g.Conn, g.timeout)
	g.mu.Unlock()
	t0 := g.now()
	n, err := g.Conn.Write(p)
	g.mu.Lock()
	if g.crawling(n, t0) {
		err = g.err
		g.mu.Unlock()
		return n, err
	}
	g.mu.Unlock()
	if err != nil && netdial.IsDeadline(err) {
		g.mu.Lock()
		if g.err == nil {
			g.err = &GuardError{Account: g.acct, Kind: ErrTimeout, Detail: fmt.Sprintf("server accepted no byte for %s", g.timeout)}
		}
		err = g.err
		g.mu.Unlock()
		g.Conn.Close()
	}
	return n, err
}

// SetDeadline, SetReadDeadline and SetWriteDeadline are the guard's alone.
func (g *guard) SetDeadline(time.Time) error      { return nil }
func (g *guard) SetReadDeadline(time.Time) error  { return nil }
func (g *guard) SetWriteDeadline(time.Time) error { return nil }

// wroteHead notes a command line written by the client (called with the
// lock held).
func (g *guard) wroteHead(head []byte) {
	if g.interactive != "" {
		return // a SASL response line
	}
	f := bytes.Fields(head)
	if len(f) == 0 {
		return
	}
	tag := string(f[0])
	if len(g.pending) == 0 {
		g.owedSince = g.now()
	}
	g.pending[tag] = true
	if len(f) > 1 && bytes.EqualFold(f[1], []byte("AUTHENTICATE")) {
		g.interactive = tag
	}
}

// greeting is the pending entry of a server's greeting: any first line
// settles it.
const greeting = "\x00greeting"

// readLine notes a complete response line (called with the lock held).
func (g *guard) readLine(head []byte) {
	delete(g.pending, greeting)
	f := bytes.Fields(head)
	if len(f) >= 2 && string(f[0]) == "*" && bytes.EqualFold(f[1], []byte("BYE")) {
		g.bye = string(head)
	}
	if len(f) == 0 || string(f[0]) == "*" || string(f[0]) == "+" {
		return
	}
	delete(g.pending, string(f[0]))
	if g.interactive == string(f[0]) {
		g.interactive = ""
	}
}

// lineScan follows IMAP's line and literal structure in one direction of
// the stream without keeping it: the first bytes of each line (head), the
// last bytes before each CRLF (to see a literal's announcement) and the
// length of the current line outside literals.
type lineScan struct {
	max    int               // 0: no bound
	onHead func(head []byte) // called once per line when its head is known
	onEnd  func(head []byte) // called when a line (with its literals) ends

	lit     int64 // literal bytes still to skip
	lineLen int
	head    []byte
	headOK  bool
	tail    []byte
	lines   int64
}

const (
	headMax = 64
	tailMax = 64
)

// scan consumes p and returns an error when a bound is passed.
func (s *lineScan) scan(p []byte) error {
	for len(p) > 0 {
		if s.lit > 0 {
			k := int64(len(p))
			if k > s.lit {
				k = s.lit
			}
			s.lit -= k
			p = p[k:]
			continue
		}
		// Up to the next LF at most.
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		p = p[len(seg):]
		if !s.headOK {
			s.head = append(s.head, seg[:min(len(seg), headMax-len(s.head))]...)
			if len(s.head) >= headMax || bytes.Count(s.head, []byte(" ")) >= 2 || i >= 0 {
				s.headOK = true
				if s.onHead != nil {
					s.onHead(s.head)
				}
			}
		}
		s.lineLen += len(seg)
		if s.max > 0 && s.lineLen > s.max && !(s.lineLen <= MaxSearchLine && s.headOK && isSearch(s.head)) {
			return fmt.Errorf("a line of more than %d bytes outside literals (%q…)", s.max, s.head)
		}
		if len(seg) >= tailMax {
			s.tail = append(s.tail[:0], seg[len(seg)-tailMax:]...)
		} else {
			s.tail = append(s.tail, seg...)
			if len(s.tail) > tailMax {
				s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailMax:]...)
			}
		}
		if i < 0 {
			continue
		}
		// A line break: a literal follows, or the line ends.
		n, body, ok := literalAt(s.tail)
		s.tail = s.tail[:0]
		if ok {
			if s.max > 0 && !body && n > int64(s.max) {
				return fmt.Errorf("a literal of %d bytes outside a message body (%q…)", n, s.head)
			}
			s.lit = n
			continue
		}
		s.lines++
		if s.onEnd != nil {
			s.onEnd(s.head)
		}
		s.lineLen, s.head, s.headOK = 0, s.head[:0], false
	}
	return nil
}

// isSearch reports whether a response line is SEARCH or ESEARCH data.
func isSearch(head []byte) bool {
	f := bytes.Fields(head)
	return len(f) >= 2 && string(f[0]) == "*" && (bytes.EqualFold(f[1], []byte("SEARCH")) || bytes.EqualFold(f[1], []byte("ESEARCH")))
}

// where describes the scanner's position for a timeout message.
func (s *lineScan) where() string {
	if s.lit > 0 {
		return fmt.Sprintf(" (inside a literal, %d bytes still owed)", s.lit)
	}
	return ""
}

// literalAt reports whether tail (a line up to and including its LF) ends
// with a literal announcement "{n}" or "{n+}", its size, and whether it
// carries a message body section (BODY[...], BINARY[...], RFC822...).
func literalAt(tail []byte) (n int64, body, ok bool) {
	t := bytes.TrimSuffix(tail, []byte("\n"))
	t = bytes.TrimSuffix(t, []byte("\r"))
	if !bytes.HasSuffix(t, []byte("}")) {
		return 0, false, false
	}
	open := bytes.LastIndexByte(t, '{')
	if open < 0 {
		return 0, false, false
	}
	num := bytes.TrimSuffix(t[open+1:len(t)-1], []byte("+"))
	if len(num) == 0 || len(num) > 19 {
		return 0, false, false
	}
	v, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || v < 0 {
		return 0, false, false
	}
	before := bytes.TrimSuffix(bytes.TrimRight(t[:open], " "), []byte("~"))
	before = bytes.TrimRight(before, " ")
	if bytes.HasSuffix(before, []byte(">")) { // partial: BODY[]<0>
		if j := bytes.LastIndexByte(before, '<'); j >= 0 {
			before = before[:j]
		}
	}
	up := bytes.ToUpper(before)
	body = bytes.HasSuffix(up, []byte("]")) || bytes.HasSuffix(up, []byte("RFC822")) ||
		bytes.HasSuffix(up, []byte("RFC822.TEXT")) || bytes.HasSuffix(up, []byte("RFC822.HEADER"))
	// A few header fields (BODY[HEADER.FIELDS (MESSAGE-ID)]) are no body:
	// go-imap buffers them, so they are bounded like a line.
	if o := bytes.LastIndexByte(up, '['); body && o >= 0 && bytes.HasPrefix(up[o+1:], []byte("HEADER.FIELDS")) {
		body = false
	}
	return v, body, true
}
