package imapconn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// ErrBadMailboxName is wrapped by the error of a LIST entry whose name
// mailkeep cannot use: a NUL, or invalid modified UTF-7.
var ErrBadMailboxName = errors.New("unusable mailbox name")

// ListEntry is one LIST response read by ListRaw.
type ListEntry struct {
	Attrs []string
	Delim rune // 0: NIL
	// Mailbox is the decoded name (UTF-8); "" when Err is set.
	Mailbox string
	// Sent is the name as the server sent it (modified UTF-7), for errors.
	Sent string
	// Err is why the name cannot be used (wraps ErrBadMailboxName).
	Err error
}

// ListRaw runs LIST "" "*" on a connection of its own, read without
// go-imap: go-imap ends the whole connection on one mailbox name it cannot
// decode (NUL, invalid modified UTF-7), so a backup falls back to this to
// fail that folder alone. Names and literals are bounded by MaxLine.
func ListRaw(ctx context.Context, cfg Config) ([]ListEntry, error) {
	r, err := DialRaw(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.Logout()
	tag := r.NextTag()
	if _, err := r.W.WriteString(tag + " LIST \"\" \"*\"\r\n"); err != nil {
		return nil, err
	}
	if err := r.W.Flush(); err != nil {
		return nil, err
	}
	var out []ListEntry
	for {
		toks, line, err := r.tokens()
		if err != nil {
			return nil, fmt.Errorf("%s: LIST: %w", cfg, err)
		}
		if len(toks) >= 2 && toks[0].s == tag && !toks[0].quoted {
			if !strings.EqualFold(toks[1].s, "OK") {
				_, rest, _ := strings.Cut(line, " ")
				return nil, fmt.Errorf("%s: LIST: %w", cfg, (*imap.Error)(ParseStatus(clip(rest))))
			}
			return out, nil
		}
		if len(toks) < 5 || toks[0].s != "*" || !strings.EqualFold(toks[1].s, "LIST") {
			continue
		}
		e, err := parseList(toks[2:])
		if err != nil {
			return nil, fmt.Errorf("%s: LIST: %w in %q", cfg, err, clip(line))
		}
		out = append(out, e)
	}
}

// token is one element of a response line: an atom, a quoted string or a
// literal (quoted), or a parenthesised list (list set).
type token struct {
	s      string
	quoted bool
	list   []string
}

// tokens reads one response line with its literals and splits it.
func (r *Raw) tokens() ([]token, string, error) {
	var toks []token
	var sb strings.Builder
	for {
		l, err := r.R.ReadString('\n') // bounded by the guard's MaxLine
		if err != nil {
			return nil, "", fmt.Errorf("connection lost: %w", err)
		}
		sb.WriteString(l)
		if sb.Len() > MaxLine {
			return nil, "", &GuardError{Account: r.acct, Kind: ErrLineTooLong, Detail: "LIST line"}
		}
		l = strings.TrimRight(l, "\r\n")
		lit := -1
		if strings.HasSuffix(l, "}") {
			if i := strings.LastIndexByte(l, '{'); i >= 0 {
				if n, err := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-1], "+")); err == nil && n >= 0 && n <= MaxLine {
					lit = n
					l = l[:i]
				}
			}
		}
		toks = append(toks, split(l)...)
		if lit < 0 {
			return toks, sb.String(), nil
		}
		b := make([]byte, lit)
		if _, err := io.ReadFull(r.R, b); err != nil {
			return nil, "", fmt.Errorf("connection lost: %w", err)
		}
		sb.Write(b)
		toks = append(toks, token{s: string(b), quoted: true})
	}
}

// split tokenizes the text of a line between literals.
func split(l string) []token {
	var out []token
	var cur *[]string // inside a list
	for i := 0; i < len(l); {
		switch c := l[i]; {
		case c == ' ':
			i++
		case c == '(':
			out = append(out, token{list: []string{}})
			cur = &out[len(out)-1].list
			i++
		case c == ')':
			cur = nil
			i++
		case c == '"':
			var sb strings.Builder
			i++
			for i < len(l) && l[i] != '"' {
				if l[i] == '\\' && i+1 < len(l) {
					i++
				}
				sb.WriteByte(l[i])
				i++
			}
			i++
			if cur != nil {
				*cur = append(*cur, sb.String())
			} else {
				out = append(out, token{s: sb.String(), quoted: true})
			}
		default:
			j := i
			for j < len(l) && l[j] != ' ' && l[j] != '(' && l[j] != ')' {
				j++
			}
			if cur != nil {
				*cur = append(*cur, l[i:j])
			} else {
				out = append(out, token{s: l[i:j]})
			}
			i = j
		}
	}
	return out
}

// parseList reads "(attrs) delim name ..." of a LIST response.
func parseList(t []token) (ListEntry, error) {
	var e ListEntry
	if t[0].list == nil {
		return e, errors.New("no attribute list")
	}
	e.Attrs = t[0].list
	switch {
	case !t[1].quoted && strings.EqualFold(t[1].s, "NIL"):
	case len(t[1].s) == 1:
		e.Delim = rune(t[1].s[0])
	default:
		return e, fmt.Errorf("bad delimiter %q", t[1].s)
	}
	e.Sent = t[2].s
	if strings.EqualFold(e.Sent, "INBOX") {
		e.Mailbox = "INBOX"
		return e, nil
	}
	name, err := DecodeMailbox(e.Sent)
	if err != nil {
		e.Err = err
		return e, nil
	}
	e.Mailbox = name
	return e, nil
}

// DecodeMailbox decodes a modified UTF-7 mailbox name (RFC 3501 5.1.3)
// strictly: NUL and other controls, bytes over 0x7e, unterminated or
// badly padded shifts, encoded printable ASCII and lone surrogates are
// errors wrapping ErrBadMailboxName.
func DecodeMailbox(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadMailboxName, s, why)
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return bad("contains NUL")
		}
		if c < 0x20 || c > 0x7e {
			return bad(fmt.Sprintf("byte 0x%02x outside modified UTF-7", c))
		}
		if c != '&' {
			sb.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return bad("unterminated &-shift")
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			sb.WriteByte('&')
			continue
		}
		b, err := base64.RawStdEncoding.Strict().DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(b)%2 != 0 {
			return bad("invalid base64 in &-shift")
		}
		u := make([]uint16, len(b)/2)
		for k := range u {
			u[k] = uint16(b[2*k])<<8 | uint16(b[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError || r == 0 {
				return bad("invalid UTF-16 in &-shift")
			}
			if r >= 0x20 && r <= 0x7e {
				return bad("printable ASCII encoded in &-shift")
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), nil
}

// MailboxNameError is a LIST entry whose name mailkeep cannot use, as
// Config.ListMailboxes reports it: Sent is the name as the server sent it.
type MailboxNameError struct {
	Sent string
	Err  error // wraps ErrBadMailboxName
}

func (e *MailboxNameError) Error() string { return fmt.Sprintf("mailbox %q: %v", e.Sent, e.Err) }
func (e *MailboxNameError) Unwrap() error { return e.Err }

// ListMailboxes is ListRaw in go-imap's types, for fetch/imapsrc.Server:
// the usable entries, and one *MailboxNameError per unusable one.
func (c Config) ListMailboxes(ctx context.Context) ([]*imap.ListData, []error, error) {
	entries, err := ListRaw(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	var out []*imap.ListData
	var bad []error
	for _, e := range entries {
		if e.Err != nil {
			bad = append(bad, &MailboxNameError{Sent: e.Sent, Err: e.Err})
			continue
		}
		attrs := make([]imap.MailboxAttr, len(e.Attrs))
		for i, a := range e.Attrs {
			attrs[i] = imap.MailboxAttr(a)
		}
		out = append(out, &imap.ListData{Attrs: attrs, Delim: e.Delim, Mailbox: e.Mailbox})
	}
	return out, bad, nil
}
