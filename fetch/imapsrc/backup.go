// Package imapsrc backs up an IMAP account into an archive, incrementally.
//
// Per run: one LIST (with LIST-STATUS where offered, otherwise pipelined
// STATUS commands) tells which folders changed since the last run; an
// unchanged folder costs nothing more. Changed folders are synchronised on
// several connections at once (largest first): EXAMINE, one UID FETCH of the
// metadata (with CHANGEDSINCE where the server has CONDSTORE), then the new
// messages' bodies in pipelined UID FETCH commands, streamed from the socket
// through the checksum and the compressor to disk.
package imapsrc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/provlimit"
)

// Options configure a backup.
type Options struct {
	Account          imapconn.Config
	Folders, Exclude []string // glob patterns, see package glob
	Connections      int      // parallel connections, default 4
	Logger           *slog.Logger
	// Progress, when set, is called after every stored message.
	Progress func(folder string, n int, bytes int64)
	// Budget bounds what one run downloads (max_bytes_per_run,
	// max_messages_per_run; limits.go).
	Budget provlimit.Budget
}

// Stats is what a backup did.
type Stats = fetch.Stats

type backup struct {
	ctx  context.Context
	a    *archive.Archive
	run  int64
	opt  Options
	log  *slog.Logger
	acct string

	condstore bool

	mu    sync.Mutex
	stats Stats
	lim   limits // limits.go
}

// folderJob is a folder that needs synchronising.
type folderJob struct {
	list   *imap.ListData
	status *imap.StatusData
	cat    *catalog.Folder
}

// Backup runs one incremental backup of the account into a. It returns an
// error when nothing could be done (connection, login, LIST); failures of
// single folders or messages are collected in Stats.Failures.
func Backup(ctx context.Context, a *archive.Archive, run int64, opt Options) (Stats, error) {
	if opt.Connections <= 0 {
		opt.Connections = 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	b := &backup{ctx: ctx, a: a, run: run, opt: opt, log: opt.Logger, acct: opt.Account.String()}
	c, err := imapconn.Dial(ctx, opt.Account)
	if err != nil {
		return b.stats, err
	}
	defer func() { c.Close() }() // c may be replaced by list
	b.condstore = c.Caps().Has(imap.CapCondStore)
	b.recordNamespace(c)

	jobs, err := b.plan(&c)
	if err != nil {
		return b.stats, err
	}
	stop := imapconn.Watch(ctx, c)
	defer stop()
	slices.SortFunc(jobs, func(x, y *folderJob) int {
		return cmp.Compare(msgCount(y.status), msgCount(x.status))
	})

	queue := make(chan *folderJob)
	var wg sync.WaitGroup
	workers := min(opt.Connections, len(jobs))
	for i := 0; i < workers; i++ {
		wg.Add(1)
		var first *imapclient.Client
		if i == 0 {
			first = c
		}
		go func() {
			defer wg.Done()
			b.worker(first, queue)
		}()
	}
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(queue)
	wg.Wait()
	b.orphans()
	b.remaining(jobs)
	if ctx.Err() != nil {
		return b.stats, ctx.Err()
	}
	if c.State() != imap.ConnStateLogout {
		_ = c.Logout().Wait()
	}
	return b.stats, nil
}

func msgCount(s *imap.StatusData) uint32 {
	if s == nil || s.NumMessages == nil {
		return 0
	}
	return *s.NumMessages
}

func (b *backup) fail(folder string, uid uint32, err error) {
	fe := &fetch.MessageError{Account: b.acct, Folder: folder, UID: uid, Err: err}
	b.log.Error("backup failure", "account", b.acct, "folder", folder, "uid", uid, "err", err)
	b.mu.Lock()
	b.stats.Failures = append(b.stats.Failures, fe)
	b.mu.Unlock()
}

// plan lists the folders and decides which need work.
func (b *backup) plan(c **imapclient.Client) ([]*folderJob, error) {
	jobs, sel, err := b.list(c)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		seen[normInbox(j.list.Mailbox, j.list.Delim)] = true
	}
	b.stats.Folders = len(jobs)

	// Folders that disappeared from the server: their messages are kept
	// and marked expunged.
	known, err := b.a.Cat.Folders()
	if err != nil {
		return nil, err
	}
	for _, f := range known {
		if seen[f.Name] || f.GoneRun != 0 || !sel.Match(folderPath(f)) {
			continue
		}
		n, err := b.a.Cat.MarkFolderGone(f.ID, b.run)
		if err != nil {
			return nil, err
		}
		b.log.Info("folder gone from server; archived mail kept", "account", b.acct, "folder", f.Name, "messages", n)
		b.stats.Expunged += n
	}

	var out []*folderJob
	for _, j := range jobs {
		name := normInbox(j.list.Mailbox, j.list.Delim)
		f, err := b.a.Folder(name, j.list.Delim, specialUse(j.list.Attrs))
		if err != nil {
			return nil, err
		}
		j.cat = f
		if unchanged(f, j.status, b.condstore) {
			b.stats.Unchanged++
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// list lists the selectable folders the options select, with their
// STATUS (from LIST-STATUS, or one pipelined STATUS per folder). A folder
// whose STATUS fails is recorded as a failure and left out.
//
// go-imap ends the connection on a LIST entry whose name it cannot decode
// (a NUL, invalid modified UTF-7). Then the LIST is read again without
// go-imap (imapconn.ListRaw): such a folder is a failure named as the
// server sent it, the others are backed up, on a new connection that
// replaces *cp.
func (b *backup) list(cp **imapclient.Client) ([]*folderJob, *glob.Set, error) {
	c := *cp
	stop := imapconn.Watch(b.ctx, c)
	defer func() { stop() }()
	caps := c.Caps()
	stOpt := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: b.condstore}
	lOpt := &imap.ListOptions{ReturnSpecialUse: caps.Has(imap.CapSpecialUse)}
	listStatus := caps.Has(imap.CapListStatus) || caps.Has(imap.CapIMAP4rev2)
	if listStatus {
		lOpt.ReturnStatus = stOpt
	}
	list, err := c.List("", "*", lOpt).Collect()
	if err != nil {
		err = imapconn.Explain(c, err)
		var ge *imapconn.GuardError
		if b.ctx.Err() != nil || errors.As(err, &ge) {
			return nil, nil, fmt.Errorf("%s: LIST: %w", b.acct, err)
		}
		list, err = b.listRaw(err)
		if err != nil {
			return nil, nil, err
		}
		stop()
		c.Close()
		if c, err = imapconn.Dial(b.ctx, b.opt.Account); err != nil {
			return nil, nil, err
		}
		*cp = c
		stop = imapconn.Watch(b.ctx, c)
		listStatus = false
	}
	sel := glob.New(b.opt.Folders, b.opt.Exclude)
	var jobs []*folderJob
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name := normInbox(l.Mailbox, l.Delim)
		if !sel.Match(layout.Join(layout.Components(name, l.Delim), '/')) {
			continue
		}
		jobs = append(jobs, &folderJob{list: l, status: l.Status})
	}
	if !listStatus { // pipeline one STATUS per folder
		cmds := make([]*imapclient.StatusCommand, len(jobs))
		for i, j := range jobs {
			cmds[i] = c.Status(j.list.Mailbox, stOpt)
		}
		for i, cmd := range cmds {
			st, err := cmd.Wait()
			if err != nil {
				b.fail(jobs[i].list.Mailbox, 0, fmt.Errorf("STATUS: %w", imapconn.Explain(c, err)))
				jobs[i] = nil
				continue
			}
			jobs[i].status = st
		}
		jobs = slices.DeleteFunc(jobs, func(j *folderJob) bool { return j == nil })
	}
	return jobs, sel, nil
}

// listRaw is the LIST fallback: entries with unusable names become
// failures (named as sent, quoted), the rest are returned.
func (b *backup) listRaw(cause error) ([]*imap.ListData, error) {
	entries, err := imapconn.ListRaw(b.ctx, b.opt.Account)
	if err != nil {
		return nil, fmt.Errorf("%s: LIST: %w (read again without go-imap: %v)", b.acct, cause, err)
	}
	var out []*imap.ListData
	bad := 0
	for _, e := range entries {
		if e.Err != nil {
			bad++
			b.fail(strconv.Quote(e.Sent), 0, fmt.Errorf("folder not backed up: %w", e.Err))
			continue
		}
		attrs := make([]imap.MailboxAttr, len(e.Attrs))
		for i, a := range e.Attrs {
			attrs[i] = imap.MailboxAttr(a)
		}
		out = append(out, &imap.ListData{Attrs: attrs, Delim: e.Delim, Mailbox: e.Mailbox})
	}
	if bad == 0 {
		return nil, fmt.Errorf("%s: LIST: %w", b.acct, cause)
	}
	b.log.Warn("LIST: unusable folder names; the other folders are backed up", "account", b.acct, "folders", bad)
	return out, nil
}

// folderPath is a catalogued folder's name as globs see it.
func folderPath(f *catalog.Folder) string {
	return layout.Join(layout.Components(f.Name, f.Delim), '/')
}

// unchanged reports whether STATUS shows nothing new since the last run.
// Without CONDSTORE flag changes are invisible to STATUS, so such folders
// are always examined.
func unchanged(f *catalog.Folder, st *imap.StatusData, condstore bool) bool {
	if st == nil || st.NumMessages == nil || f.UIDValidity == 0 || !condstore {
		return false
	}
	return st.UIDValidity == f.UIDValidity && uint32(st.UIDNext) == f.UIDNext &&
		*st.NumMessages == f.Messages && st.HighestModSeq == f.HighestModSeq && st.HighestModSeq != 0
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func specialUse(attrs []imap.MailboxAttr) string {
	for _, a := range attrs {
		switch imap.MailboxAttr(strings.ToLower(string(a))) {
		case "\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged", "\\important":
			return string(a)
		}
	}
	return ""
}

// normInbox spells INBOX (case-insensitive in IMAP) one way.
func normInbox(name string, delim rune) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || (delim != 0 && strings.HasPrefix(name[5:], string(delim)))) {
		return "INBOX" + name[5:]
	}
	return name
}

// worker synchronises folders from the queue on its own connection,
// reconnecting after a folder broke the connection.
func (b *backup) worker(first *imapclient.Client, queue <-chan *folderJob) {
	c := first
	defer func() {
		if c != nil && c != first {
			_ = c.Logout().Wait()
			c.Close()
		}
	}()
	for j := range b.jobs(queue) {
		if b.ctx.Err() != nil || b.lim.left(j) {
			continue
		}
		if c == nil || c.State() == imap.ConnStateLogout || isClosed(c) {
			var err error
			c, err = imapconn.Dial(b.ctx, b.opt.Account)
			if err != nil {
				if b.handBack(j, err) {
					return // one connection fewer
				}
				b.fail(j.cat.Name, 0, err)
				c = nil
				continue
			}
		}
		stop := imapconn.Watch(b.ctx, c)
		err := b.syncFolder(c, j)
		stop()
		if err != nil {
			if b.ctx.Err() == nil && !b.stopAt(j, c, imapconn.Explain(c, err)) {
				b.fail(j.cat.Name, 0, imapconn.Explain(c, err))
			}
			c.Close()
			c = nil
		}
	}
}

func isClosed(c *imapclient.Client) bool {
	select {
	case <-c.Closed():
		return true
	default:
		return false
	}
}
