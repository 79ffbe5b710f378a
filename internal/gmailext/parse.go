package gmailext

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Message is what one FETCH response says about a message: the Gmail
// items (Gmail IMAP extensions, developers.google.com/gmail/imap/
// imap-extensions: X-GM-MSGID and X-GM-THRID are unsigned 64-bit numbers,
// X-GM-LABELS a parenthesised list of astrings) and the standard items
// mailkeep reads beside them.
type Message struct {
	Seq    uint32
	UID    uint32 // 0 when the response carries none
	MsgID  uint64
	ThrID  uint64
	ModSeq uint64 // 0 when the response carries no MODSEQ
	// Labels are decoded from modified UTF-7; system labels keep their
	// backslash (`\Inbox`, `\Important`, `\Sent`, `\Starred`, `\Draft`).
	// nil when the response carries no X-GM-LABELS; empty when it carries
	// "()".
	Labels []string
	// Flags as sent (`\Seen`, `$Forwarded`); nil without FLAGS.
	Flags []string
}

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("malformed FETCH response")

// SyntaxError says where a FETCH response stopped making sense.
type SyntaxError struct {
	Offset int
	Detail string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s at byte %d: %s", ErrSyntax, e.Offset, e.Detail)
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// ParseFetch parses one untagged FETCH response: "* n FETCH (...)" with
// its literals inline ("{n}" CRLF and n bytes), without the final CRLF.
// Items other than the ones in [Message] are skipped, whatever their
// syntax (nstring, number, list, BODY[...]<n> section names). ok is
// false, with a nil error, for a response that is not a FETCH.
func ParseFetch(resp []byte) (m Message, ok bool, err error) {
	p := &parser{b: resp}
	if !p.lit("* ") {
		return m, false, nil
	}
	n, err := p.number()
	if err != nil {
		return m, false, nil
	}
	if !p.lit(" ") || !p.litFold("FETCH ") {
		return m, false, nil
	}
	if n == 0 || n > 1<<32-1 {
		return m, true, p.fail("sequence number out of range")
	}
	m.Seq = uint32(n)
	if !p.lit("(") {
		return m, true, p.fail("expected (")
	}
	for first := true; ; first = false {
		if p.lit(")") {
			break
		}
		if !first && !p.lit(" ") {
			return m, true, p.fail("expected SP or )")
		}
		name, err := p.itemName()
		if err != nil {
			return m, true, err
		}
		if !p.lit(" ") {
			return m, true, p.fail("expected SP after " + name)
		}
		switch strings.ToUpper(name) {
		case "UID":
			v, err := p.number()
			if err != nil {
				return m, true, err
			}
			if v == 0 || v > 1<<32-1 {
				return m, true, p.fail("UID out of range")
			}
			m.UID = uint32(v)
		case "X-GM-MSGID":
			if m.MsgID, err = p.number(); err != nil {
				return m, true, err
			}
		case "X-GM-THRID":
			if m.ThrID, err = p.number(); err != nil {
				return m, true, err
			}
		case "MODSEQ":
			if !p.lit("(") {
				return m, true, p.fail("expected ( after MODSEQ")
			}
			if m.ModSeq, err = p.number(); err != nil {
				return m, true, err
			}
			if !p.lit(")") {
				return m, true, p.fail("expected ) after MODSEQ value")
			}
		case "X-GM-LABELS":
			if m.Labels, err = p.labels(); err != nil {
				return m, true, err
			}
		case "FLAGS":
			if m.Flags, err = p.flags(); err != nil {
				return m, true, err
			}
		default:
			if err := p.skipValue(0); err != nil {
				return m, true, err
			}
		}
	}
	if p.i != len(p.b) {
		return m, true, p.fail("data after the closing )")
	}
	return m, true, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) fail(detail string) error { return &SyntaxError{Offset: p.i, Detail: detail} }

func (p *parser) lit(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *parser) litFold(s string) bool {
	if p.i+len(s) <= len(p.b) && strings.EqualFold(string(p.b[p.i:p.i+len(s)]), s) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// number reads an unsigned 64-bit decimal number.
func (p *parser) number() (uint64, error) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if start == p.i {
		return 0, p.fail("expected a number")
	}
	v, err := strconv.ParseUint(string(p.b[start:p.i]), 10, 64)
	if err != nil {
		return 0, p.fail("number out of range")
	}
	return v, nil
}

// itemName reads a FETCH item name, with a section ("[...]") and a
// partial ("<n>") when present.
func (p *parser) itemName() (string, error) {
	start := p.i
	for p.i < len(p.b) && isAtomChar(p.b[p.i]) {
		p.i++
	}
	if start == p.i {
		return "", p.fail("expected an item name")
	}
	if p.peek() == '[' {
		end := indexByte(p.b[p.i:], ']')
		if end < 0 {
			return "", p.fail("unterminated section")
		}
		p.i += end + 1
		if p.peek() == '<' {
			end := indexByte(p.b[p.i:], '>')
			if end < 0 {
				return "", p.fail("unterminated partial")
			}
			p.i += end + 1
		}
	}
	return string(p.b[start:p.i]), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// isAtomChar is ATOM-CHAR of RFC 3501 plus '\' (flags, system labels)
// and '.' (BODY.PEEK), without the specials that end an item here.
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '[', ']':
		return false
	}
	return c > 0x20 && c < 0x7f
}

// maxDepth bounds the nesting of a skipped value (BODYSTRUCTURE nests).
const maxDepth = 64

// skipValue skips one value: atom/number/NIL, quoted string, literal, or
// a parenthesised list of values.
func (p *parser) skipValue(depth int) error {
	if depth > maxDepth {
		return p.fail("nested too deep")
	}
	switch p.peek() {
	case '(':
		p.i++
		for first := true; ; first = false {
			if p.lit(")") {
				return nil
			}
			if !first && !p.lit(" ") {
				return p.fail("expected SP or ) in list")
			}
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case '"', '{':
		_, err := p.str()
		return err
	default:
		start := p.i
		for p.i < len(p.b) && isAtomChar(p.b[p.i]) {
			p.i++
		}
		if start == p.i {
			return p.fail("expected a value")
		}
		return nil
	}
}

// str reads a quoted string or a literal.
func (p *parser) str() (string, error) {
	switch p.peek() {
	case '"':
		p.i++
		var sb strings.Builder
		for p.i < len(p.b) {
			c := p.b[p.i]
			p.i++
			switch c {
			case '"':
				return sb.String(), nil
			case '\\':
				if p.i >= len(p.b) || (p.b[p.i] != '\\' && p.b[p.i] != '"') {
					return "", p.fail(`bad escape in quoted string`)
				}
				sb.WriteByte(p.b[p.i])
				p.i++
			case '\r', '\n':
				return "", p.fail("CR or LF in quoted string")
			default:
				sb.WriteByte(c)
			}
		}
		return "", p.fail("unterminated quoted string")
	case '{':
		p.i++
		n, err := p.number()
		if err != nil {
			return "", err
		}
		p.lit("+")
		if !p.lit("}\r\n") {
			return "", p.fail("expected } CRLF after literal size")
		}
		if n > uint64(len(p.b)-p.i) {
			return "", p.fail("literal longer than the response")
		}
		s := string(p.b[p.i : p.i+int(n)])
		p.i += int(n)
		return s, nil
	}
	return "", p.fail("expected a string")
}

// labels reads X-GM-LABELS' value: "(" [label *(SP label)] ")", each label
// an atom (system labels: `\Inbox`), a quoted string or a literal, in
// modified UTF-7. NIL is taken as no labels.
func (p *parser) labels() ([]string, error) {
	if p.litFold("NIL") {
		return []string{}, nil
	}
	if !p.lit("(") {
		return nil, p.fail("expected ( after X-GM-LABELS")
	}
	out := []string{}
	for first := true; ; first = false {
		if p.lit(")") {
			return out, nil
		}
		if !first && !p.lit(" ") {
			return nil, p.fail("expected SP or ) in X-GM-LABELS")
		}
		var raw string
		switch p.peek() {
		case '"', '{':
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			raw = s
		default:
			start := p.i
			for p.i < len(p.b) && isAtomChar(p.b[p.i]) {
				p.i++
			}
			if start == p.i {
				return nil, p.fail("expected a label")
			}
			raw = string(p.b[start:p.i])
		}
		l, err := DecodeUTF7(raw)
		if err != nil {
			return nil, p.fail(fmt.Sprintf("label %q: %v", raw, err))
		}
		out = append(out, l)
	}
}

func (p *parser) flags() ([]string, error) {
	if !p.lit("(") {
		return nil, p.fail("expected ( after FLAGS")
	}
	out := []string{}
	for first := true; ; first = false {
		if p.lit(")") {
			return out, nil
		}
		if !first && !p.lit(" ") {
			return nil, p.fail("expected SP or ) in FLAGS")
		}
		start := p.i
		for p.i < len(p.b) && isAtomChar(p.b[p.i]) {
			p.i++
		}
		if p.i < len(p.b) && p.b[p.i] == '*' && p.i == start+1 && p.b[start] == '\\' {
			p.i++ // \* (PERMANENTFLAGS style)
		}
		if start == p.i {
			return nil, p.fail("expected a flag")
		}
		out = append(out, string(p.b[start:p.i]))
	}
}
