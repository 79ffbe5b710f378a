// Package provlimit recognises the answers mail providers give when a
// client runs into their limits, and says what to do about them: wait and
// retry (Throttled, Transient), stop the run cleanly and continue the next
// one (DailyLimit), use fewer connections (TooManyConnections), or skip
// one message and name it (MessageTooBig). It also holds the backoff
// policy (exponential with jitter, honouring a server's suggested delay,
// capped, with an injected sleeper) and the per-account run budget
// (max_bytes_per_run, max_messages_per_run).
//
// Response codes are matched where the provider sends one. Some answers
// carry no code, or a generic one (Microsoft's throttling, its size
// refusal, Gmail's connection cap and its daily upload or download limit
// under ALERT or UNAVAILABLE): their text is matched here and
// nowhere else in mailkeep; each string's source is cited in the table
// tests (provlimit_test.go). Callers look at the result with errors.Is /
// errors.As, never at the text.
package provlimit

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Kind is what a limit answer asks of the client.
type Kind int

const (
	// None: not a limit answer.
	None Kind = iota
	// Throttled: slow down; retry after Error.SuggestedDelay (when the
	// server gave one) or after a backoff.
	Throttled
	// DailyLimit: the account's allowance for the day (or period) is used
	// up. Stop the run cleanly, keep what was stored, report it partial;
	// the next run continues.
	DailyLimit
	// TooManyConnections: the server refuses another session; use fewer.
	TooManyConnections
	// MessageTooBig: the server will never take this message; skip it
	// and name it.
	MessageTooBig
	// Transient: the server cannot serve now; reconnect and retry later.
	Transient
)

var kindNames = [...]string{"none", "throttled", "daily limit", "too many connections", "message too big", "transient"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind " + strconv.Itoa(int(k))
}

// Sentinels for errors.Is: an *Error is its Kind's sentinel.
var (
	ErrThrottled          = errors.New("provider throttled the account")
	ErrDailyLimit         = errors.New("provider's daily limit reached")
	ErrTooManyConnections = errors.New("provider refuses more simultaneous connections")
	ErrMessageTooBig      = errors.New("message larger than the provider accepts")
	ErrTransient          = errors.New("provider temporarily unavailable")
)

func (k Kind) sentinel() error {
	switch k {
	case Throttled:
		return ErrThrottled
	case DailyLimit:
		return ErrDailyLimit
	case TooManyConnections:
		return ErrTooManyConnections
	case MessageTooBig:
		return ErrMessageTooBig
	case Transient:
		return ErrTransient
	}
	return nil
}

// Error is a recognised limit answer.
type Error struct {
	Kind           Kind
	SuggestedDelay time.Duration // the server's own "retry after" (0: none given)
	Status         string        // OK, NO, BAD, BYE
	Code           string        // response code without brackets, upper case ("" if none)
	Text           string        // the server's human-readable text
}

func (e *Error) Error() string {
	s := e.Kind.String() + ": " + e.Status
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	if e.SuggestedDelay > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.SuggestedDelay)
	}
	return s
}

// Is makes errors.Is(err, ErrThrottled) (etc.) true for an *Error of that kind.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind.sentinel() }

// The answers without a response code, matched by their text. Sources are
// cited in provlimit_test.go.
var (
	// Microsoft 365: "BAD Request is throttled. Suggested Backoff Time: 299961 milliseconds".
	msThrottle = regexp.MustCompile(`(?i)\brequest is throttled\b.*?suggested backoff time:\s*([0-9]{1,12})\s*milliseconds`)
	// Microsoft 365 also sends the first sentence alone.
	msThrottleBare = regexp.MustCompile(`(?i)\brequest is throttled\b`)
	// Microsoft 365: "NO Maximum size of appendable message has been exceeded."
	msTooBig = regexp.MustCompile(`(?i)\bmaximum size of appendable message has been exceeded\b`)
	// Microsoft 365: "BAD User is authenticated but not connected."
	msNotConnected = regexp.MustCompile(`(?i)\buser is authenticated but not connected\b`)
	// Gmail: "NO [ALERT] Too many simultaneous connections. (Failure)".
	tooManyConns = regexp.MustCompile(`(?i)\btoo many simultaneous connections\b`)
	// Gmail past its daily upload (or download) limit: "NO [ALERT]
	// Account exceeded command or bandwidth limits. (Failure)", the same
	// text under [OVERQUOTA], or a BYE [UNAVAILABLE] that ends the session.
	gmailBandwidth = regexp.MustCompile(`(?i)\baccount exceeded command or bandwidth limits\b`)
	// Gmail: "* BYE Session expired, please login again."
	gmailExpired = regexp.MustCompile(`(?i)^session expired, please login again\b`)
)

// maxSuggested bounds a server's suggested delay: a larger value is
// taken as this (a broken or hostile server cannot park a run forever).
const maxSuggested = 30 * time.Minute

// Classify recognises one status response: status is OK, NO, BAD or BYE
// (case-insensitive), code the response code (with or without brackets,
// arguments allowed: "THROTTLED", "[OVERQUOTA]"), text the rest. It
// returns nil when the answer is not a limit.
func Classify(status, code, text string) *Error {
	status = strings.ToUpper(strings.TrimSpace(status))
	code = strings.ToUpper(strings.Trim(strings.TrimSpace(code), "[]"))
	if i := strings.IndexByte(code, ' '); i >= 0 {
		code = code[:i] // "APPENDLIMIT 1000" style arguments
	}
	text = strings.TrimSpace(text)
	e := &Error{Status: status, Code: code, Text: text}
	// Gmail's daily limit says so in its text whatever the code: ALERT
	// and UNAVAILABLE alone mean something else (an alert to show, a
	// temporary failure).
	if status != "OK" && gmailBandwidth.MatchString(text) {
		e.Kind = DailyLimit
		return e
	}
	switch code {
	case "THROTTLED": // Gmail, on OK (and NO) answers
		e.Kind = Throttled
		return e
	case "OVERQUOTA": // Gmail's bandwidth/command limit
		e.Kind = DailyLimit
		return e
	case "TOOBIG": // RFC 4469/7889; Gmail on APPEND
		e.Kind = MessageTooBig
		return e
	case "UNAVAILABLE": // RFC 5530: temporary failure
		e.Kind = Transient
		return e
	case "LIMIT": // RFC 5530: an implementation limit; retried after a backoff
		e.Kind = Throttled
		return e
	}
	switch {
	case msThrottle.MatchString(text):
		e.Kind = Throttled
		ms, _ := strconv.ParseInt(msThrottle.FindStringSubmatch(text)[1], 10, 64)
		e.SuggestedDelay = min(time.Duration(ms)*time.Millisecond, maxSuggested) // ms < 10^12: no overflow
	case msThrottleBare.MatchString(text) && status != "OK":
		e.Kind = Throttled
	case msTooBig.MatchString(text) && status != "OK":
		e.Kind = MessageTooBig
	case msNotConnected.MatchString(text) && status != "OK":
		e.Kind = Transient
	case tooManyConns.MatchString(text) && status != "OK":
		e.Kind = TooManyConnections
	case status == "BYE" && gmailExpired.MatchString(text):
		e.Kind = DailyLimit
	default:
		return nil
	}
	return e
}

// FromError recognises a limit answer in err: an *Error already, or
// go-imap's *imap.Error (a tagged NO or BAD), or a *Status (a response
// read without go-imap). It returns nil otherwise.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return Classify(string(ie.Type), string(ie.Code), ie.Text)
	}
	var st *Status
	if errors.As(err, &st) {
		return Classify(st.Type, st.Code, st.Text)
	}
	return nil
}

// KindOf is FromError's Kind, None when err is not a limit answer.
func KindOf(err error) Kind {
	if e := FromError(err); e != nil {
		return e.Kind
	}
	return None
}

// Status is a status response read without go-imap ("NO [CODE] text").
type Status struct {
	Type, Code, Text string
}

func (s *Status) Error() string {
	if s.Code != "" {
		return s.Type + " [" + s.Code + "] " + s.Text
	}
	return s.Type + " " + s.Text
}

// ParseStatus splits a status response's line after its tag ("NO [TOOBIG]
// Message too large.", "BAD Request is throttled. ...") into a *Status. It
// returns nil when line does not start with OK, NO, BAD or BYE.
func ParseStatus(line string) *Status {
	typ, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	typ = strings.ToUpper(typ)
	switch typ {
	case "OK", "NO", "BAD", "BYE":
	default:
		return nil
	}
	st := &Status{Type: typ}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			st.Code = rest[1:i]
			rest = strings.TrimSpace(rest[i+1:])
		}
	}
	st.Text = rest
	return st
}
