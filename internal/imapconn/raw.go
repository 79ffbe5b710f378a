package imapconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// Raw is a logged-in IMAP connection spoken to directly, for the one thing
// go-imap v2 cannot do fast: pipelined APPEND with LITERAL+ for literals of
// any size (go-imap waits for the server's continuation for every literal
// over 4 KB, which serialises APPENDs behind the server's fsync).
type Raw struct {
	conn net.Conn
	R    *bufio.Reader
	W    *bufio.Writer
	Caps map[string]bool
	tag  int
	stop func() bool

	g       *guard
	acct    string
	timeout time.Duration
}

// DialRaw connects, secures and logs in like Dial, returning a Raw.
func DialRaw(ctx context.Context, cfg Config) (*Raw, error) {
	r := &Raw{acct: cfg.String(), timeout: cfg.Timeout, stop: func() bool { return false }}
	conn, greeted, err := secure(ctx, cfg, &r.stop)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Raw, error) {
		r.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	r.set(conn)
	if greeted {
		delete(r.g.pending, greeting) // that was before STARTTLS
	} else if _, err := r.line(); err != nil {
		return fail(fmt.Errorf("greeting: %w", err))
	}
	if err := r.capability(); err != nil {
		return fail(err)
	}
	if err := r.login(ctx, cfg); err != nil {
		return fail(err)
	}
	if err := r.capability(); err != nil {
		return fail(err)
	}
	return r, nil
}

// login authenticates with the password or the OAuth2 token.
func (r *Raw) login(ctx context.Context, cfg Config) error {
	if cfg.OAuth2 != nil {
		return r.authenticate(ctx, cfg)
	}
	if _, err := r.Cmd("LOGIN " + r.AString(cfg.User) + " " + r.AString(cfg.Password)); err != nil {
		return fmt.Errorf("login refused: %w", err)
	}
	return nil
}

// authenticate logs in with SASL XOAUTH2 or OAUTHBEARER and an OAuth2
// access token, as Dial does: the initial response on the command line
// when the server has SASL-IR, else after the first continuation; a later
// continuation is the server's error report, acknowledged as the
// mechanism requires before the NO arrives.
func (r *Raw) authenticate(ctx context.Context, cfg Config) error {
	b := cfg.OAuth2
	mech := b.Mech()
	tok, sc, err := saslClient(ctx, cfg, r.Caps["AUTH="+mech])
	if err != nil {
		return err
	}
	_, ir, _ := sc.Start()
	tag := r.NextTag()
	cmd := tag + " AUTHENTICATE " + mech
	pending := base64.StdEncoding.EncodeToString(ir)
	if r.Caps["SASL-IR"] {
		cmd += " " + pending
		pending = ""
	}
	send := func(line string) error {
		if _, err := r.W.WriteString(line + "\r\n"); err != nil {
			return err
		}
		return r.W.Flush()
	}
	if err := send(cmd); err != nil {
		return fmt.Errorf("OAuth2 login (%s): %w", mech, err)
	}
	sentIR := pending == ""
	for {
		l, err := r.line()
		if err != nil {
			return fmt.Errorf("OAuth2 login (%s): %w", mech, err)
		}
		if rest, ok := strings.CutPrefix(l, "+"); ok {
			resp := pending
			if sentIR { // an error challenge
				ch, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
				ack, _ := sc.Next(ch)
				resp = base64.StdEncoding.EncodeToString(ack)
			}
			sentIR = true
			if err := send(resp); err != nil {
				return fmt.Errorf("OAuth2 login (%s): %w", mech, err)
			}
			continue
		}
		rest, ok := strings.CutPrefix(l, tag+" ")
		if !ok {
			continue // untagged (CAPABILITY and the like)
		}
		status, text, _ := strings.Cut(rest, " ")
		if strings.EqualFold(status, "OK") {
			return nil
		}
		detail := "server said: " + status + " " + text
		if sc.ServerError != nil {
			detail = sc.ServerError.String() + "; " + detail
		}
		return b.Refuse(tok, detail)
	}
}

// set guards c (see guard: timeouts while an answer is owed, MaxLine)
// and reads and writes through it.
func (r *Raw) set(c net.Conn) {
	r.g = newGuard(c, r.acct, r.timeout)
	c = r.g
	r.conn = c
	r.R = bufio.NewReaderSize(c, 64<<10)
	r.W = bufio.NewWriterSize(c, 256<<10)
}

func (r *Raw) capability() error {
	lines, err := r.Cmd("CAPABILITY")
	if err != nil {
		return err
	}
	r.Caps = map[string]bool{}
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			for _, c := range strings.Fields(rest) {
				r.Caps[strings.ToUpper(c)] = true
			}
		}
	}
	return nil
}

// Close drops the connection.
func (r *Raw) Close() error {
	r.stop()
	if r.conn == nil {
		return nil
	}
	return r.conn.Close()
}

// Logout says goodbye and closes.
func (r *Raw) Logout() {
	r.Cmd("LOGOUT")
	r.Close()
}

// NextTag returns a fresh command tag.
func (r *Raw) NextTag() string {
	r.tag++
	return "R" + strconv.Itoa(r.tag)
}

// line reads one response line (without CRLF), with literals inlined as
// "{n}" placeholders (their bytes are skipped).
func (r *Raw) line() (string, error) {
	var sb strings.Builder
	for {
		l, err := r.R.ReadString('\n') // bounded by the guard's MaxLine
		if err != nil {
			return "", fmt.Errorf("connection lost: %w", err)
		}
		if sb.Len()+len(l) > MaxLine {
			return "", &GuardError{Account: r.acct, Kind: ErrLineTooLong, Detail: "response line with its literals' placeholders"}
		}
		l = strings.TrimRight(l, "\r\n")
		sb.WriteString(l)
		if strings.HasSuffix(l, "}") {
			if i := strings.LastIndexByte(l, '{'); i >= 0 {
				if n, err := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-1], "+")); err == nil {
					if _, err := io.CopyN(io.Discard, r.R, int64(n)); err != nil {
						return "", err
					}
					continue
				}
			}
		}
		return sb.String(), nil
	}
}

// ReadTagged reads until the tagged response of tag, returning the
// untagged lines and the text after "OK" (response code included), or a
// *imap.Error for NO or BAD.
func (r *Raw) ReadTagged(tag string) ([]string, string, error) {
	var untagged []string
	for {
		l, err := r.line()
		if err != nil {
			return untagged, "", err
		}
		rest, ok := strings.CutPrefix(l, tag+" ")
		if !ok {
			untagged = append(untagged, l)
			continue
		}
		st := ParseStatus(rest)
		if st.Type == imap.StatusResponseTypeOK {
			_, text, _ := strings.Cut(rest, " ")
			return untagged, text, nil // with its response code: [APPENDUID ...]
		}
		return untagged, "", (*imap.Error)(st)
	}
}

// Cmd sends one command and waits for its completion.
func (r *Raw) Cmd(cmd string) ([]string, error) {
	tag := r.NextTag()
	if _, err := r.W.WriteString(tag + " " + cmd + "\r\n"); err != nil {
		return nil, err
	}
	if err := r.W.Flush(); err != nil {
		return nil, err
	}
	lines, _, err := r.ReadTagged(tag)
	return lines, err
}

// AString encodes s as an IMAP quoted string, or as a LITERAL+ literal
// when it cannot be quoted.
func (r *Raw) AString(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) || strings.IndexFunc(s, func(c rune) bool { return c > 0x7e }) >= 0 {
		return fmt.Sprintf("{%d+}\r\n%s", len(s), s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Mailbox encodes a UTF-8 mailbox name in modified UTF-7 (RFC 3501 5.1.3)
// as a quoted string.
func Mailbox(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(EncodeUTF7(name)) + `"`
}

// EncodeUTF7 encodes a UTF-8 mailbox name (or Gmail label) in modified
// UTF-7 (RFC 3501 5.1.3); DecodeMailbox is its inverse.
func EncodeUTF7(name string) string {
	var sb strings.Builder
	for i := 0; i < len(name); {
		c := name[i]
		if c >= 0x20 && c <= 0x7e {
			sb.WriteByte(c)
			if c == '&' {
				sb.WriteByte('-')
			}
			i++
			continue
		}
		start := i
		for i < len(name) && (name[i] < 0x20 || name[i] > 0x7e) {
			i++
		}
		var u []byte
		for _, rn := range name[start:i] {
			for _, x := range utf16.Encode([]rune{rn}) {
				u = append(u, byte(x>>8), byte(x))
			}
		}
		sb.WriteByte('&')
		sb.WriteString(strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(u), "/", ","))
		sb.WriteByte('-')
	}
	return sb.String()
}

// SetWriteDeadline is kept for callers; the guard bounds every write by
// the connection's timeout.
func (r *Raw) SetWriteDeadline(t time.Time) { r.conn.SetWriteDeadline(t) }

// Has reports whether the server announced capability (upper case).
func (r *Raw) Has(capability string) bool { return r.Caps[capability] }

// Writer is the buffered writer commands go out on (W).
func (r *Raw) Writer() *bufio.Writer { return r.W }

// Reader is the buffered reader of the connection's responses.
func (r *Raw) Reader() *bufio.Reader { return r.R }

// ParseStatus parses the status part of a tagged response ("NO [CODE
// args] text"): the status (upper case), the response code's atom and the
// text after it. Raw reports a tagged NO or BAD as this *imap.Error, as
// go-imap does: one typed status error for both (errors.As).
func ParseStatus(rest string) *imap.StatusResponse {
	status, text, _ := strings.Cut(rest, " ")
	st := &imap.StatusResponse{Type: imap.StatusResponseType(strings.ToUpper(status)), Text: text}
	if inner, ok := strings.CutPrefix(text, "["); ok {
		if code, after, ok := strings.Cut(inner, "]"); ok {
			atom, _, _ := strings.Cut(code, " ")
			st.Code = imap.ResponseCode(strings.ToUpper(atom))
			st.Text = strings.TrimPrefix(after, " ")
		}
	}
	return st
}
