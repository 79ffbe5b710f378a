package restore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/provlimit"
)

// Provider limits (package provlimit) on restore:
//
//   - A message larger than the destination takes is skipped and named in
//     Stats.TooBig, not a failure: before it is sent when the server
//     announces APPENDLIMIT (RFC 7889) in CAPABILITY, else when the server
//     refuses it as too big (Gmail's "BAD [TOOBIG]", Microsoft's "NO
//     Maximum size of appendable message has been exceeded").
//   - An APPEND refused with a throttling answer (Microsoft's "BAD Request
//     is throttled. Suggested Backoff Time: N milliseconds", [THROTTLED],
//     [LIMIT], [UNAVAILABLE]) is sent again after the server's suggested
//     delay (else an exponential backoff with jitter), through
//     Options.Sleeper, up to Options.Backoff's attempts; then it is a
//     refusal like any other. A folder that failed on a throttling answer
//     outside APPEND (SELECT, FETCH) is run again the same way: a rerun of a
//     folder appends nothing twice.
//   - Once the destination has throttled, a folder whose connection the
//     server then ended (Microsoft 365 says "* BYE Connection closed. 14"
//     after 10 NO or BAD answers on one connection, throttled APPENDs
//     included) is run again the same way, on a new connection, after
//     Options.Backoff's delay. A connection lost without throttling
//     fails the folder as before (the next run resumes it).

// TooBig is a message the destination does not take for its size.
type TooBig struct {
	Folder  string `json:"folder"`  // source folder
	Message string `json:"message"` // as its user finds it (Namer: "UID 4711")
	Size    int64  `json:"size"`
	Limit   int64  `json:"limit,omitempty"` // APPENDLIMIT, when announced
	Text    string `json:"text,omitempty"`  // the server's answer, when it refused it
}

func (t TooBig) String() string {
	if t.Limit > 0 {
		return fmt.Sprintf("folder %q: message %s: %d bytes, over the destination's APPENDLIMIT of %d: skipped", t.Folder, t.Message, t.Size, t.Limit)
	}
	return fmt.Sprintf("folder %q: message %s: %d bytes, refused as too big (%s): skipped", t.Folder, t.Message, t.Size, t.Text)
}

// limitOf recognises a provider limit in an APPEND's (or a folder's)
// error: a NO/BAD is an *imap.Error, from go-imap or the raw connection.
func limitOf(err error) *provlimit.Error {
	return provlimit.FromError(err)
}

// retryable reports whether a limit answer is worth sending again.
func retryable(e *provlimit.Error) bool {
	return e != nil && (e.Kind == provlimit.Throttled || e.Kind == provlimit.Transient)
}

// appendLimit reads APPENDLIMIT=n from the capabilities (0: none).
func appendLimit(caps imap.CapSet) int64 {
	if l, ok := caps.AppendLimit(); ok && l != nil {
		return int64(*l)
	}
	return 0
}

// tooBig records a message skipped for its size.
func (fr *folderRun) tooBig(key string, size, limit int64, answer error) {
	t := TooBig{Folder: fr.f.Name, Message: fr.r.msgName(fr.f.Name, key), Size: size, Limit: limit}
	if answer != nil {
		if e := limitOf(answer); e != nil {
			t.Text = e.Status + " " + e.Text
			if e.Code != "" {
				t.Text = e.Status + " [" + e.Code + "] " + e.Text
			}
		} else {
			t.Text = answer.Error()
		}
	}
	fr.r.log.Warn("message too big for the destination: skipped", "folder", fr.f.Name, "message", t.Message, "size", size, "limit", limit, "answer", t.Text)
	fr.r.count(func(s *Stats) { s.TooBig = append(s.TooBig, t) })
}

// wait sleeps (through Options.Sleeper) before sending again after the
// limit answer e, the attempt-th time; it returns false when the attempts
// are used up or the run was cancelled.
func (r *run) wait(e *provlimit.Error, attempt int) bool {
	r.throttled.Store(true)
	if attempt >= r.opt.Backoff.MaxAttempts() {
		return false
	}
	d := r.opt.Backoff.Delay(attempt, e.SuggestedDelay)
	r.log.Warn("the destination asks to slow down; waiting", "answer", e.Error(), "wait", d.Round(time.Millisecond), "attempt", attempt+1)
	s := r.opt.Sleeper
	if s == nil {
		s = provlimit.RealSleeper{}
	}
	return s.Sleep(r.ctx, d) == nil
}

// ignoreAppendLimit, set by tests, sends messages over APPENDLIMIT anyway
// so that the server's own refusal is exercised.
var ignoreAppendLimit bool

// again sends p once more, after a throttling answer, queued behind what
// is in flight.
func (fr *folderRun) again(p *pendingAppend) error {
	b, err := load(p.src)
	if err != nil {
		fr.damaged(p.src, err)
		return nil
	}
	q, err := fr.send(fr.crlfUpFront(b), p.flags) // crlf.go
	if err != nil {
		fr.cn.close()
		return &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, err)}
	}
	q.src, q.tries = p.src, p.tries+1
	fr.pending = append(fr.pending, q)
	return nil
}

// rerun decides, after a folder's attempt failed with err, whether to run
// it again: after a throttling answer (waiting as the server says) or,
// once the destination has throttled, a connection it ended (waiting
// Options.Backoff's delay), up to Options.Backoff's attempts.
func (r *run) rerun(err error, attempt int) bool {
	if e := limitOf(err); retryable(e) {
		return r.wait(e, attempt)
	}
	if !r.throttled.Load() || !connLost(err) || r.ctx.Err() != nil {
		return false
	}
	return r.wait(&provlimit.Error{Kind: provlimit.Transient, Status: "BYE", Text: "connection lost: " + err.Error()}, attempt)
}

// connLost reports whether err is the server ending the connection.
func connLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
