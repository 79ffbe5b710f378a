package imapsrc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// Provider limits on backup (package provlimit). When the server says the
// account's daily allowance is used up (Gmail's "NO [OVERQUOTA] Account
// exceeded command or bandwidth limits." to a body FETCH, or its "* BYE
// Session expired, please login again." that ends the session), the folder
// being fetched keeps what was stored (its writer is closed and committed
// as after any folder error; its status is not recorded, so the next run
// looks at it again), no further folder is started, and the run ends with
// Stats.Stopped set and one failure naming the answer and what is left
// (outcome partial). The next run continues where this one stopped:
// stored messages are in the catalog and are not fetched again.
type limits struct {
	mu         sync.Mutex
	stopped    error        // *provlimit.Error, or ErrBudget wrapped
	at         *folderJob   // the folder the limit was hit in
	notStarted []*folderJob // folders not started

	usedBytes, usedMsgs int64    // reserved from the budget
	cutBytes, cutMsgs   int64    // messages the budget left for a later run
	cut                 []string // folders the budget cut short

	tries map[*folderJob]int // reruns after throttling answers (retry.go)
	storm provlimit.Storm    // BYEs in a row (retry.go)
}

// left reports whether the run is stopped, remembering j as not started.
func (l *limits) left(j *folderJob) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped == nil {
		return false
	}
	l.notStarted = append(l.notStarted, j)
	return true
}

// stopAt stops the run when err is a daily-limit answer, hit in folder j;
// it reports whether it did (the caller then records nothing more).
func (b *backup) stopAt(j *folderJob, c *imapclient.Client, err error) bool {
	e := provlimit.FromError(err)
	if text, ok := imapconn.Bye(c); e == nil && ok {
		e = provlimit.Classify("BYE", "", text)
	}
	if e == nil && errors.Is(err, imapconn.ErrTooSlow) {
		// Gmail past its daily limit may crawl below 1 KB/s instead of
		// answering OVERQUOTA: the same stop.
		e = &provlimit.Error{Kind: provlimit.DailyLimit, Text: err.Error()}
	}
	if e == nil || e.Kind != provlimit.DailyLimit {
		return false
	}
	b.lim.mu.Lock()
	first := b.lim.stopped == nil
	if first {
		b.lim.stopped, b.lim.at = fmt.Errorf("%w", e), j
	} else {
		b.lim.notStarted = append(b.lim.notStarted, j)
	}
	b.lim.mu.Unlock()
	if first {
		b.log.Warn("the provider's daily limit is reached: stopping the backup; what was stored is kept and the next run continues", "account", b.acct, "folder", j.cat.Name, "answer", e.Error())
	}
	return true
}

// remaining, after the workers ended, counts what the stopped run left
// and records the stop as the run's one failure.
func (b *backup) remaining(all []*folderJob) {
	l := &b.lim
	if l.stopped == nil {
		return
	}
	for _, j := range all {
		if slices.Contains(l.cut, j.cat.Name) && j != l.at {
			if l.at == nil {
				l.at = j
			} else {
				l.notStarted = append(l.notStarted, j)
			}
		}
	}
	if l.at == nil { // cannot be: the budget stops only in a folder
		return
	}
	jobs := append([]*folderJob{l.at}, l.notStarted...)
	var msgs int64
	folders := 1 // the one the limit was hit in is looked at again
	for i, j := range jobs {
		total, expunged, _, err := b.a.Cat.Counts(b.ctx, j.cat.ID)
		if err != nil {
			continue
		}
		n := max(int64(msgCount(j.status))-int64(total-expunged), 0)
		if i > 0 && n > 0 {
			folders++
		}
		msgs += n
	}
	// Bytes: those of the messages the budget cut are known; the others'
	// are estimated at this run's average size.
	bytes := l.cutBytes
	if rest := msgs - l.cutMsgs; rest > 0 && b.stats.Fetched > 0 {
		bytes += rest * (b.stats.Bytes / int64(b.stats.Fetched))
	}
	r := b.opt.Budget.Estimate(bytes, msgs)
	if msgs == 0 {
		r.Runs = 1 // the interrupted folder is looked at again
	}
	stop := fmt.Errorf("stopped: %w; %d folders not finished, about %d new messages left: the next run continues", l.stopped, folders, msgs)
	b.stats.Stopped, b.stats.Remaining = stop, r
	b.stats.Failures = append(b.stats.Failures, &archive.MessageError{Ref: archive.Ref{Account: b.acct, Folder: l.at.cat.Name}, Err: stop})
}

// storeBudgeted is storeNew within Options.Budget: it fetches the fresh
// messages (lowest UIDs first) the run's budget still allows; when it
// leaves some out, the run stops like at a daily limit (ErrBudget) and the
// folder is reported failed, so that its status is not recorded and the
// next run fetches the rest.
func (b *backup) storeBudgeted(c *imapclient.Client, w *archive.FolderWriter, uidValidity uint32, fresh []srvMsg) (bool, error) {
	if b.opt.Budget.Unlimited() || len(fresh) == 0 {
		return b.storeNew(c, w, uidValidity, fresh)
	}
	slices.SortFunc(fresh, func(x, y srvMsg) int { return cmp.Compare(x.uid, y.uid) })
	l := &b.lim
	l.mu.Lock()
	n := 0
	for n < len(fresh) && l.stopped == nil && b.opt.Budget.Allows(l.usedBytes, l.usedMsgs, fresh[n].size) {
		l.usedBytes += fresh[n].size
		l.usedMsgs++
		n++
	}
	cut := n < len(fresh)
	if cut {
		for _, s := range fresh[n:] {
			l.cutBytes += s.size
			l.cutMsgs++
		}
		folder := w.Folder().Name
		if l.stopped == nil {
			l.stopped = fmt.Errorf("%w (max_bytes_per_run %d, max_messages_per_run %d)", provlimit.ErrBudget, b.opt.Budget.MaxBytes, b.opt.Budget.MaxMessages)
			b.log.Warn("the run's budget is spent: stopping the backup; the next run continues", "account", b.acct, "folder", folder, "messages", l.usedMsgs, "bytes", l.usedBytes)
		}
		l.cut = append(l.cut, folder)
	}
	l.mu.Unlock()
	failed, err := b.storeNew(c, w, uidValidity, fresh[:n])
	return failed || cut, err
}
