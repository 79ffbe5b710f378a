package imapsrc

import (
	"context"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/provlimit"
)

// connPool hands the backup's folder jobs their connections: an idle one,
// else a new one. When the server refuses a new connection as one too many
// (provlimit.TooManyConnections: Gmail's "NO [ALERT] Too many simultaneous
// connections. (Failure)") while others are open, no more are dialled and
// the job waits for one of those: the backup goes on with fewer. Only when
// none is open does the refusal fail the job.
type connPool struct {
	dial  func(context.Context) (*imapclient.Client, error)
	onCap func(err error, live int) // called once, when the server first refuses

	mu     sync.Mutex
	cond   *sync.Cond
	idle   []*imapclient.Client
	live   int  // connections open, idle or in use
	capped bool // the server refused one: dial only when none is open
}

func newConnPool(ctx context.Context, first *imapclient.Client, dial func(context.Context) (*imapclient.Client, error), onCap func(error, int)) *connPool {
	p := &connPool{dial: dial, onCap: onCap, idle: []*imapclient.Client{first}, live: 1}
	p.cond = sync.NewCond(&p.mu)
	context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	return p
}

// get returns an idle connection, or a new one.
func (p *connPool) get(ctx context.Context) (*imapclient.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			if c.State() != imap.ConnStateLogout && !isClosed(c) {
				return c, nil
			}
			p.live--
			continue
		}
		if !p.capped || p.live == 0 {
			p.live++
			p.mu.Unlock()
			c, err := p.dial(ctx)
			p.mu.Lock()
			if err == nil {
				return c, nil
			}
			p.live--
			p.cond.Broadcast()
			if provlimit.KindOf(err) == provlimit.TooManyConnections && p.live > 0 {
				if !p.capped && p.onCap != nil {
					p.onCap(err, p.live)
				}
				p.capped = true
				continue
			}
			return nil, err
		}
		p.cond.Wait()
	}
}

// put gives a usable connection back.
func (p *connPool) put(c *imapclient.Client) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.cond.Signal()
	p.mu.Unlock()
}

// drop closes a connection a folder broke.
func (p *connPool) drop(c *imapclient.Client) {
	c.Close()
	p.mu.Lock()
	p.live--
	p.cond.Broadcast()
	p.mu.Unlock()
}

// drain returns the idle connections, for the caller to log out.
func (p *connPool) drain() []*imapclient.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.idle
	p.idle = nil
	return out
}
