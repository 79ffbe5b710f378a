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
//   - When the destination says the account's daily allowance is used up
//     (Gmail past its IMAP upload limit of about 500 MB a day: "NO [ALERT]
//     Account exceeded command or bandwidth limits. (Failure)", the same
//     text under [OVERQUOTA] or in a BYE), the restore stops cleanly: no
//     APPEND is sent again or started on any connection, no folder is
//     started, nothing is retried. APPENDs already in flight are
//     collected and those the server took are recorded; those it refused
//     are left for the next run, not failures. The folders whose
//     connection is still good have the flags and labels of what they
//     appended checked and stored as after a complete folder (labels
//     already placed stay; a rerun adds the missing ones). Stats.Stopped
//     is a *StopError ("stopped: Gmail's daily upload limit; run again
//     after 24 h"), also the run's one failure (outcome partial). A rerun
//     resumes from the progress record and appends nothing twice.
//   - Options.Budget (max_bytes_per_run, max_messages_per_run) stops the
//     restore the same way before an APPEND would go past it (the run's
//     first message always goes), so that a restore run once a day stays
//     under a known daily limit (Gmail's 500 MB: a budget of 450 MB
//     leaves room for the account's other clients). Stats.Stopped then
//     wraps provlimit.ErrBudget.

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
// error: a NO/BAD is an *imap.Error, from go-imap or the raw connection,
// or a *gmailext.StatusError (a provlimit.Status) from the labels'
// connection.
func limitOf(err error) *provlimit.Error { return provlimit.FromError(err) }

// StopError is a restore stopped at the destination's daily limit, or at
// Options.Budget. errors.Is finds provlimit.ErrDailyLimit (or
// provlimit.ErrBudget) in it.
type StopError struct {
	Gmail  bool             // the destination is Gmail
	Folder string           // the source folder the limit was met in
	Limit  *provlimit.Error // the server's answer; nil: Options.Budget
	Budget provlimit.Budget // Options.Budget, when it stopped the run
}

func (e *StopError) Error() string {
	if e.Limit == nil {
		return fmt.Sprintf("stopped: the run's budget is spent (max_bytes_per_run %d, max_messages_per_run %d; reached in folder %q); run again to continue, where this one stopped", e.Budget.MaxBytes, e.Budget.MaxMessages, e.Folder)
	}
	what := "the destination's daily limit; run again later"
	if e.Gmail {
		what = "Gmail's daily upload limit; run again after 24 h"
	}
	return fmt.Sprintf("stopped: %s (met in folder %q; the next run resumes where this one stopped; the server said: %s)", what, e.Folder, e.Limit)
}

func (e *StopError) Unwrap() error {
	if e.Limit == nil {
		return provlimit.ErrBudget
	}
	return e.Limit
}

// errStopped ends a folder's work once the run is stopped at the daily
// limit; it is not a failure of the folder.
var errStopped = errors.New("restore stopped at the destination's daily limit")

// stopAt stops the run when err is a daily-limit answer, met in the
// source folder folder; it reports whether it is one.
func (r *run) stopAt(folder string, err error) bool {
	e := limitOf(err)
	if e == nil || e.Kind != provlimit.DailyLimit {
		return false
	}
	r.stop(&StopError{Gmail: r.gmail, Folder: folder, Limit: e})
	return true
}

// stop records the run's stop, the first time.
func (r *run) stop(stop *StopError) {
	if !r.halted.CompareAndSwap(false, true) {
		return
	}
	if stop.Limit != nil {
		r.log.Warn("the destination's daily limit is reached: stopping the restore; what was appended is kept and recorded, and the next run resumes", "folder", stop.Folder, "answer", stop.Limit.Error())
	} else {
		r.log.Warn("the run's budget is spent: stopping the restore; the next run resumes", "folder", stop.Folder, "max_bytes_per_run", stop.Budget.MaxBytes, "max_messages_per_run", stop.Budget.MaxMessages)
	}
	r.count(func(s *Stats) {
		s.Stopped = stop
		s.Failures = append(s.Failures, &FolderError{Folder: stop.Folder, Err: stop})
	})
}

// budgeted reserves size bytes of Options.Budget for one APPEND; when the
// budget does not allow it, it stops the run (before anything of it is
// sent) and reports false. A message sent again after a throttling
// answer is counted again: the budget errs on the safe side.
func (r *run) budgeted(folder string, size int64) bool {
	b := r.opt.Budget
	if b.Unlimited() {
		return true
	}
	r.mu.Lock()
	ok := b.Allows(r.usedBytes, r.usedMsgs, size)
	if ok {
		r.usedBytes += size
		r.usedMsgs++
	}
	r.mu.Unlock()
	if !ok {
		r.stop(&StopError{Gmail: r.gmail, Folder: folder, Budget: b})
	}
	return ok
}

// stoppedLeft reports whether err, met after the run stopped, only
// leaves the message or folder for the next run: the stop itself, or a
// refusal or limit answer to an APPEND (nothing is retried any more).
func (r *run) stoppedLeft(err error) bool {
	return r.halted.Load() && (errors.Is(err, errStopped) || isRefusal(err) || limitOf(err) != nil)
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
	if attempt >= r.opt.Backoff.MaxAttempts() || r.halted.Load() {
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
	if r.halted.Load() {
		return false
	}
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
