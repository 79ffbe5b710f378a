package imapsrc

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// Throttling on backup. A folder whose sync failed on a throttling answer
// (Gmail's [THROTTLED], RFC 5530's [LIMIT] and [UNAVAILABLE], Microsoft's
// "BAD Request is throttled. Suggested Backoff Time: N milliseconds", its
// "User is authenticated but not connected.") or on a connection the
// server ended with a BYE is run again on another connection after a wait:
// the server's suggested delay when it gave one, else Options.Backoff's
// exponential delay with jitter, through Options.Sleeper. The rerun
// resumes: what the failed attempt stored was committed when its writer
// closed and is in the catalog, so only the rest is fetched, each message
// once. Several BYEs in a row (provlimit.Storm) also make the backup use
// fewer connections (the pool dials no more while one is open). After
// Options.Backoff's attempts the folder fails with an error naming the
// account, the folder and the last answer (outcome partial); what was
// stored is kept and the next run continues.

// stopsFetch reports whether a tagged NO/BAD to a body FETCH ends the
// folder's attempt instead of leaving some messages missing: a daily limit
// (the run stops) or a throttling answer (the folder is run again). A
// Transient answer does not: Yahoo says "NO [UNAVAILABLE] UID FETCH Server
// error while fetching messages" of single messages, every time (imapsync
// issue #119, FAQ.Yahoo); those are asked again and then named as
// failures while the rest of the folder is stored.
func stopsFetch(k provlimit.Kind) bool {
	return k == provlimit.DailyLimit || k == provlimit.Throttled
}

// RetryError is a folder given up after its reruns on throttling answers
// (an *archive.MessageError names the account and the folder around it).
// errors.Is finds the limit's sentinel (provlimit.ErrThrottled, ...) and
// the last error's chain.
type RetryError struct {
	Account, Folder string
	Attempts        int
	Limit           *provlimit.Error // the last answer, recognised
	Err             error            // the last error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("still refused after %d attempts, giving up on the folder for this run (what was stored is kept; the next run continues): %v", e.Attempts, e.Err)
}

func (e *RetryError) Unwrap() []error { return []error{e.Limit, e.Err} }

// again decides, after the folder j failed with err (on connection c, nil
// when none could be had), whether to run it again: for a throttling
// answer or a server's BYE it waits and reports true. Otherwise it
// reports false with the error to record (a *RetryError once the attempts
// are used up).
func (b *backup) again(p *connPool, j *folderJob, c *imapclient.Client, err error) (bool, error) {
	e := provlimit.FromError(err)
	if c != nil {
		if text, ok := imapconn.Bye(c); ok {
			if b.lim.storm.Bye() == provlimit.TooManyConnections && p.shrink() {
				b.log.Warn("the server keeps ending connections: going on with fewer", "account", b.acct, "folder", j.cat.Name, "bye", text)
			}
			if e == nil {
				e = provlimit.Classify("BYE", "", text)
			}
			if e == nil {
				e = &provlimit.Error{Kind: provlimit.Transient, Status: "BYE", Text: text}
			}
		}
	}
	if e == nil || (e.Kind != provlimit.Throttled && e.Kind != provlimit.Transient) {
		return false, err
	}
	bo := b.opt.Backoff
	b.lim.mu.Lock()
	if b.lim.tries == nil {
		b.lim.tries = map[*folderJob]int{}
	}
	n := b.lim.tries[j]
	b.lim.tries[j] = n + 1
	b.lim.mu.Unlock()
	if n >= bo.MaxAttempts() {
		return false, &RetryError{Account: b.acct, Folder: j.cat.Name, Attempts: n + 1, Limit: e, Err: err}
	}
	d := bo.Delay(n, e.SuggestedDelay)
	b.log.Warn("the server asks to slow down: waiting, then the folder goes on", "account", b.acct, "folder", j.cat.Name, "answer", e.Error(), "wait", d.Round(time.Millisecond), "attempt", n+1)
	s := b.opt.Sleeper
	if s == nil {
		s = provlimit.RealSleeper{}
	}
	if serr := s.Sleep(b.ctx, d); serr != nil {
		return false, err
	}
	return true, nil
}

// shrink makes the pool dial no more while a connection is open, so that
// every connection the server ends lowers their number; it reports
// whether this changed anything.
func (p *connPool) shrink() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.capped
	p.capped = true
	return !was
}

// dialFirst logs the run's first connection in, waiting out throttling
// answers to the login as again does for a folder.
func (b *backup) dialFirst() (*imapclient.Client, error) {
	var c *imapclient.Client
	s := b.opt.Sleeper
	if s == nil {
		s = provlimit.RealSleeper{}
	}
	logged := provlimit.SleeperFunc(func(ctx context.Context, d time.Duration) error {
		b.log.Warn("the server asks to slow down at login: waiting", "account", b.acct, "wait", d.Round(time.Millisecond))
		return s.Sleep(ctx, d)
	})
	err := provlimit.Retry(b.ctx, b.opt.Backoff, logged, func() error {
		var err error
		c, err = b.opt.Account.Dial(b.ctx)
		return err
	})
	return c, err
}
