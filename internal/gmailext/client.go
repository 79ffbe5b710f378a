// Package gmailext speaks the Gmail IMAP extensions (X-GM-EXT-1) that
// go-imap v2 beta.8 cannot: its client fails on an unknown FETCH item, so
// X-GM-MSGID, X-GM-THRID and X-GM-LABELS are read here, on a raw IMAP
// connection that is already logged in and has a folder selected (such as
// internal/imapconn's Raw: pass its R and W to [NewBuffered]).
//
// The extensions are documented at developers.google.com/gmail/imap/
// imap-extensions:
//
//	a008 UID FETCH 1:* (X-GM-MSGID X-GM-THRID X-GM-LABELS)
//	* 1 FETCH (X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 X-GM-LABELS (\Inbox \Sent Important "Muy Importante") UID 4)
//	a012 STORE 1 +X-GM-LABELS (foo)
//	* 1 FETCH (X-GM-LABELS (\Inbox \Sent Important "Muy Importante" foo))
//
// Every response is bounded ([MaxResponse]) before it is parsed; the
// connection's own timeouts bound the waiting, and a cancelled context
// ends the connection's wait when it has SetDeadline.
package gmailext

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// MaxResponse bounds one response: its lines and the literals inside it,
// in bytes. A FETCH of Gmail metadata is a few hundred bytes; 1 MiB allows
// thousands of labels and flags.
const MaxResponse = 1 << 20

// ErrTooLong is wrapped by the error for a response longer than
// MaxResponse.
var ErrTooLong = errors.New("server response longer than the bound")

// ErrBye is wrapped by the error for an untagged BYE: the server is ending
// the connection (Gmail: "BYE Session expired, please login again").
var ErrBye = errors.New("server said BYE")

// StatusError is a tagged NO or BAD answer. Code is the response code's
// name without brackets ("OVERQUOTA", "TOOBIG", "THROTTLED", "ALERT"), or
// "" when there is none.
type StatusError struct {
	Command string // "UID FETCH", "UID STORE"
	Status  string // "NO" or "BAD"
	Code    string
	Text    string
}

func (e *StatusError) Error() string {
	code := ""
	if e.Code != "" {
		code = "[" + e.Code + "] "
	}
	return fmt.Sprintf("%s: server said %s %s%s", e.Command, e.Status, code, e.Text)
}

// Unwrap gives the answer as a provlimit.Status, so that
// provlimit.FromError classifies it like any other server answer.
func (e *StatusError) Unwrap() error {
	return &provlimit.Status{Type: e.Status, Code: e.Code, Text: e.Text}
}

// Result is the outcome of one command.
type Result struct {
	// Messages has one entry per FETCH response that answers the command
	// (with a UID and the Gmail item asked for: X-GM-MSGID for FetchMeta,
	// X-GM-LABELS for StoreLabels), in order; unsolicited FETCH responses
	// (another session's flag change) are left out.
	Messages []Message
	// Throttled is true when the server marked an OK response
	// [THROTTLED] (Gmail does so while it slows the account down).
	Throttled bool
	// Codes are the response codes of the untagged OK/NO/BAD responses and
	// of the tagged OK, in order ("THROTTLED", "HIGHESTMODSEQ 7").
	Codes []string
}

// Client sends Gmail extension commands on a raw connection.
type Client struct {
	r    *bufio.Reader
	w    *bufio.Writer
	conn any // for SetDeadline on context cancellation
	tag  int
}

// New wraps a connection (a net.Conn, or any io.ReadWriter).
func New(rw io.ReadWriter) *Client {
	return &Client{r: bufio.NewReader(rw), w: bufio.NewWriter(rw), conn: rw}
}

// NewBuffered uses existing buffers (such as imapconn.Raw's R and W), so
// that no byte the connection already read is lost. deadline, if not nil,
// is what a cancelled context uses to end the wait (a net.Conn).
func NewBuffered(r *bufio.Reader, w *bufio.Writer, deadline interface{ SetDeadline(time.Time) error }) *Client {
	return &Client{r: r, w: w, conn: deadline}
}

// FetchOptions choose FetchMeta's optional parts.
type FetchOptions struct {
	// ModSeq adds MODSEQ to the items (the server has CONDSTORE).
	ModSeq bool
	// ChangedSince, when not 0, adds the CHANGEDSINCE modifier (RFC 7162):
	// only messages whose MODSEQ is higher are answered, with their MODSEQ.
	ChangedSince uint64
}

// FetchMeta sends UID FETCH uids (UID X-GM-MSGID X-GM-THRID X-GM-LABELS
// FLAGS [MODSEQ]) [(CHANGEDSINCE n)]; uids is an IMAP UID set ("1:*",
// "5,9:12"). It holds every answer in memory: for a large folder use
// FetchMetaEach, or page through UID ranges.
func (c *Client) FetchMeta(ctx context.Context, uids string, opt FetchOptions) (*Result, error) {
	res := &Result{}
	r, err := c.FetchMetaEach(ctx, uids, opt, func(m Message) error {
		res.Messages = append(res.Messages, m)
		return nil
	})
	if r != nil {
		res.Throttled, res.Codes = r.Throttled, r.Codes
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// FetchMetaEach is FetchMeta calling fn for each message as its response
// arrives, holding none; the Result has no Messages. An error from fn
// stops reading and is returned (wrapped): the connection is then in the
// middle of a response and must be closed.
func (c *Client) FetchMetaEach(ctx context.Context, uids string, opt FetchOptions, fn func(Message) error) (*Result, error) {
	if !validSet(uids) {
		return nil, fmt.Errorf("UID FETCH: invalid UID set %q", uids)
	}
	items := "UID X-GM-MSGID X-GM-THRID X-GM-LABELS FLAGS"
	if opt.ModSeq || opt.ChangedSince > 0 {
		items += " MODSEQ"
	}
	cmd := "UID FETCH " + uids + " (" + items + ")"
	if opt.ChangedSince > 0 {
		cmd += " (CHANGEDSINCE " + strconv.FormatUint(opt.ChangedSince, 10) + ")"
	}
	return c.run(ctx, "UID FETCH", cmd, func(m *Message) bool { return m.MsgID != 0 }, fn)
}

// StoreLabels sends UID STORE uids +X-GM-LABELS (labels) (add) or
// -X-GM-LABELS (remove). Labels are UTF-8; system labels keep their
// backslash (`\Important`) and are sent as atoms, others as quoted
// strings in modified UTF-7. The result holds the labels the server
// reports afterwards.
func (c *Client) StoreLabels(ctx context.Context, uids string, add bool, labels []string) (*Result, error) {
	if !validSet(uids) {
		return nil, fmt.Errorf("UID STORE: invalid UID set %q", uids)
	}
	op := "+"
	if !add {
		op = "-"
	}
	var parts []string
	for _, l := range labels {
		enc, err := EncodeLabel(l)
		if err != nil {
			return nil, fmt.Errorf("UID STORE: %w", err)
		}
		parts = append(parts, enc)
	}
	return c.run(ctx, "UID STORE", "UID STORE "+uids+" "+op+"X-GM-LABELS ("+strings.Join(parts, " ")+")", func(m *Message) bool { return m.Labels != nil }, nil)
}

// ErrBadLabel is wrapped by the error for a label that cannot be sent.
var ErrBadLabel = errors.New("label cannot be sent")

// EncodeLabel encodes a label for a command: a system label (`\Inbox`)
// as an atom, any other as a quoted string in modified UTF-7.
func EncodeLabel(l string) (string, error) {
	if l == "" || strings.ContainsAny(l, "\r\n\x00") {
		return "", fmt.Errorf("%w: %q", ErrBadLabel, l)
	}
	if strings.HasPrefix(l, `\`) {
		for i := 1; i < len(l); i++ {
			if !isAtomChar(l[i]) || l[i] == '\\' {
				return "", fmt.Errorf("%w: system label %q", ErrBadLabel, l)
			}
		}
		return l, nil
	}
	return imapconn.Mailbox(l), nil // a label is quoted as a mailbox name is
}

func validSet(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9') && c != ':' && c != ',' && c != '*' {
			return false
		}
	}
	return true
}

func (c *Client) run(ctx context.Context, name, cmd string, answers func(*Message) bool, each func(Message) error) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if d, ok := c.conn.(interface{ SetDeadline(time.Time) error }); ok && d != nil {
		stop := context.AfterFunc(ctx, func() { d.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	c.tag++
	tag := "G" + strconv.Itoa(c.tag)
	if _, err := c.w.WriteString(tag + " " + cmd + "\r\n"); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.w.Flush(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res := &Result{}
	for {
		resp, err := ReadResponse(c.r)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if m, ok, err := ParseFetch(resp); ok {
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if m.UID != 0 && answers(&m) {
				if each == nil {
					res.Messages = append(res.Messages, m)
				} else if err := each(m); err != nil {
					return res, fmt.Errorf("%s: UID %d: %w", name, m.UID, err)
				}
			}
			continue
		}
		line := string(resp)
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			status, text, _ := strings.Cut(rest, " ")
			switch strings.ToUpper(status) {
			case "BYE":
				return nil, fmt.Errorf("%s: %w: %s", name, ErrBye, text)
			case "OK", "NO", "BAD":
				if code, _ := splitCode(text); code != "" {
					res.Codes = append(res.Codes, code)
				}
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			continue // a continuation request or another tag: not ours
		}
		status, text, _ := strings.Cut(rest, " ")
		code, text := splitCode(text)
		switch strings.ToUpper(status) {
		case "OK":
			if code != "" {
				res.Codes = append(res.Codes, code)
			}
			for _, c := range res.Codes {
				if strings.EqualFold(c, "THROTTLED") {
					res.Throttled = true
				}
			}
			return res, nil
		default:
			codeName, _, _ := strings.Cut(code, " ")
			return nil, &StatusError{Command: name, Status: strings.ToUpper(status), Code: strings.ToUpper(codeName), Text: text}
		}
	}
}

// splitCode splits "[CODE args] text" into "CODE args" and "text".
func splitCode(text string) (string, string) {
	if !strings.HasPrefix(text, "[") {
		return "", text
	}
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return "", text
	}
	return text[1:end], strings.TrimPrefix(text[end+1:], " ")
}

// ReadResponse reads one response: a line, and when it ends in a literal
// ("{n}" or "{n+}") the literal's bytes and the rest of the response, up
// to MaxResponse bytes in all. The final CRLF is removed; literals stay
// inline as ParseFetch expects them.
func ReadResponse(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		line, err := readLine(r, MaxResponse-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, line...)
		n, ok := literalSize(line)
		if !ok {
			return out, nil
		}
		if n > uint64(MaxResponse-len(out)-2) {
			return nil, fmt.Errorf("%w: literal of %d bytes", ErrTooLong, n)
		}
		out = append(out, '\r', '\n')
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(r, out[start:]); err != nil {
			return nil, fmt.Errorf("connection lost inside a literal: %w", err)
		}
	}
}

// readLine reads up to LF, without CRLF, failing past max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(out)+len(frag) > max {
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLong, MaxResponse)
		}
		out = append(out, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("connection lost: %w", err)
	}
	out = out[:len(out)-1]
	if len(out) > 0 && out[len(out)-1] == '\r' {
		out = out[:len(out)-1]
	}
	return out, nil
}

// literalSize reports the size of the literal a line ends with.
func literalSize(line []byte) (uint64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := len(line) - 2
	if line[i] == '+' {
		i--
	}
	end := i + 1
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	if i < 0 || line[i] != '{' || end == i+1 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(line[i+1:end]), 10, 64)
	return n, err == nil
}
