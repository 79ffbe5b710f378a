package textindex

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ErrQuery is wrapped by every query syntax error.
var ErrQuery = errors.New("bad query")

// Node is a parsed query: And, Or, Not or Term.
type Node interface{ String() string }

// And matches when all its nodes match.
type And []Node

// Or matches when any of its nodes matches.
type Or []Node

// Not matches when its node does not.
type Not struct{ N Node }

// Term is one search term. Field is "" for free text (every text field),
// or one of from, to, cc, subject, filename (text fields), folder, label,
// has, is, before, after, larger, smaller. For before/after Time is set,
// for larger/smaller Size.
type Term struct {
	Field string
	Value string
	Time  time.Time
	Size  int64
}

// textFields maps a query field to the FTS column it searches.
var textFields = map[string]string{
	"from": "from_", "to": "to_", "cc": "cc", "subject": "subject", "filename": "filename",
	"bcc": "to_", // archived Bcc lines are rare; search them with the recipients
}

func (a And) String() string { return join([]Node(a), " ") }
func (o Or) String() string  { return "(" + join([]Node(o), " OR ") + ")" }
func (n Not) String() string {
	if t, ok := n.N.(Term); ok {
		return "-" + t.String()
	}
	return "-(" + n.N.String() + ")"
}

func (t Term) String() string {
	v := t.Value
	if v == "" || strings.ContainsAny(v, "\"():{}-\\") || strings.IndexFunc(v, unicode.IsSpace) >= 0 || v == "OR" {
		v = `"` + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`) + `"`
	}
	if t.Field == "" {
		return v
	}
	return t.Field + ":" + v
}

func join(ns []Node, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
		if _, ok := n.(And); ok {
			s[i] = "(" + s[i] + ")"
		}
	}
	return strings.Join(s, sep)
}

// ParseQuery parses a Gmail-like query: free words and "phrases" (searched in
// every text field), field:value terms (from: to: cc: bcc: subject:
// filename: folder: label: has:attachment is:flagged is:unread is:read
// is:answered before: after: older_than: newer_than: larger: smaller:),
// "-" before a term to negate it, OR between terms, and ( ) to group.
// Terms side by side must all match; OR binds tighter than that, as in
// Gmail: "from:a OR from:b invoice" is (from:a OR from:b) AND invoice.
// Dates are YYYY/MM/DD or YYYY-MM-DD in loc (midnight); older_than and
// newer_than take Nd, Nw, Nm or Ny counted back from now. Sizes are bytes
// with an optional K, M or G suffix (powers of 1024).
func ParseQuery(q string, now time.Time, loc *time.Location) (Node, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &qparser{toks: toks, now: now, loc: loc}
	n, err := p.and(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q", ErrQuery, p.toks[p.pos].text)
	}
	if n == nil {
		return nil, fmt.Errorf("%w: empty query", ErrQuery)
	}
	return n, nil
}

type tokKind int

const (
	tWord tokKind = iota
	tOpen
	tClose
	tOr
)

type token struct {
	kind   tokKind
	neg    bool
	field  string
	text   string // the value (unquoted)
	quoted bool
}

func lex(q string) ([]token, error) {
	var toks []token
	rs := []rune(q)
	i := 0
	for i < len(rs) {
		c := rs[i]
		switch {
		case unicode.IsSpace(c):
			i++
			continue
		case c == '(' || c == '{':
			toks = append(toks, token{kind: tOpen, text: string(c)})
			i++
			continue
		case c == ')' || c == '}':
			toks = append(toks, token{kind: tClose, text: string(c)})
			i++
			continue
		}
		if c == '-' && i+1 < len(rs) && (rs[i+1] == '(' || rs[i+1] == '{') {
			toks = append(toks, token{kind: tOpen, neg: true, text: "-("})
			i += 2
			continue
		}
		t := token{kind: tWord}
		if c == '-' && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) && rs[i+1] != ')' {
			t.neg = true
			i++
		}
		// A word runs to white space or a parenthesis; a field name is
		// the letters before the first ':'.
		start := i
		if i < len(rs) && rs[i] != '"' {
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || rs[j] == '_') {
				j++
			}
			if j < len(rs) && rs[j] == ':' && j > i {
				if f := strings.ToLower(string(rs[i:j])); isField(f) {
					t.field = f
					i = j + 1
				}
			}
		}
		if i < len(rs) && rs[i] == '"' {
			j := i + 1
			var sb strings.Builder
			for j < len(rs) && rs[j] != '"' {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				sb.WriteRune(rs[j])
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("%w: unterminated quote in %q", ErrQuery, string(rs[start:]))
			}
			t.text, t.quoted = sb.String(), true
			i = j + 1
		} else {
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '(' && rs[j] != ')' && rs[j] != '{' && rs[j] != '}' {
				j++
			}
			t.text = string(rs[i:j])
			i = j
			if t.field != "" && t.text == "" {
				return nil, fmt.Errorf("%w: %s: needs a value", ErrQuery, t.field)
			}
			if t.text == "OR" && t.field == "" && !t.neg {
				t.kind = tOr
			}
		}
		if t.kind == tWord && t.field == "" && !t.quoted && t.text == "" {
			continue // a lone "-"
		}
		toks = append(toks, t)
	}
	return toks, nil
}

func isField(f string) bool {
	if _, ok := textFields[f]; ok {
		return true
	}
	switch f {
	case "folder", "in", "label", "has", "is", "before", "after", "older_than", "newer_than", "older", "newer", "larger", "smaller", "size":
		return true
	}
	return false
}

type qparser struct {
	toks []token
	pos  int
	now  time.Time
	loc  *time.Location
}

func (p *qparser) and(depth int) (Node, error) {
	if depth > 50 {
		return nil, fmt.Errorf("%w: parentheses nested too deep", ErrQuery)
	}
	var out And
	for p.pos < len(p.toks) {
		if p.toks[p.pos].kind == tClose {
			break
		}
		n, err := p.or(depth)
		if err != nil {
			return nil, err
		}
		if n != nil {
			out = append(out, n)
		}
	}
	switch len(out) {
	case 0:
		return nil, nil
	case 1:
		return out[0], nil
	}
	return out, nil
}

func (p *qparser) or(depth int) (Node, error) {
	first, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	alts := Or{first}
	for p.pos < len(p.toks) && p.toks[p.pos].kind == tOr {
		p.pos++
		if p.pos >= len(p.toks) || p.toks[p.pos].kind == tClose || p.toks[p.pos].kind == tOr {
			return nil, fmt.Errorf("%w: OR needs a term on each side", ErrQuery)
		}
		n, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		return first, nil
	}
	return alts, nil
}

func (p *qparser) unary(depth int) (Node, error) {
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case tOr:
		return nil, fmt.Errorf("%w: OR needs a term on each side", ErrQuery)
	case tOpen:
		n, err := p.and(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != tClose {
			return nil, fmt.Errorf("%w: missing )", ErrQuery)
		}
		p.pos++
		if n == nil {
			return nil, fmt.Errorf("%w: empty ( )", ErrQuery)
		}
		if t.neg {
			return Not{n}, nil
		}
		return n, nil
	case tClose:
		return nil, fmt.Errorf("%w: unexpected )", ErrQuery)
	}
	n, err := p.term(t)
	if err != nil {
		return nil, err
	}
	if t.neg {
		return Not{n}, nil
	}
	return n, nil
}

func (p *qparser) term(t token) (Node, error) {
	v := t.text
	switch t.field {
	case "":
		return Term{Value: v}, nil
	case "in":
		return Term{Field: "folder", Value: v}, nil
	case "folder", "label":
		return Term{Field: t.field, Value: v}, nil
	case "has":
		switch strings.ToLower(v) {
		case "attachment", "attachments":
			return Term{Field: "has", Value: "attachment"}, nil
		}
		return nil, fmt.Errorf("%w: has:%s (want has:attachment)", ErrQuery, v)
	case "is":
		switch v = strings.ToLower(v); v {
		case "flagged", "starred":
			return Term{Field: "is", Value: "flagged"}, nil
		case "unread", "read", "answered":
			return Term{Field: "is", Value: v}, nil
		case "seen":
			return Term{Field: "is", Value: "read"}, nil
		}
		return nil, fmt.Errorf("%w: is:%s (want flagged, unread, read or answered)", ErrQuery, v)
	case "before", "after":
		d, err := parseDate(v, p.loc)
		if err != nil {
			return nil, err
		}
		return Term{Field: t.field, Value: v, Time: d}, nil
	case "older_than", "newer_than", "older", "newer":
		d, err := parseAge(v, p.now)
		if err != nil {
			return nil, err
		}
		f := "before"
		if strings.HasPrefix(t.field, "newer") {
			f = "after"
		}
		return Term{Field: f, Value: d.In(p.loc).Format("2006-01-02T15:04:05"), Time: d}, nil
	case "larger", "smaller", "size":
		n, err := parseSize(v)
		if err != nil {
			return nil, err
		}
		f := t.field
		if f == "size" {
			f = "larger"
		}
		return Term{Field: f, Value: v, Size: n}, nil
	}
	return Term{Field: t.field, Value: v}, nil
}

func parseDate(v string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006/01/02", "2006-01-02", "2006/1/2", "2006-1-2", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: date %q (want YYYY/MM/DD)", ErrQuery, v)
}

func parseAge(v string, now time.Time) (time.Time, error) {
	if len(v) < 2 {
		return time.Time{}, fmt.Errorf("%w: age %q (want e.g. 30d, 6m, 2y)", ErrQuery, v)
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil || n < 0 || n > 10000 {
		return time.Time{}, fmt.Errorf("%w: age %q (want e.g. 30d, 6m, 2y)", ErrQuery, v)
	}
	switch unicode.ToLower(rune(v[len(v)-1])) {
	case 'd':
		return now.AddDate(0, 0, -n), nil
	case 'w':
		return now.AddDate(0, 0, -7*n), nil
	case 'm':
		return now.AddDate(0, -n, 0), nil
	case 'y':
		return now.AddDate(-n, 0, 0), nil
	}
	return time.Time{}, fmt.Errorf("%w: age %q (want e.g. 30d, 6m, 2y)", ErrQuery, v)
}

func parseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(v, "B"), "b"))
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult, s = 1<<10, s[:len(s)-1]
		case 'M':
			mult, s = 1<<20, s[:len(s)-1]
		case 'G':
			mult, s = 1<<30, s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%w: size %q (want e.g. 500K, 10M)", ErrQuery, v)
	}
	return n * mult, nil
}
