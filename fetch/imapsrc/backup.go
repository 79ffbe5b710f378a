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
	"golang.org/x/sync/errgroup"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// Server is the IMAP account a fetcher connects to. internal/imapconn's
// Config implements it; cmd/mailkeep passes one.
type Server interface {
	// String names the account (user@host:port) in errors and logs.
	String() string
	// Dial connects and logs in, with the I/O timeout and line bound of
	// every mailkeep connection.
	Dial(ctx context.Context) (*imapclient.Client, error)
	// ListMailboxes runs LIST "" "*" on a connection of its own, read
	// without go-imap: the usable mailboxes, and one error per mailbox
	// whose name cannot be used (see listRaw).
	ListMailboxes(ctx context.Context) ([]*imap.ListData, []error, error)
}

// Options configure a backup.
type Options struct {
	Account          Server
	Folders, Exclude []string // glob patterns, see package glob
	Connections      int      // parallel connections, default 4
	Logger           *slog.Logger
	// Progress, when set, is called after every stored message.
	Progress func(folder string, n int, bytes int64)
	// Planned, when set, is called once before the first fetch with the
	// messages (and bytes, 0: unknown) the run plans to fetch: a progress
	// line's totals (planned.go).
	Planned func(messages int, bytes int64)
	// Budget bounds what one run downloads (max_bytes_per_run,
	// max_messages_per_run; limits.go).
	Budget provlimit.Budget
	// Sleeper waits before a folder refused by a throttling answer is run
	// again (nil: the wall clock); Backoff is the policy (retry.go).
	Sleeper provlimit.Sleeper
	Backoff provlimit.Backoff
	// Gmail turns Gmail mode on for a server that offers X-GM-EXT-1: All
	// Mail, Spam and Trash are backed up with each message's labels, the
	// other folders become views (gmail.go). cmd/mailkeep sets it unless
	// the config says gmail = false.
	Gmail bool
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

	gm        *gmailState    // Gmail mode (gmail.go); nil otherwise
	finishing sync.WaitGroup // folders whose last commit runs behind (syncFolder)
	// behind bounds those folders to Connections: each holds its
	// writer (read and write buffers, the compressor) until its commit
	// is done, and the commits of a thousand small folders, taken in
	// turn by the catalog, fell behind the connections by hundreds
	// (a full backup of 101,000 folders peaked at 430 MB instead of 150).
	behind chan struct{}
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
	s, err := open(ctx, a, run, opt, (*backup).recordNamespace)
	if err != nil {
		return Stats{}, err
	}
	defer s.close()
	b, c := s.b, s.c
	if err := b.gmailSetup(c, s.jobs); err != nil {
		return b.stats, err
	}
	jobs, err := b.plan(s.jobs, s.sel)
	if err != nil {
		return b.stats, err
	}
	b.announce(jobs)
	slices.SortFunc(jobs, func(x, y *folderJob) int {
		return cmp.Compare(msgCount(y.status), msgCount(x.status))
	})

	// Folders are synchronised Connections at a time. Each takes an idle
	// connection (the listing one first) or dials one, and gives it back
	// unless the folder broke it: at most Connections connections exist,
	// fewer when the server refuses one as too many (pool.go).
	workers := max(1, min(b.opt.Connections, len(jobs)))
	p := newConnPool(ctx, c, b.opt.Account.Dial, func(err error, live int) {
		b.log.Warn("the server refuses more connections; going on with fewer", "account", b.acct, "connections", live, "err", err)
	})
	var g errgroup.Group
	g.SetLimit(workers)
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			b.syncJob(p, j)
			return nil
		})
	}
	g.Wait()
	b.finishing.Wait()
	for _, ic := range p.drain() {
		if ic != c {
			_ = ic.Logout().Wait()
			ic.Close()
		}
	}
	b.remaining(jobs)
	if ctx.Err() != nil {
		return b.stats, ctx.Err()
	}
	if c.State() != imap.ConnStateLogout {
		_ = c.Logout().Wait()
	}
	return b.stats, nil
}

// session is the preamble Backup, Check and Compare share: the options
// defaulted, a logged-in connection (closed when ctx ends), its CONDSTORE
// noted, and the selected folders listed with their STATUS.
type session struct {
	b    *backup
	c    *imapclient.Client
	jobs []*folderJob // selected, selectable folders; STATUS failures are in b.stats.Failures
	sel  *glob.Set
	stop func() bool
}

// open runs the preamble. a is nil for Check and Compare; before, when
// set, runs on the fresh connection before the LIST. The caller calls
// close.
func open(ctx context.Context, a *archive.Archive, run int64, opt Options, before func(*backup, *imapclient.Client)) (*session, error) {
	if opt.Connections <= 0 {
		opt.Connections = 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	b := &backup{ctx: ctx, a: a, run: run, opt: opt, log: opt.Logger, acct: opt.Account.String(), behind: make(chan struct{}, opt.Connections)}
	c, err := b.dialFirst() // retry.go
	if err != nil {
		return nil, err
	}
	b.condstore = c.Caps().Has(imap.CapCondStore)
	if before != nil {
		before(b, c)
	}
	jobs, sel, err := b.list(&c) // may replace c (see list)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &session{b: b, c: c, jobs: jobs, sel: sel, stop: imapconn.Watch(ctx, c)}, nil
}

// close drops the connection (after a Logout, if one was sent).
func (s *session) close() {
	s.stop()
	s.c.Close()
}

func msgCount(s *imap.StatusData) uint32 {
	if s == nil || s.NumMessages == nil {
		return 0
	}
	return *s.NumMessages
}

func (b *backup) fail(folder string, uid uint32, err error) {
	fe := &archive.MessageError{Ref: archive.Ref{Account: b.acct, Folder: folder, UID: uid}, Err: err}
	b.log.Error("backup failure", "account", b.acct, "folder", folder, "uid", uid, "err", err)
	b.mu.Lock()
	b.stats.Failures = append(b.stats.Failures, fe)
	b.mu.Unlock()
}

// planChunk is how many listed folders plan takes at a time: their
// catalog entries are added or looked up, and the ones needing no work
// recorded and let go, before the next ones (a first backup of 100,000
// folders held an entry, a new-folder record and a status of every one
// at once).
var planChunk = 1000

// plan decides which of the listed folders need work, and marks the
// catalogued folders gone from the server. It takes jobs over: the
// entries of folders needing no work are cleared as it goes, so that
// their listing is freed.
func (b *backup) plan(jobs []*folderJob, sel *glob.Set) ([]*folderJob, error) {
	b.stats.Folders = len(jobs)

	// Folders that disappeared from the server: their messages are kept
	// and marked expunged.
	known, err := b.a.Cat.Folders(b.ctx)
	if err != nil {
		return nil, err
	}
	if err := b.markGone(jobs, known, sel); err != nil {
		return nil, err
	}
	byName := folderIndex(known)
	known = nil

	// A known folder that is unchanged (the common case) is taken from
	// the list just read; the others are added or updated, a chunk at a
	// time.
	var out []*folderJob
	for len(jobs) > 0 {
		chunk := jobs[:min(planChunk, len(jobs))]
		jobs = jobs[len(chunk):]
		cats, err := b.ensureFolders(chunk, byName)
		if err != nil {
			return nil, err
		}
		var empty []catalog.FolderStatus
		for i, j := range chunk {
			f := cats[i]
			j.cat = f
			chunk[i] = nil
			if b.skipView(f) || (unchanged(f, j.status, b.condstore) && !b.gm.forced(f)) {
				b.stats.Unchanged++
				continue
			}
			if st, ok, err := b.emptyStatus(f, j.status); err != nil {
				return nil, err
			} else if ok {
				empty = append(empty, st)
				continue
			}
			out = append(out, j)
		}
		// Empty folders with nothing catalogued need no EXAMINE: their
		// status is recorded in one transaction.
		if err := b.a.Cat.SetFolderStatuses(b.ctx, empty); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// markGone marks the catalogued folders that the options select and the
// server no longer lists as gone (their messages expunged, kept).
func (b *backup) markGone(jobs []*folderJob, known []*catalog.Folder, sel *glob.Set) error {
	if len(known) == 0 {
		return nil
	}
	// The listed names, sorted: a fraction of a map's memory for 100,000
	// folders, and known comes sorted.
	listed := make([]string, len(jobs))
	for i, j := range jobs {
		listed[i] = normInbox(j.list.Mailbox, j.list.Delim)
	}
	slices.Sort(listed)
	for _, f := range known {
		if _, ok := slices.BinarySearch(listed, f.Name); ok || f.GoneRun != 0 || f.IsFrozen() || !sel.Match(folderPath(f)) {
			continue
		}
		n, err := b.a.Cat.MarkFolderGone(b.ctx, f.ID, b.run)
		if err != nil {
			return err
		}
		b.log.Info("folder gone from server; archived mail kept", "account", b.acct, "folder", f.Name, "messages", n)
		b.stats.Expunged += n
	}
	return nil
}

// folderIndex maps the names of known to their entries.
func folderIndex(known []*catalog.Folder) map[string]*catalog.Folder {
	byName := make(map[string]*catalog.Folder, len(known))
	for _, f := range known {
		byName[f.Name] = f
	}
	return byName
}

// ensureFolders returns the catalog entries of the listed folders: a
// known unchanged one from byName (the catalog's list read by this run),
// the others added or updated (catalog.EnsureFolders).
func (b *backup) ensureFolders(jobs []*folderJob, byName map[string]*catalog.Folder) ([]*catalog.Folder, error) {
	out := make([]*catalog.Folder, len(jobs))
	var nf []catalog.NewFolder
	var at []int
	for i, j := range jobs {
		name := normInbox(j.list.Mailbox, j.list.Delim)
		su := specialUse(j.list.Attrs)
		if f := byName[name]; f != nil && (f.Unchanged(j.list.Delim, su) || f.IsView()) { // views: gmail.go
			out[i] = f
			continue
		}
		nf = append(nf, catalog.NewFolder{Name: name, Delim: j.list.Delim, SpecialUse: su, Path: b.a.FolderPath(name, j.list.Delim)})
		at = append(at, i)
	}
	if len(nf) == 0 {
		return out, nil
	}
	added, err := b.a.Cat.EnsureFolders(b.ctx, nf)
	if err != nil {
		return nil, err
	}
	for k, i := range at {
		out[i] = added[k]
	}
	return out, nil
}

// emptyStatus reports whether STATUS shows an empty folder of which the
// catalog holds no live message (under any UIDVALIDITY): then there is
// nothing to fetch, compare or mark, and only its status is recorded.
func (b *backup) emptyStatus(f *catalog.Folder, st *imap.StatusData) (catalog.FolderStatus, bool, error) {
	if st == nil || st.NumMessages == nil || *st.NumMessages != 0 || st.UIDValidity == 0 {
		return catalog.FolderStatus{}, false, nil
	}
	if s, err := b.a.Cat.SyncState(b.ctx, f.ID, st.UIDValidity); err != nil || s.Live != 0 || s.Stale {
		return catalog.FolderStatus{}, false, err
	}
	return catalog.FolderStatus{ID: f.ID, UIDValidity: st.UIDValidity, UIDNext: uint32(st.UIDNext), HighestModSeq: st.HighestModSeq}, true, nil
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
		if c, err = b.opt.Account.Dial(b.ctx); err != nil {
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
	out, bad, err := b.opt.Account.ListMailboxes(b.ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: LIST: %w (read again without go-imap: %v)", b.acct, cause, err)
	}
	for _, e := range bad {
		name := ""
		var ne *imapconn.MailboxNameError
		if errors.As(e, &ne) {
			name, e = strconv.Quote(ne.Sent), ne.Err
		}
		b.fail(name, 0, fmt.Errorf("folder not backed up: %w", e))
	}
	if len(bad) == 0 {
		return nil, fmt.Errorf("%s: LIST: %w", b.acct, cause)
	}
	b.log.Warn("LIST: unusable folder names; the other folders are backed up", "account", b.acct, "folders", len(bad))
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

// syncJob synchronises one folder on a connection of the pool (pool.go)
// and gives it back unless the folder broke it.
func (b *backup) syncJob(p *connPool, j *folderJob) {
	if b.ctx.Err() != nil || b.lim.left(j) {
		return
	}
	c, err := p.get(b.ctx)
	if err != nil {
		if b.ctx.Err() == nil {
			if again, err := b.again(p, j, nil, err); again { // retry.go
				b.syncJob(p, j)
			} else {
				b.fail(j.cat.Name, 0, err)
			}
		}
		return
	}
	stop := imapconn.Watch(b.ctx, c)
	err = b.syncFolder(c, j)
	stop()
	if err != nil {
		err := imapconn.Explain(c, err)
		again := false
		if b.ctx.Err() == nil && !b.stopAt(j, c, err) {
			if again, err = b.again(p, j, c, err); !again { // retry.go
				b.fail(j.cat.Name, 0, err)
			}
		}
		p.drop(c)
		if again {
			b.syncJob(p, j)
		}
		return
	}
	p.put(c)
}

func isClosed(c *imapclient.Client) bool {
	select {
	case <-c.Closed():
		return true
	default:
		return false
	}
}
