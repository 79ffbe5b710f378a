package imapconn

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// MULTIAPPEND (RFC 3502): several messages in one APPEND command, stored
// by the server in one transaction. On Dovecot's Maildir every APPEND
// transaction re-reads and rewrites the folder's whole dovecot-uidlist, so
// single APPENDs into one folder cost time quadratic in its size; one
// transaction per batch makes that cost linear.
//
// The command is streamed: StartAppend writes its head, AppendMessage one
// message with a LITERAL+ (non-synchronizing) literal, EndAppend the final
// CRLF. Nothing is held in memory and nothing is waited for; the caller
// reads the tagged answer with ReadTagged and AppendUIDs. Only for a
// server that offers both MULTIAPPEND and LITERAL+.

// ErrNoMultiAppend is returned by StartAppend on a connection whose
// server does not offer MULTIAPPEND and LITERAL+.
var ErrNoMultiAppend = errors.New("the server does not offer MULTIAPPEND with LITERAL+")

// CanMultiAppend reports whether the server offers MULTIAPPEND and
// LITERAL+ (what StartAppend needs).
func (r *Raw) CanMultiAppend() bool { return r.Caps["MULTIAPPEND"] && r.Caps["LITERAL+"] }

// StartAppend begins an APPEND command into mailbox (UTF-8, encoded here)
// and returns its tag. Messages follow with AppendMessage; EndAppend ends
// the command.
func (r *Raw) StartAppend(mailbox string) (string, error) {
	if !r.CanMultiAppend() {
		return "", ErrNoMultiAppend
	}
	tag := r.NextTag()
	_, err := r.W.WriteString(tag + " APPEND " + Mailbox(mailbox))
	return tag, err
}

// AppendMessage writes one message of the command begun by StartAppend:
// its flags, its date (unless zero) and a literal of size bytes, which
// write must write in full.
func (r *Raw) AppendMessage(flags []string, date time.Time, size int64, write func(io.Writer) error) error {
	var sb strings.Builder
	sb.WriteString(" (" + strings.Join(flags, " ") + ") ")
	if !date.IsZero() {
		sb.WriteString(`"` + date.Format("_2-Jan-2006 15:04:05 -0700") + `" `)
	}
	sb.WriteString("{" + strconv.FormatInt(size, 10) + "+}\r\n")
	if _, err := r.W.WriteString(sb.String()); err != nil {
		return err
	}
	return write(r.W)
}

// EndAppend ends the command begun by StartAppend and sends what is
// buffered. Its answer is read later with ReadTagged.
func (r *Raw) EndAppend() error {
	if _, err := r.W.WriteString("\r\n"); err != nil {
		return err
	}
	return r.W.Flush()
}

// AppendUIDs parses the text of an APPEND's tagged OK for the APPENDUID
// response code (RFC 4315): "[APPENDUID uidvalidity uid-set] ...". The UIDs
// are returned in the order of the set, which is the order of the
// messages; more than max UIDs (or a malformed code) is not accepted:
// ok is false then, as when there is no APPENDUID.
func AppendUIDs(text string, max int) (validity uint32, uids []uint32, ok bool) {
	rest, found := strings.CutPrefix(text, "[")
	if !found {
		return 0, nil, false
	}
	code, _, found := strings.Cut(rest, "]")
	if !found {
		return 0, nil, false
	}
	f := strings.Fields(code)
	if len(f) != 3 || !strings.EqualFold(f[0], "APPENDUID") {
		return 0, nil, false
	}
	v, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil || v == 0 {
		return 0, nil, false
	}
	for _, part := range strings.Split(f[2], ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseUID(lo)
		if err != nil {
			return 0, nil, false
		}
		b := a
		if isRange {
			if b, err = parseUID(hi); err != nil {
				return 0, nil, false
			}
		}
		step := uint32(1)
		if b < a {
			step = ^uint32(0) // descending: RFC 9051 allows either order
		}
		if n := int(max64(a, b) - min64(a, b) + 1); len(uids)+n > max {
			return 0, nil, false
		}
		for u := a; ; u += step {
			uids = append(uids, u)
			if u == b {
				break
			}
		}
	}
	return uint32(v), uids, true
}

func parseUID(s string) (uint32, error) {
	u, err := strconv.ParseUint(s, 10, 32)
	if err == nil && u == 0 {
		err = errors.New("UID 0")
	}
	return uint32(u), err
}

func max64(a, b uint32) int64 { return int64(max(a, b)) }
func min64(a, b uint32) int64 { return int64(min(a, b)) }
