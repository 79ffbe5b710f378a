package provlimit

import (
	"errors"
	"fmt"
)

// ErrBudget marks a run stopped at its per-account budget
// (max_bytes_per_run, max_messages_per_run): outcome partial, the next run
// continues.
var ErrBudget = errors.New("run budget reached")

// Budget is a per-account allowance for one run; zero fields are
// unlimited. It spreads a first backup of a large account over several
// runs (and keeps under a provider's daily download limit).
type Budget struct {
	MaxBytes    int64 // max_bytes_per_run
	MaxMessages int64 // max_messages_per_run
}

// Unlimited reports whether b allows everything.
func (b Budget) Unlimited() bool { return b.MaxBytes <= 0 && b.MaxMessages <= 0 }

// Allows reports whether a run that has used (bytes, messages) may take one
// more message of size bytes. The first message of a run is always
// allowed, so a message larger than MaxBytes cannot stall every run.
func (b Budget) Allows(usedBytes, usedMessages, size int64) bool {
	if usedMessages == 0 {
		return true
	}
	if b.MaxMessages > 0 && usedMessages+1 > b.MaxMessages {
		return false
	}
	if b.MaxBytes > 0 && usedBytes+size > b.MaxBytes {
		return false
	}
	return true
}

// Remaining is what a stopped run left for later runs.
type Remaining struct {
	Bytes    int64 `json:"bytes_left"`
	Messages int64 `json:"messages_left"`
	// Runs estimates the runs still needed at this budget (0: nothing
	// left; 1 when unlimited and something is left).
	Runs int64 `json:"estimated_runs"`
}

// Estimate says how many runs at budget b the remaining bytes and messages
// need.
func (b Budget) Estimate(bytes, messages int64) Remaining {
	r := Remaining{Bytes: max(bytes, 0), Messages: max(messages, 0)}
	if r.Bytes == 0 && r.Messages == 0 {
		return r
	}
	r.Runs = 1
	if b.MaxBytes > 0 {
		r.Runs = max(r.Runs, ceilDiv(r.Bytes, b.MaxBytes))
	}
	if b.MaxMessages > 0 {
		r.Runs = max(r.Runs, ceilDiv(r.Messages, b.MaxMessages))
	}
	return r
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// String is the summary line's part: "12 messages, 3.4 MB left, about 2 runs".
func (r Remaining) String() string {
	if r.Runs == 0 {
		return "nothing left"
	}
	runs := "run"
	if r.Runs != 1 {
		runs = "runs"
	}
	return fmt.Sprintf("%d messages, %s left, about %d more %s", r.Messages, human(r.Bytes), r.Runs, runs)
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
