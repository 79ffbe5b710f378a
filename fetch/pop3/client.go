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
package pop3

import (
	"bufio"
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

	"github.com/mailkeep/mailkeep/internal/oauth"
)

// TLSMode is how the connection is secured.
type TLSMode int

// The TLS modes (same order as the IMAP ones).
const (
	TLSImplicit TLSMode = iota // pop3s://, port 995
	TLSStartTLS                // pop3://, STLS required
	TLSNone                    // plaintext, loopback and tests only
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
	// Timeout bounds every wait for the server (default 60 s).
	Timeout time.Duration
	// Window is how many commands may be in flight when the server
	// offers PIPELINING (default 64).
	Window int
}

func (c Config) String() string { return c.User + "@" + c.Addr }

// ErrNoUIDL is returned by UIDL when the server does not support it.
var ErrNoUIDL = errors.New("server does not support UIDL")

// ServerError is a -ERR answer.
type ServerError struct {
	Cmd, Text string
}

func (e *ServerError) Error() string { return fmt.Sprintf("%s: server said -ERR %s", e.Cmd, e.Text) }

// MsgInfo is one message of the maildrop.
type MsgInfo struct {
	ID   int
	Size int64
}

// Client is a POP3 session.
type Client struct {
	cfg    Config
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	caps   map[string][]string
	stop   func() bool
	closed bool
}

const maxLine = 64 << 10

// Dial connects, secures and authenticates. ctx bounds the dial and, for
// the life of the client, closes the connection when it ends.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 64
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	tc := cfg.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	c := &Client{cfg: cfg}
	c.stop = context.AfterFunc(ctx, func() { conn.Close() })
	if cfg.TLS == TLSImplicit {
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			c.stop()
			conn.Close()
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
		t := tls.Client(c.conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("STLS: TLS: %w", err))
		}
		c.setConn(t)
		c.capa()
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
	r := c.dotReader()
	b, err := io.ReadAll(io.LimitReader(r, maxLine))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			c.caps[strings.ToUpper(f[0])] = f[1:]
		}
	}
}

func (c *Client) send(line string) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return c.bw.Flush()
}

// readLine reads one response line (without CRLF), bounded in length.
func (c *Client) readLine() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", errors.New("response line longer than 64 KB")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("connection lost: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
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

// multi runs a command with a multi-line answer and returns its lines.
func (c *Client) multi(cmd string) ([]string, error) {
	if err := c.simple(cmd); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(c.dotReader())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n"), nil
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
	lines, err := c.multi("LIST")
	if err != nil {
		return nil, err
	}
	var out []MsgInfo
	for _, l := range lines {
		if l == "" {
			continue
		}
		var mi MsgInfo
		if _, err := fmt.Sscan(l, &mi.ID, &mi.Size); err != nil || mi.ID <= 0 {
			return nil, fmt.Errorf("LIST: bad line %q", clip(l))
		}
		out = append(out, mi)
	}
	return out, nil
}

// UIDL returns message id -> unique id.
func (c *Client) UIDL(ctx context.Context) (map[int]string, error) {
	lines, err := c.multi("UIDL")
	if err != nil {
		if isServerErr(err) {
			return nil, fmt.Errorf("%w: %v", ErrNoUIDL, err)
		}
		return nil, err
	}
	out := map[int]string{}
	for _, l := range lines {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		id, err := strconv.Atoi(f[0])
		if len(f) != 2 || err != nil {
			return nil, fmt.Errorf("UIDL: bad line %q", clip(l))
		}
		out[id] = f[1]
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
	if n, _ := io.Copy(io.Discard, r); n > 0 {
		return nil, fmt.Errorf("%s: header larger than 1 MB", cmd)
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
func (c *Client) pipeline(cmds []string, handle func(i int, ok error) error) error {
	w := c.window()
	sent := 0
	for i := range cmds {
		for sent < len(cmds) && sent < i+w {
			c.conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
			if _, err := c.bw.WriteString(cmds[sent] + "\r\n"); err != nil {
				return err
			}
			sent++
		}
		if err := c.bw.Flush(); err != nil {
			return err
		}
		_, err := c.status(cmds[i])
		if err != nil && !isServerErr(err) {
			return err
		}
		if err := handle(i, err); err != nil {
			return err
		}
	}
	return nil
}

// Retr retrieves messages, pipelined, and calls fn with a reader of each
// one's exact bytes, in order. fn must not keep the reader. A -ERR for a
// message is returned as an error naming it (after the pipeline drains
// nothing more is read: the caller closes the connection).
func (c *Client) Retr(ctx context.Context, ids []int, fn func(id int, r io.Reader) error) error {
	cmds := make([]string, len(ids))
	for i, id := range ids {
		cmds[i] = "RETR " + strconv.Itoa(id)
	}
	return c.pipeline(cmds, func(i int, serr error) error {
		if serr != nil {
			return serr
		}
		r := c.dotReader()
		if err := fn(ids[i], r); err != nil {
			return fmt.Errorf("RETR %d: %w", ids[i], err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("RETR %d: %w", ids[i], err)
		}
		return nil
	})
}

// Dele marks messages deleted, pipelined. Deletions take effect only at
// Quit; on error the caller must Close (without QUIT).
func (c *Client) Dele(ctx context.Context, ids []int) error {
	cmds := make([]string, len(ids))
	for i, id := range ids {
		cmds[i] = "DELE " + strconv.Itoa(id)
	}
	return c.pipeline(cmds, func(i int, serr error) error { return serr })
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
	d.c.conn.SetReadDeadline(time.Now().Add(d.c.cfg.Timeout))
	b, err := d.c.br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.done, d.err = true, fmt.Errorf("connection lost in the middle of a message: %w", err)
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
