package provlimit

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleeper waits; tests inject one that advances a fake clock instead.
type Sleeper interface {
	// Sleep waits d or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealSleeper sleeps on the wall clock.
type RealSleeper struct{}

// Sleep waits d or until ctx ends.
func (RealSleeper) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SleeperFunc adapts a function to Sleeper.
type SleeperFunc func(ctx context.Context, d time.Duration) error

// Sleep calls f.
func (f SleeperFunc) Sleep(ctx context.Context, d time.Duration) error { return f(ctx, d) }

// Backoff is the retry policy for Throttled and Transient answers:
// exponential from Base, doubled per attempt, capped at Max, with "equal
// jitter" (half fixed, half random) so that parallel connections do not
// retry in step. A server's suggested delay is honoured as it is (plus up
// to 10% jitter), up to MaxSuggested.
type Backoff struct {
	Base         time.Duration // first delay (default 1 s)
	Max          time.Duration // cap of the exponential delay (default 2 min)
	MaxSuggested time.Duration // cap of a server's suggested delay (default 10 min)
	Attempts     int           // retries before giving up (default 5)
	// Rand returns a number in [0,1) (default math/rand/v2); tests fix it.
	Rand func() float64
}

// DefaultBackoff is the policy mailkeep uses.
var DefaultBackoff = Backoff{}

func (b Backoff) norm() Backoff {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Max <= 0 {
		b.Max = 2 * time.Minute
	}
	if b.MaxSuggested <= 0 {
		b.MaxSuggested = 10 * time.Minute
	}
	if b.Attempts <= 0 {
		b.Attempts = 5
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	return b
}

// MaxAttempts is the number of retries the policy allows.
func (b Backoff) MaxAttempts() int { return b.norm().Attempts }

// Delay is how long to wait before retry number attempt (0 for the first
// retry) after an answer that suggested the given delay (0: none).
func (b Backoff) Delay(attempt int, suggested time.Duration) time.Duration {
	b = b.norm()
	if suggested > 0 {
		d := min(suggested, b.MaxSuggested)
		return d + time.Duration(b.Rand()*0.1*float64(d))
	}
	d := b.Base
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + time.Duration(b.Rand()*float64(d-half))
}

// Retry calls fn until it succeeds, fails with something other than a
// Throttled or Transient limit answer, or the policy's attempts are used
// up; between calls it waits (through s) the policy's delay for the
// answer fn gave. It returns fn's last error, or ctx's.
func Retry(ctx context.Context, b Backoff, s Sleeper, fn func() error) error {
	if s == nil {
		s = RealSleeper{}
	}
	for attempt := 0; ; attempt++ {
		err := fn()
		e := FromError(err)
		if err == nil || e == nil || (e.Kind != Throttled && e.Kind != Transient) || attempt >= b.MaxAttempts() {
			return err
		}
		if serr := s.Sleep(ctx, b.Delay(attempt, e.SuggestedDelay)); serr != nil {
			return serr
		}
	}
}
