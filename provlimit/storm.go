package provlimit

import (
	"sync"
	"time"
)

// Storm recognises a BYE storm: a server that ends connection after
// connection (Microsoft 365 after 10 errors on one connection, providers
// shedding load). One BYE is Transient (reconnect); more than Max within
// Window means the account is being refused: stop reconnecting and treat
// it as TooManyConnections (use fewer connections, then stop).
type Storm struct {
	Max    int           // default 5
	Window time.Duration // default 1 minute
	Now    func() time.Time

	mu    sync.Mutex
	times []time.Time
}

// Bye records one connection ended by the server and returns the kind of
// limit the BYEs so far amount to.
func (s *Storm) Bye() Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	max, win, now := s.Max, s.Window, time.Now
	if max <= 0 {
		max = 5
	}
	if win <= 0 {
		win = time.Minute
	}
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	keep := s.times[:0]
	for _, x := range s.times {
		if t.Sub(x) < win {
			keep = append(keep, x)
		}
	}
	s.times = append(keep, t)
	if len(s.times) > max {
		return TooManyConnections
	}
	return Transient
}
