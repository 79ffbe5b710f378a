// Package pop3 is mailkeep's POP3 client (RFC 1939, CAPA and PIPELINING
// from RFC 2449, STLS from RFC 2595, SASL PLAIN, XOAUTH2 and OAUTHBEARER
// from RFC 5034 and RFC 7628).
//
// It is written here rather than used from github.com/knadh/go-pop3
// (v1.0.2), which has implicit TLS only (no STLS, no CAPA, no SASL), no
// read deadlines and no pipelining, and whose RetrRaw reads a whole message
// into memory. A backup needs all of those: this client streams each
// message, dot-unstuffed, exactly as the server sent it (CRLF kept; the CRLF
// before the terminating "." belongs to the message), keeps a deadline on
// every read, pipelines RETR and DELE, and never sends QUIT unless asked, so
// that dropping the connection leaves the server's mailbox untouched.
//
// Never trusting the server: every read waits at most Config.Timeout for a
// byte (ErrTimeout), and the client reads only when the server owes an
// answer, so an idle session is never ended by it. Every line (status
// lines, each line of LIST, UIDL and CAPA) is bounded at 64 KB (RFC 1939
// allows 512 octets), a multi-line answer at a million lines and a TOP
// header at 1 MB (ErrTooLong); message bodies are streamed, never
// buffered. Retr compares the octets received with the sizes the
// server announced (SizeMatches, Mismatched). A server offering RFC 6856
// UTF8 gets it before the login.
package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/netdial"
	"github.com/mailkeep/mailkeep/internal/oauth"
)

// TLSMode is how the connection is secured: netdial's, shared with IMAP
// and the account URLs.
type TLSMode = netdial.TLSMode

// The TLS modes.
const (
	TLSImplicit = netdial.Implicit // pop3s://, port 995
	TLSStartTLS = netdial.StartTLS // pop3://, STLS required
	TLSNone     = netdial.None     // plaintext, loopback and tests only
)

// Config describes a POP3 account.
type Config struct {
	Addr      string
	TLS       TLSMode
	TLSConfig *tls.Config
	User      string
	Password  string
	// OAuth2, when set, logs in with AUTH XOAUTH2 or AUTH OAUTHBEARER and
	// a fresh access token instead of the password.
	OAuth2 *oauth.Bearer
	// Timeout bounds every wait for the server: no byte for this long
	// while an answer is owed ends the session (default 2 minutes).
	Timeout time.Duration
	// Window is how many commands may be in flight when the server
	// offers PIPELINING (default 64).
	Window int
}

func (c Config) String() string { return c.User + "@" + c.Addr }

// Open is Dial, for fetch/pop3src.Server.
func (c Config) Open(ctx context.Context) (pop3src.Session, error) {
	cl, err := Dial(ctx, c)
	if err != nil {
		return nil, err
	}
	return cl, nil
}

// ErrNoUIDL is returned by UIDL when the server does not support it.
var ErrNoUIDL = pop3src.ErrNoUIDL

// ServerError is a -ERR answer.
type ServerError struct {
	Cmd, Text string
}

func (e *ServerError) Error() string { return fmt.Sprintf("%s: server said -ERR %s", e.Cmd, e.Text) }

// MsgInfo is one message of the maildrop.
type MsgInfo = pop3src.MsgInfo

// Client is a POP3 session.
type Client struct {
	cfg    Config
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	caps   map[string][]string
	stop   func() bool
	closed bool

	capaErr  error
	utf8Mode bool
	listed   map[int]int64 // sizes from the last LIST
	mismatch map[int]*SizeError
}

const maxLine = 64 << 10

// Dial connects, secures and authenticates. ctx bounds the dial and, for
// the life of the client, closes the connection when it ends.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg.Timeout = netdial.Timeout(cfg.Timeout)
	if cfg.Window <= 0 {
		cfg.Window = 64
	}
	conn, tc, err := netdial.Dial(ctx, cfg.Addr, cfg.TLSConfig, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	raw := conn
	c := &Client{cfg: cfg}
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	// Every read and write of the session, TLS included, follows the
	// I/O-timeout policy: the client reads only when an answer is owed.
	conn = netdial.Owed(conn, cfg.Timeout)
	if cfg.TLS == TLSImplicit {
		t, err := netdial.Handshake(ctx, conn, tc, cfg.Timeout)
		if err != nil {
			c.stop()
			raw.Close()
			return nil, fmt.Errorf("%s: TLS: %w", cfg, err)
		}
		conn = t
	}
	c.setConn(conn)
	fail := func(err error) (*Client, error) {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", cfg, ctx.Err())
		}
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	if _, err := c.status("greeting"); err != nil {
		return fail(err)
	}
	c.capa()
	if cfg.TLS == TLSStartTLS {
		if _, ok := c.caps["STLS"]; !ok {
			return fail(errors.New("server does not offer STLS; refusing to send the password in clear (use pop3s://, or --tls none on a trusted network)"))
		}
		if err := c.simple("STLS"); err != nil {
			return fail(err)
		}
		t, err := netdial.Handshake(ctx, c.conn, tc, cfg.Timeout)
		if err != nil {
			return fail(fmt.Errorf("STLS: TLS: %w", err))
		}
		c.setConn(t)
		c.capa()
	}
	if c.capaErr != nil && !isServerErr(c.capaErr) {
		return fail(c.capaErr)
	}
	if err := c.utf8(); err != nil {
		return fail(err)
	}
	authFn := c.auth
	if cfg.OAuth2 != nil {
		authFn = func() error { return c.authBearer(ctx) }
	}
	if err := authFn(); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, maxLine)
	c.bw = bufio.NewWriterSize(conn, 4096)
}

func (c *Client) auth() error {
	if hasWord(c.caps["SASL"], "PLAIN") {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + c.cfg.User + "\x00" + c.cfg.Password))
		if err := c.send("AUTH PLAIN " + ir); err != nil {
			return err
		}
		if _, err := c.status("AUTH PLAIN"); err == nil {
			return nil
		} else if !isServerErr(err) {
			return err
		}
	}
	if err := c.simple("USER " + c.cfg.User); err != nil {
		return fmt.Errorf("login refused: %w", err)
	}
	if err := c.send("PASS " + c.cfg.Password); err != nil {
		return err
	}
	if _, err := c.status("PASS"); err != nil {
		return fmt.Errorf("login refused: %w", err)
	}
	return nil
}

// maxAuthLine is RFC 5034's limit on an AUTH command with its initial
// response; longer ones (Microsoft's access tokens are) go after "+ ".
const maxAuthLine = 255

// authBearer logs in with SASL XOAUTH2 or OAUTHBEARER (RFC 5034).
func (c *Client) authBearer(ctx context.Context) error {
	b := c.cfg.OAuth2
	mech := b.Mech()
	if !hasWord(c.caps["SASL"], mech) {
		return fmt.Errorf("server does not offer SASL %s (it offers %q; mechanism in [account.oauth2]: xoauth2 or oauthbearer)", mech, strings.Join(c.caps["SASL"], " "))
	}
	tok, sc, err := b.Start(ctx, c.cfg.User)
	if err != nil {
		return err
	}
	_, ir, _ := sc.Start()
	cmd := "AUTH " + mech + " " + base64.StdEncoding.EncodeToString(ir)
	if len(cmd)+2 > maxAuthLine {
		if err := c.send("AUTH " + mech); err != nil {
			return err
		}
		if ch, err := c.challenge("AUTH " + mech); err != nil {
			return err
		} else if ch == nil {
			return fmt.Errorf("AUTH %s: server said +OK before any credentials", mech)
		}
		cmd = base64.StdEncoding.EncodeToString(ir)
	}
	if err := c.send(cmd); err != nil {
		return err
	}
	return c.bearerResult(sc, tok)
}

// bearerResult reads the outcome of a bearer login: +OK, -ERR, or an error
// challenge that is answered and followed by -ERR.
func (c *Client) bearerResult(sc *oauth.SASLClient, tok string) error {
	b, mech := c.cfg.OAuth2, sc.Mechanism()
	ch, err := c.challenge("AUTH " + mech)
	if err == nil && ch == nil {
		return nil
	}
	if err == nil {
		resp, _ := sc.Next(ch)
		if err := c.send(base64.StdEncoding.EncodeToString(resp)); err != nil {
			return err
		}
		_, err = c.status("AUTH " + mech)
		if err == nil {
			return fmt.Errorf("AUTH %s: server accepted the login after reporting an error", mech)
		}
	}
	var se *ServerError
	if !errors.As(err, &se) {
		return err
	}
	detail := "server said: -ERR " + se.Text
	if sc.ServerError != nil {
		detail = sc.ServerError.String() + "; " + detail
	}
	return b.Refuse(tok, detail)
}

// challenge reads the answer to an AUTH step: nil, nil for +OK; the
// decoded challenge for "+ "; a *ServerError for -ERR.
func (c *Client) challenge(cmd string) ([]byte, error) {
	line, err := c.readLine()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if line == "+" || strings.HasPrefix(line, "+ ") {
		ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line[1:]))
		if err != nil {
			return nil, fmt.Errorf("%s: bad challenge: %w", cmd, err)
		}
		return ch, nil
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return nil, nil
	case strings.HasPrefix(line, "-ERR"):
		return nil, &ServerError{Cmd: cmd, Text: strings.TrimSpace(line[4:])}
	}
	return nil, fmt.Errorf("%s: unexpected response %q", cmd, clip(line))
}

func hasWord(ws []string, w string) bool {
	for _, x := range ws {
		if strings.EqualFold(x, w) {
			return true
		}
	}
	return false
}

func isServerErr(err error) bool {
	var se *ServerError
	return errors.As(err, &se)
}

// Caps returns the server's capabilities (CAPA), keyword -> arguments.
func (c *Client) Caps() map[string][]string { return c.caps }

func (c *Client) capa() {
	c.caps = map[string][]string{}
	if err := c.send("CAPA"); err != nil {
		return
	}
	if _, err := c.status("CAPA"); err != nil {
		return
	}
	c.capaErr = c.eachLine("CAPA", 1000, func(line string) error {
		f := strings.Fields(line)
		if len(f) > 0 {
			c.caps[strings.ToUpper(f[0])] = f[1:]
		}
		return nil
	})
}

// utf8 turns on RFC 6856 UTF-8 mode when the server offers it, so that a
// server like Courier delivers messages as stored instead of replacing
// those with UTF-8 headers by a "cannot display" notice. It must come
// before the login. A -ERR is no failure: the session goes on as before.
func (c *Client) utf8() error {
	if _, ok := c.caps["UTF8"]; !ok {
		return nil
	}
	if err := c.send("UTF8"); err != nil {
		return err
	}
	_, err := c.status("UTF8")
	if err == nil {
		c.utf8Mode = true
	}
	if err != nil && !isServerErr(err) {
		return err
	}
	return nil
}

// UTF8Mode reports whether the server accepted RFC 6856's UTF8 command.
func (c *Client) UTF8Mode() bool { return c.utf8Mode }

func (c *Client) send(line string) error {
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return c.bw.Flush()
}

// readLine reads one response line (without CRLF), bounded in length.
func (c *Client) readLine() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", fmt.Errorf("%w: a line longer than 64 KB", ErrTooLong)
	}
	if err != nil {
		return "", c.lost(err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// ErrTimeout is wrapped by the error of a session whose server sent no
// byte for Config.Timeout while an answer was owed (netdial's, shared
// with IMAP).
var ErrTimeout = netdial.ErrTimeout

// lost describes a failed read.
func (c *Client) lost(err error) error {
	if errors.Is(err, ErrTimeout) {
		return err // a *netdial.TimeoutError
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("connection lost: %w", err)
}

// status reads a +OK/-ERR line and returns the text after +OK.
func (c *Client) status(cmd string) (string, error) {
	line, err := c.readLine()
	if err != nil {
		return "", fmt.Errorf("%s: %w", redact(cmd), err)
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return strings.TrimSpace(line[3:]), nil
	case strings.HasPrefix(line, "-ERR"):
		return "", &ServerError{Cmd: redact(cmd), Text: strings.TrimSpace(line[4:])}
	}
	return "", fmt.Errorf("%s: unexpected response %q", redact(cmd), clip(line))
}

func redact(cmd string) string {
	if strings.HasPrefix(cmd, "PASS") || strings.HasPrefix(cmd, "AUTH") {
		return strings.Fields(cmd)[0]
	}
	return cmd
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (c *Client) simple(cmd string) error {
	if err := c.send(cmd); err != nil {
		return err
	}
	_, err := c.status(cmd)
	return err
}

// maxMultiLines bounds the lines of one LIST, UIDL or CAPA answer: a
// maildrop of more than a million messages is refused rather than held in
// memory (a million UIDLs take about 100 MB).
const maxMultiLines = 1 << 20

// ErrTooLong is wrapped by the error for an answer over a bound: a line
// over 64 KB (RFC 1939 and RFC 2449 allow 512 octets), a multi-line
// answer over maxMultiLines lines, a TOP header over 1 MB.
var ErrTooLong = errors.New("server answer over the limit")

// multi runs a command with a multi-line answer and calls fn with each of
// its lines (without CRLF, dot-unstuffed), each at most 64 KB and at most
// maxLines of them.
func (c *Client) multi(cmd string, maxLines int, fn func(line string) error) error {
	if err := c.simple(cmd); err != nil {
		return err
	}
	return c.eachLine(cmd, maxLines, fn)
}

// eachLine reads the body of a multi-line answer line by line.
func (c *Client) eachLine(cmd string, maxLines int, fn func(line string) error) error {
	for n := 0; ; n++ {
		l, err := c.readLine()
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if l == "." {
			return nil
		}
		if n >= maxLines {
			return fmt.Errorf("%s: %w: more than %d lines", cmd, ErrTooLong, maxLines)
		}
		if err := fn(strings.TrimPrefix(l, ".")); err != nil {
			return err
		}
	}
}

// Stat returns the message count and total size.
func (c *Client) Stat(ctx context.Context) (int, int64, error) {
	if err := c.send("STAT"); err != nil {
		return 0, 0, err
	}
	s, err := c.status("STAT")
	if err != nil {
		return 0, 0, err
	}
	var n int
	var size int64
	if _, err := fmt.Sscan(s, &n, &size); err != nil {
		return 0, 0, fmt.Errorf("STAT: bad answer %q", clip(s))
	}
	return n, size, nil
}

// List returns the maildrop's messages and sizes.
func (c *Client) List(ctx context.Context) ([]MsgInfo, error) {
	var out []MsgInfo
	err := c.multi("LIST", maxMultiLines, func(l string) error {
		if l == "" {
			return nil
		}
		var mi MsgInfo
		if _, err := fmt.Sscan(l, &mi.ID, &mi.Size); err != nil || mi.ID <= 0 || mi.Size < 0 {
			return fmt.Errorf("LIST: bad line %q", clip(l))
		}
		out = append(out, mi)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.listed = map[int]int64{}
	for _, mi := range out {
		c.listed[mi.ID] = mi.Size
	}
	return out, nil
}

// UIDL returns message id -> unique id.
func (c *Client) UIDL(ctx context.Context) (map[int]string, error) {
	out := map[int]string{}
	err := c.multi("UIDL", maxMultiLines, func(l string) error {
		if l == "" {
			return nil
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return fmt.Errorf("UIDL: bad line %q", clip(l))
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			return fmt.Errorf("UIDL: bad line %q", clip(l))
		}
		out[id] = f[1]
		return nil
	})
	if err != nil {
		if isServerErr(err) {
			return nil, fmt.Errorf("%w: %v", ErrNoUIDL, err)
		}
		return nil, err
	}
	return out, nil
}

// Top returns the header block of a message (TOP id lines), at most 1 MB.
func (c *Client) Top(ctx context.Context, id, lines int) ([]byte, error) {
	cmd := fmt.Sprintf("TOP %d %d", id, lines)
	if err := c.simple(cmd); err != nil {
		return nil, err
	}
	r := c.dotReader()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); n > 0 {
		return nil, fmt.Errorf("%s: %w: header larger than 1 MB", cmd, ErrTooLong)
	}
	return b, nil
}

func (c *Client) window() int {
	if _, ok := c.caps["PIPELINING"]; ok {
		return c.cfg.Window
	}
	return 1
}

// pipeline sends cmds keeping up to window in flight and calls handle for
// each answer in order.
func (c *Client) pipeline(cmds []string, handle func(i int, text string, ok error) error) error {
	w := c.window()
	sent := 0
	for i := range cmds {
		for sent < len(cmds) && sent < i+w {
			if _, err := c.bw.WriteString(cmds[sent] + "\r\n"); err != nil {
				return err
			}
			sent++
		}
		if err := c.bw.Flush(); err != nil {
			return err
		}
		text, err := c.status(cmds[i])
		if err != nil && !isServerErr(err) {
			return err
		}
		if err := handle(i, text, err); err != nil {
			return err
		}
	}
	return nil
}

// Retr retrieves messages, pipelined, and calls fn with a reader of each
// one's exact bytes, in order. fn must not keep the reader. A -ERR for a
// message is returned as an error naming it (after the pipeline drains
// nothing more is read: the caller closes the connection).
//
// The octets received for each message are compared with the sizes the
// server announced (LIST, when List was called, and "+OK n octets" when
// the RETR answer says so); a disagreement beyond SizeMatches' allowance
// does not stop the retrieval (the bytes may be all there is) but is
// recorded: see Mismatched.
func (c *Client) Retr(ctx context.Context, ids []int, fn func(id int, r io.Reader) error) error {
	cmds := make([]string, len(ids))
	for i, id := range ids {
		cmds[i] = "RETR " + strconv.Itoa(id)
	}
	return c.pipeline(cmds, func(i int, text string, serr error) error {
		if serr != nil {
			return serr
		}
		id := ids[i]
		r := &countReader{r: c.dotReader(), max: -1}
		if n, ok := c.listed[id]; ok {
			// No message is more than twice its size (all blank lines
			// counted LF-only, sent CRLF): beyond that the server is
			// sending something endless, which would fill the disk.
			r.max = 2*n + 1024
		}
		if err := fn(id, r); err != nil {
			return fmt.Errorf("RETR %d: %w", id, err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("RETR %d: %w", id, err)
		}
		c.checkSize(id, text, r.n, r.lfs)
		return nil
	})
}

// SizeError is a message whose received size disagrees with the size the
// server announced for it.
type SizeError = pop3src.SizeError

// SizeMatches reports whether got octets, with lfs line feeds among them,
// are the message of announced octets (pop3src.SizeMatches).
func SizeMatches(announced, got, lfs int64) bool { return pop3src.SizeMatches(announced, got, lfs) }

// Mismatched returns the messages of this session whose received size
// disagreed with an announced one, by message number.
func (c *Client) Mismatched() map[int]*SizeError { return c.mismatch }

// ListedSize returns the size LIST announced for message id.
func (c *Client) ListedSize(id int) (int64, bool) {
	n, ok := c.listed[id]
	return n, ok
}

func (c *Client) checkSize(id int, text string, got, lfs int64) {
	add := func(src string, n int64) {
		if SizeMatches(n, got, lfs) {
			return
		}
		if c.mismatch == nil {
			c.mismatch = map[int]*SizeError{}
		}
		if c.mismatch[id] == nil {
			c.mismatch[id] = &SizeError{ID: id, Announced: n, Source: src, Got: got, Lines: lfs}
		}
	}
	if n, ok := c.listed[id]; ok {
		add("LIST", n)
	}
	if n, ok := octets(text); ok {
		add("RETR", n)
	}
}

// octets parses the "n octets" some servers put after RETR's +OK.
func octets(text string) (int64, bool) {
	f := strings.Fields(text)
	if len(f) < 2 || !strings.EqualFold(f[1], "octets") {
		return 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	return n, err == nil && n >= 0
}

// countReader counts the octets and line feeds read through it, and fails
// past max octets (max < 0: no bound).
type countReader struct {
	r      io.Reader
	n, lfs int64
	max    int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.max >= 0 && c.n > c.max {
		return 0, fmt.Errorf("%w: the message goes on past twice the size LIST announced (%d octets so far)", ErrTooLong, c.n)
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lfs += int64(bytes.Count(p[:n], []byte{'\n'}))
	return n, err
}

// Dele marks messages deleted, pipelined. Deletions take effect only at
// Quit; on error the caller must Close (without QUIT).
func (c *Client) Dele(ctx context.Context, ids []int) error {
	cmds := make([]string, len(ids))
	for i, id := range ids {
		cmds[i] = "DELE " + strconv.Itoa(id)
	}
	return c.pipeline(cmds, func(i int, _ string, serr error) error { return serr })
}

// Rset unmarks deletions.
func (c *Client) Rset(ctx context.Context) error { return c.simple("RSET") }

// Quit ends the session; the server then commits deletions.
func (c *Client) Quit(ctx context.Context) error {
	err := c.simple("QUIT")
	c.Close()
	return err
}

// Close drops the connection without QUIT: the server deletes nothing.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.stop()
	return c.conn.Close()
}

// dotReader streams a multi-line body: one leading '.' is removed from each
// line, and the body ends before the line ".". Nothing else changes.
func (c *Client) dotReader() *dotReader { return &dotReader{c: c, bol: true} }

type dotReader struct {
	c       *Client
	bol     bool
	pending []byte
	done    bool
	err     error
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.done {
			return 0, d.err
		}
		d.fill()
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

func (d *dotReader) fill() {
	b, err := d.c.br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		d.done, d.err = true, fmt.Errorf("in the middle of a message: %w", d.c.lost(err))
		return
	}
	if d.bol && len(b) > 0 && b[0] == '.' {
		if err == nil && (string(b) == ".\r\n" || string(b) == ".\n") {
			d.done, d.err = true, io.EOF
			return
		}
		b = b[1:]
	}
	d.pending = b
	d.bol = err == nil // a full line ended
}
