// Package restore pushes archived mail back to an IMAP server: every
// folder, exact bytes, flags, keywords and INTERNALDATE, resumably and
// idempotently. It reads through the small Source and Progress interfaces,
// so it serves mailkeep archives (package archivesrc) and foreign mbox or
// Maildir files (package foreignsrc) alike.
//
// # Exact bytes
//
// Every message is read once and checked against its size and SHA-256
// before its APPEND starts, so a damaged message is reported (Stats.Damaged)
// without a byte of it reaching the server, and the rest go on. Messages up
// to 1 MB are kept in memory from that first read; larger ones are read a
// second time while they are sent (a local archive reads fast; memory stays
// bounded). The second read is checked too: its last byte is held back until
// the checksum is confirmed, and on a mismatch the connection is dropped
// with the literal one byte short, so the server cannot store the damaged
// copy. The engine then reconnects and continues with the next message.
//
// # Resuming: the destination is the truth
//
// A message is recorded with Progress.MarkRestored right after the server's
// OK, with the APPENDUID (UIDVALIDITY and UID) where the server has UIDPLUS.
// That record is a hint, never a reason to skip on its own: when the
// Progress is a Lister, each folder's records are first checked on the
// destination with one STATUS, one SELECT and one UID SEARCH UID <recorded set>. A
// recorded message is skipped only if the folder's UIDVALIDITY is the
// recorded one and its UID still exists; otherwise (folder deleted or
// re-created, account wiped, message expunged) it is restored again and
// counted in Stats.Missing. Records without a UID (no UIDPLUS), and every
// record of a Progress that is not a Lister, go through the already-present
// rule below. A rerun onto an intact destination costs a STATUS, a SELECT
// and a UID SEARCH per folder and fetches nothing. A progress record that cannot be
// written (catalog.ErrReadOnly: an archive on read-only media) is given up
// with one warning (Stats.ProgressNotRecorded); the destination check
// tells a rerun what is there.
//
// A message that the destination check did not confirm but the destination
// folder already holds is skipped and recorded ("already present"): same
// Message-ID, RFC822.SIZE and INTERNALDATE (to the second); for a message
// without Message-ID, same size and date and the same SHA-256 of the
// destination's copy, which is fetched to compare. This also catches a
// crash between the server's OK and the record, and APPENDs still in flight
// when an earlier run was killed. Two different messages that share a
// Message-ID (different size or date) are both restored; several identical
// copies in the source are matched one for one (a copy confirmed by the
// record is never matched to another). Sizes and checksums are
// also compared with bare LFs made CRLF, as Dovecot stores and serves such
// messages (foreign mbox files have LF line ends). The flags of a message
// found already present are left as the server has them.
//
// A destination folder is indexed (one UID FETCH 1:* of UID, RFC822.SIZE,
// INTERNALDATE and the Message-ID header) only when its first message to
// restore comes up, so a rerun over folders restored in full fetches
// nothing from them. A folder that holds mail is first watched
// until its message count stays put for 150 ms: APPENDs that a killed run
// left in flight may still be being stored.
//
// A destination folder larger than the server shows (Yahoo's limited
// view: SELECT, FETCH 1:* and SEARCH see only its newest 10,000
// messages) is noticed by its STATUS MESSAGES, asked before the SELECT:
// the index and the check of recorded UIDs then reach the hidden
// messages by explicit UID ranges (hidden.go, internal/uidpage).
//
// # Folders and flags
//
// Source names are split at their delimiter, stripped of the source's
// personal namespace prefix (Namespacer: INBOX.Sent from Cyrus is Sent),
// and joined with the destination's delimiter under its personal namespace
// prefix (NAMESPACE, else LIST "" ""); INBOX stays INBOX. A name component holding the
// destination's delimiter fails that folder (ErrUnrepresentable). Folders
// with a special-use attribute, or top-level folders with a well-known name
// ("Sent Items", "Deleted Items", "Spam", ...), go to the destination's
// folder with that attribute unless Options.NoSpecialUse or Options.Prefix.
// Each APPEND carries the message's INTERNALDATE and flags, less \Recent;
// keywords only where the folder's PERMANENTFLAGS list them or \*, others
// (and flags that are not valid IMAP atoms) are dropped, counted in
// Stats.KeywordsDropped and logged once per folder. go-imap cannot tell an
// absent PERMANENTFLAGS from an empty one: both drop every keyword.
//
// No APPEND goes into the folder its connection has selected (UW IMAP
// drops keywords then): APPENDs use the raw connection or a second go-imap
// one that selects nothing. After a folder's APPENDs, what the destination
// stored is checked by APPENDUID, one UID FETCH (FLAGS RFC822.SIZE) per
// folder; missing flags and keywords are set with UID STORE (one per
// distinct set) and what still is not kept is reported, as are sizes that
// differ from the source (Stats.Reports, one FolderReport per folder).
//
// # Speed
//
// Folders run in parallel, one per connection (Options.Connections).
// go-imap v2 waits for the server's continuation request before every
// literal over 4 KB (and for every literal without LITERAL-), which costs
// one round trip per message. When Options.DialRaw is set and the server
// offers LITERAL+, APPENDs go instead over a second, raw connection and are
// pipelined: up to 32 await their OK at once.
//
// Where that server also offers MULTIAPPEND (RFC 3502; Dovecot, Cyrus and
// UW IMAP do), a folder's messages go in batches of up to 1,000 messages
// or 32 MiB, each one APPEND command streamed with LITERAL+ literals, one
// batch awaiting its OK while the next is sent. The server stores a batch
// in one transaction: on Dovecot's Maildir every transaction re-reads and
// rewrites the folder's whole dovecot-uidlist, so one APPEND per message
// made a big folder's restore quadratic (8,000 small messages into one
// folder: 36 s one by one, 3.6 s in batches; see multiappend.go). The
// batch's APPENDUID range gives each message its UID, recorded as after a
// single APPEND. A NO rejects the whole batch (RFC 3502); its messages are
// then sent again one by one, so that the server names the one it refuses
// and stores the others. Messages over 1 MB go alone between batches.
// A batch that a killed run left in flight appears on the server only
// when committed, all at once: a folder's first message goes alone and is
// recorded before any batch, and on a rerun a folder with records is
// watched for 2 s (not 150 ms) of unchanged message count before its
// contents are indexed, empty or not.
// Options.NoMultiAppend keeps to one APPEND per message.
package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sync/errgroup"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/provlimit"
)

// Message is one message to restore.
type Message struct {
	Key          string   // unique and stable within the source; progress is recorded under it
	Flags        []string // IMAP flags and keywords as stored
	InternalDate time.Time
	Size         int64
	SHA256       string // hex of the exact bytes; checked before APPEND (empty: not checked)
	MessageID    string // with or without angle brackets; may be empty
	// Labels are the message's Gmail labels as X-GM-LABELS named them
	// (`\Inbox`, "Work/2014"); nil for mail not from Gmail. See labels.go.
	Labels []string
	// Open returns the message's bytes. It may be called twice (large
	// messages are read once to check, once to send).
	Open func() (io.ReadCloser, error)
}

// Folder is one source folder.
type Folder struct {
	Name       string
	Delim      rune   // hierarchy delimiter of Name (0: none)
	SpecialUse string // `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive` or ""
	label      string // the Gmail label of a folder made for it (labels.go)
}

// Source is what a restore reads.
type Source interface {
	Folders(ctx context.Context) ([]Folder, error)
	// Messages calls fn for each message of folder, stopping at the first
	// error fn returns.
	Messages(ctx context.Context, folder Folder, fn func(Message) error) error
}

// Namer is a Source that can name a message the way its user finds it:
// for a mailkeep archive its source UID ("UID 4711", as `mailkeep cat
// FOLDER UID` takes it) or, for a POP3 archive, its UIDL. Every error,
// refusal and report line names messages so, with their source folder;
// without a Namer, by Message.Key.
type Namer interface {
	MessageName(ctx context.Context, folder, key string) string
}

// Namespacer is a Source that knows the personal namespace of the server
// its mail came from (its prefix, e.g. "INBOX." on Cyrus and Courier, and
// delimiter). Folder names are then mapped relative to it: the prefix is
// stripped before the destination's own is put in front.
type Namespacer interface {
	SourceNamespace(ctx context.Context) (prefix string, delim rune, err error)
}

// Destination names the server account restored to.
type Destination struct{ Server, User string }

// Restored is where a message went.
type Restored struct {
	Folder           string
	UIDValidity, UID uint32 // from APPENDUID (UIDPLUS) or the already-present copy, else 0
}

// Progress records what was restored where, so a rerun appends nothing twice.
type Progress interface {
	IsRestored(ctx context.Context, dest Destination, key string) (bool, error)
	MarkRestored(ctx context.Context, dest Destination, key string, r Restored) error
}

// AppendConn is the second, raw connection a worker APPENDs on,
// pipelined with LITERAL+ (and MULTIAPPEND batches): internal/imapconn's
// Raw, which cmd/mailkeep's DialRaw returns.
type AppendConn interface {
	// Has reports a capability (upper case) the server announced.
	Has(capability string) bool
	// NextTag is the tag of the next command written to Writer.
	NextTag() string
	// Writer buffers commands; Flush sends them.
	Writer() *bufio.Writer
	SetWriteDeadline(time.Time)
	// ReadTagged reads up to tag's completion: the untagged lines and the
	// OK's text, or an error (*imapconn.StatusError for NO and BAD).
	ReadTagged(tag string) ([]string, string, error)
	// CanMultiAppend, StartAppend, AppendMessage and EndAppend write one
	// MULTIAPPEND command (RFC 3502) of several messages.
	CanMultiAppend() bool
	StartAppend(mailbox string) (string, error)
	AppendMessage(flags []string, date time.Time, size int64, write func(io.Writer) error) error
	EndAppend() error
	Logout()
	Close() error
}

// LabelConn is the raw connection Gmail labels are read and stored over
// (gmail.go): internal/imapconn's Raw, which cmd/mailkeep dials.
type LabelConn interface {
	// Cmd sends one command and reads to its completion: the untagged
	// lines, or an error for NO and BAD.
	Cmd(cmd string) ([]string, error)
	// Reader and Writer are the connection's buffers, for the Gmail
	// extension's own reader (internal/gmailext).
	Reader() *bufio.Reader
	Writer() *bufio.Writer
	Logout()
	Close() error
}

// Event reports one appended message, for a progress display.
type Event struct {
	Folder string // source folder name
	Bytes  int64
}

// Options configure a restore.
type Options struct {
	// Folders and Exclude are globs (package internal/glob) on source
	// folder names written with '/' between levels.
	Folders, Exclude []string
	// Prefix, written with '/', is a parent folder for everything restored,
	// under the destination's personal namespace. Special-use mapping is
	// off when a prefix is given: the restore stays under it. Onto Gmail
	// the user labels go under it too, and All Mail, Spam and Trash
	// (\All, \Junk, \Trash) still go to Gmail's own (gmail.go).
	Prefix       string
	NoSpecialUse bool
	// RenameCollisions restores a source folder that would land in the
	// same destination folder as an earlier one (in the Source's order)
	// under its name with " (2)" (" (3)", ...) added to its last level,
	// instead of refusing the restore (ErrCollision). Reported in
	// Stats.Renamed.
	RenameCollisions bool
	// Verify fetches back every appended message (by APPENDUID, else by
	// Message-ID) and compares it with the source: SHA-256, size, flags
	// and keywords, INTERNALDATE (FolderReport: exact, altered and how,
	// refused).
	Verify bool
	// DryRun reports what would be created and appended (on
	// DryRunOutput) and changes nothing on the server. It
	// still SELECTs existing folders to learn their PERMANENTFLAGS and
	// contents.
	DryRun bool
	// DryRunOutput receives DryRun's reports, one line per folder to
	// create and per message to append (nil: discarded).
	DryRunOutput io.Writer
	Connections  int // default 4
	Logger       *slog.Logger
	Progress     func(Event) // called after each APPEND's OK, from several goroutines
	// Planned, when set, is called once before the first APPEND with what
	// the plan restores beyond the selected source folders' own messages
	// (a progress total counts those): with Labels "folders", the copies
	// into label folders, less the messages All Mail leaves to their
	// labels' folders (plan.go). It is not called when that is nothing.
	Planned func(messages int, bytes int64)
	// DialRaw, when set, opens a second connection per worker for APPEND
	// alone, pipelined with LITERAL+ when the server offers it.
	DialRaw func(context.Context) (AppendConn, error)
	// NoMultiAppend keeps to one APPEND per message on the raw connection
	// even where the server offers MULTIAPPEND (see multiappend.go).
	NoMultiAppend bool
	// Sleeper waits before an APPEND (or a folder) refused by a throttling
	// answer is tried again (nil: the wall clock); Backoff is the policy
	// (limits.go).
	Sleeper provlimit.Sleeper
	Backoff provlimit.Backoff
	// Budget bounds the bytes and messages APPENDed by one run (zero:
	// none); past it the run stops cleanly as at a daily limit
	// (limits.go), and the next run resumes.
	Budget provlimit.Budget
	// Labels is what becomes of Gmail labels on a destination that is not
	// Gmail: LabelsFolders ("" too), LabelsKeywords or LabelsNone
	// (labels.go). Onto Gmail, labels are labels.
	Labels string
	// DialLabels opens the raw connection Gmail labels are stored over
	// (UID STORE +X-GM-LABELS, gmail.go), when the destination is Gmail.
	// Without it, labels onto Gmail are not stored (a warning says so).
	DialLabels func(context.Context) (LabelConn, error)
}

// Stats count what a restore did.
type Stats struct {
	Folders  int // selected source folders
	Created  int // folders created on the server
	Appended int
	Skipped  int // already restored, or already present on the server
	Damaged  int // unreadable or not matching their SHA-256
	// KeywordsDropped counts keywords (and non-standard system flags) left
	// out of APPENDs: refused by the folder's PERMANENTFLAGS, or not valid
	// IMAP atoms. Each folder logs a warning naming them.
	KeywordsDropped int
	Bytes           int64
	// Missing counts messages the progress record said were restored but
	// the destination no longer held (folder gone or re-created, UID
	// expunged): they were restored again (and are in Appended).
	Missing int
	// ProgressNotRecorded is set when the progress record could not be
	// written (a read-only catalog, catalog.ErrReadOnly): the restore went
	// on without it, and a rerun relies on the destination check.
	ProgressNotRecorded bool
	// Renamed lists the folders RenameCollisions moved.
	Renamed []Renamed
	// Reports say, per folder appended to, what the destination kept.
	Reports  []FolderReport
	Failures []error // each a *FolderError
	// TooBig names the messages skipped because the destination does not
	// take messages that large (APPENDLIMIT, TOOBIG, Microsoft's size
	// refusal); they are not failures.
	TooBig []TooBig
	// LabelsStored counts the Gmail labels added with UID STORE
	// +X-GM-LABELS (onto Gmail); LabelsRefused the ones the server
	// refused, each named (they are not failures).
	LabelsStored  int
	LabelsRefused []LabelRefusal
	// Stopped is set (a *StopError) when the destination's daily limit
	// (Gmail's upload limit) or Options.Budget stopped the restore
	// (limits.go); it is also in Failures. A rerun resumes.
	Stopped error
}

// FolderError is a failure of one folder or one message of it.
type FolderError struct {
	Folder string // source folder name
	Key    string // message key, or "" for the folder as a whole
	// Message names the message as its user finds it (Namer: "UID 4711",
	// "UIDL ..."); Run fills it in. Error prints it instead of Key.
	Message string
	Err     error
}

func (e *FolderError) Error() string {
	switch {
	case e.Message != "":
		return fmt.Sprintf("folder %q: message %s: %v", e.Folder, e.Message, e.Err)
	case e.Key != "":
		return fmt.Sprintf("folder %q: message %s: %v", e.Folder, e.Key, e.Err)
	}
	return fmt.Sprintf("folder %q: %v", e.Folder, e.Err)
}

func (e *FolderError) Unwrap() error { return e.Err }

// ErrDamaged marks a message that cannot be read or whose bytes do not
// match its size and SHA-256: archive.ErrDamaged, the one error of every
// checked read.
var ErrDamaged = archive.ErrDamaged

// ErrUnrepresentable marks a source folder whose name cannot be written on
// the destination (a component contains the destination's delimiter).
var ErrUnrepresentable = errors.New("folder name cannot be represented on the destination")

type run struct {
	dryMu sync.Mutex // one dry-run line at a time
	ctx   context.Context
	dial  func(context.Context) (*imapclient.Client, error)
	dest  Destination
	src   Source
	prog  Progress
	opt   Options
	log   *slog.Logger

	delim    rune
	nsPrefix string
	limit    int64             // APPENDLIMIT from CAPABILITY (0: none)
	srcNS    []string          // the source's personal namespace prefix, as components
	special  map[string]string // special-use attr (lower case) -> destination folder
	existing map[string]bool   // selectable destination folders
	gmail    bool              // the destination has X-GM-EXT-1 (gmail.go)
	created  map[string]bool   // created by this run (before its workers start)

	mu                  sync.Mutex
	stats               Stats
	usedBytes, usedMsgs int64 // of Options.Budget (limits.go)

	throttled atomic.Bool // the destination asked to slow down (limits.go)
	halted    atomic.Bool // the daily limit or Options.Budget stopped the run (limits.go)
	crlfFirst atomic.Bool // the destination refused a message without a final CRLF (crlf.go)
}

type job struct {
	f   Folder
	dst string
}

// Run restores src into the server reached through dial (which returns a
// logged-in client), recording progress in prog under dest. Failures of
// single folders and messages are in Stats.Failures; the error is for a
// restore that could not run (first connection, LIST, the source's folder
// list) or was cancelled (ctx.Err()).
func Run(ctx context.Context, dial func(context.Context) (*imapclient.Client, error), dest Destination, src Source, prog Progress, opt Options) (Stats, error) {
	if opt.Connections <= 0 {
		opt.Connections = 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	r := &run{ctx: ctx, dial: dial, dest: dest, src: src, prog: prog, opt: opt, log: opt.Logger}
	first, err := r.connect()
	if err != nil {
		return r.stats, fmt.Errorf("connecting to %s: %w", dest.Server, err)
	}
	r.gmail = first.c.Caps().Has(capGmail)
	if err := r.discover(first.c); err != nil {
		first.close()
		return r.stats, r.ctxErr(fmt.Errorf("%s: %w", dest.Server, err))
	}
	r.limit = appendLimit(first.c.Caps())
	if err := CheckLabelsMode(opt.Labels); err != nil {
		first.logout()
		return r.stats, err
	}
	src = wrapLabels(src, opt.Labels, r.gmail)
	r.src = src
	folders, err := src.Folders(ctx)
	if err != nil {
		first.close()
		return r.stats, r.ctxErr(fmt.Errorf("listing the source's folders: %w", err))
	}
	if ns, ok := src.(Namespacer); ok {
		prefix, delim, err := ns.SourceNamespace(ctx)
		if err != nil {
			first.close()
			return r.stats, r.ctxErr(fmt.Errorf("the source's namespace: %w", err))
		}
		r.srcNS = layout.Components(strings.TrimSuffix(prefix, string(delim)), delim)
		if prefix == "" {
			r.srcNS = nil
		}
		r.log.Debug("source namespace", "prefix", prefix, "delimiter", string(delim))
	}
	sel := glob.New(opt.Folders, opt.Exclude)
	var selected []Folder
	for _, f := range folders {
		if sel.Match(layout.Join(layout.Components(f.Name, f.Delim), '/')) {
			selected = append(selected, f)
		}
	}
	r.stats.Folders = len(selected)
	plan, err := r.plan(selected)
	if err != nil {
		first.logout()
		return r.stats, err
	}
	if n, b := r.planExtra(plan); opt.Planned != nil && (n != 0 || b != 0) {
		opt.Planned(n, b)
	}
	var jobs []job
	for _, p := range plan {
		err := p.err
		if err == nil {
			err = r.create(first.c, p.dst)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.fail(&FolderError{Folder: p.f.Name, Err: err})
			continue
		}
		jobs = append(jobs, job{p.f, p.dst})
	}
	if ctx.Err() != nil {
		first.close()
		return r.stats, ctx.Err()
	}
	// Folders are restored Connections at a time. Each takes an idle
	// connection (the first one first) or opens one, and gives it back
	// unless the folder failed: at most Connections connections exist.
	workers := max(1, min(opt.Connections, len(jobs)))
	idle := make(chan *conn, workers)
	idle <- first
	var g errgroup.Group
	g.SetLimit(workers)
	for _, j := range jobs {
		if ctx.Err() != nil || r.halted.Load() {
			break
		}
		g.Go(func() error {
			r.restoreJob(idle, j)
			return nil
		})
	}
	g.Wait()
	close(idle)
	for cn := range idle {
		if ctx.Err() != nil {
			cn.close()
		} else {
			cn.logout()
		}
	}
	return r.stats, ctx.Err()
}

// restoreJob restores one folder on an idle connection, or on a new one
// when none is idle, and gives the connection back to idle unless the
// folder failed (the connection may then be in any state).
func (r *run) restoreJob(idle chan *conn, j job) {
	if r.ctx.Err() != nil || r.halted.Load() {
		return
	}
	var cn *conn
	select {
	case cn = <-idle:
	default:
		var err error
		if cn, err = r.connect(); err != nil {
			if r.ctx.Err() == nil {
				r.fail(&FolderError{Folder: j.f.Name, Err: err})
			}
			return
		}
	}
	fr := &folderRun{r: r, cn: cn, f: j.f, dst: j.dst}
	err := fr.restore()
	cn = fr.cn // it may have reconnected
	// A provider's throttling answer: wait as it says (or back off), then
	// run the folder again on a new connection; the destination check
	// keeps a rerun from appending anything twice (limits.go).
	for attempt := 0; err != nil && r.rerun(err, attempt); attempt++ { // limits.go
		if cn != nil {
			cn.close()
		}
		if cn, err = r.connect(); err != nil {
			cn = nil
			continue // a throttled LOGIN waits too
		}
		fr = &folderRun{r: r, cn: cn, f: j.f, dst: j.dst}
		err = fr.restore()
		cn = fr.cn
	}
	if err != nil {
		// A daily-limit answer outside APPEND (SELECT, FETCH) stops the
		// run too; a folder the stop cut short is no failure (limits.go).
		if r.ctx.Err() == nil && !r.stopAt(j.f.Name, err) && !r.stoppedLeft(err) {
			var fe *FolderError
			if !errors.As(err, &fe) {
				fe = &FolderError{Folder: j.f.Name, Err: err}
			}
			r.fail(fe)
		}
		if cn != nil {
			cn.close()
		}
		return
	}
	if cn != nil {
		idle <- cn
	}
}

func (r *run) ctxErr(err error) error {
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return err
}

func (r *run) fail(e *FolderError) {
	if e.Key != "" && e.Message == "" {
		e.Message = r.msgName(e.Folder, e.Key)
	}
	r.log.Error("restore failure", "folder", e.Folder, "message", e.Message, "err", e.Err)
	r.count(func(s *Stats) { s.Failures = append(s.Failures, e) })
}

// msgName names a message of a source folder for the user (see Namer).
func (r *run) msgName(folder, key string) string {
	if n, ok := r.src.(Namer); ok {
		if s := n.MessageName(context.WithoutCancel(r.ctx), folder, key); s != "" {
			return s
		}
	}
	return key
}

// mark records a restored message. A progress record that cannot be
// written (catalog.ErrReadOnly) is given up once, with a warning: the
// destination check finds on a rerun what this run restored.
func (r *run) mark(key string, rd Restored) error {
	r.mu.Lock()
	off := r.stats.ProgressNotRecorded
	r.mu.Unlock()
	if off {
		return nil
	}
	err := r.prog.MarkRestored(context.WithoutCancel(r.ctx), r.dest, key, rd)
	if err == nil || !errors.Is(err, catalog.ErrReadOnly) {
		return err
	}
	r.mu.Lock()
	first := !r.stats.ProgressNotRecorded
	r.stats.ProgressNotRecorded = true
	r.mu.Unlock()
	if first {
		r.log.Debug("the progress record cannot be written; restoring without it (Stats.ProgressNotRecorded)", "err", err)
	}
	return nil
}

func (r *run) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// conn is one worker's connections: a go-imap client for every command,
// and, when the server offers LITERAL+, a raw one for pipelined APPENDs.
// Both are closed when the run's context ends.
type conn struct {
	c        *imapclient.Client
	raw      AppendConn
	ac       *imapclient.Client // APPENDs without raw: selects nothing
	acStop   func() bool
	stop     func() bool
	triedRaw bool
	closed   bool // by close: its state is unknown
}

// appendClient returns the go-imap connection APPENDs go over when there
// is no raw one, opening it on first use. It never selects a folder:
// servers may treat an APPEND into the selected folder differently (UW
// IMAP drops its keywords).
func (r *run) appendClient(cn *conn) (*imapclient.Client, error) {
	if cn.ac != nil {
		return cn.ac, nil
	}
	c, err := r.dial(r.ctx)
	if err != nil {
		return nil, fmt.Errorf("opening the connection for APPEND: %w", err)
	}
	cn.ac, cn.acStop = c, context.AfterFunc(r.ctx, func() { c.Close() })
	return c, nil
}

func (r *run) connect() (*conn, error) {
	c, err := r.dial(r.ctx)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, stop: context.AfterFunc(r.ctx, func() { c.Close() })}, nil
}

// rawConn returns the pipelining connection, opening it on first use; nil
// when there is none (no DialRaw, no LITERAL+, a dry run, or it failed).
func (r *run) rawConn(cn *conn) AppendConn {
	if cn.raw != nil || cn.triedRaw || r.opt.DialRaw == nil || r.opt.DryRun {
		return cn.raw
	}
	cn.triedRaw = true
	raw, err := r.opt.DialRaw(r.ctx)
	if err != nil {
		r.log.Warn("no pipelining connection; APPENDs wait for the server one by one", "err", err)
		return nil
	}
	if !raw.Has("LITERAL+") {
		raw.Logout()
		return nil
	}
	cn.raw = raw
	return raw
}

// close drops the connections at once (an aborted literal stays unfinished).
func (cn *conn) close() {
	cn.closed = true
	cn.stop()
	cn.c.Close()
	if cn.raw != nil {
		cn.raw.Close()
	}
	if cn.ac != nil {
		cn.acStop()
		cn.ac.Close()
	}
}

// logout says goodbye on both connections.
func (cn *conn) logout() {
	cn.stop()
	if cn.raw != nil {
		cn.raw.Logout()
	}
	if cn.ac != nil {
		cn.acStop()
		cn.ac.Logout().Wait()
		cn.ac.Close()
	}
	cn.c.Logout().Wait()
	cn.c.Close()
}

// dryRunf writes one line of a dry run's report on Options.DryRunOutput;
// workers share it.
func (r *run) dryRunf(format string, args ...any) {
	if r.opt.DryRunOutput == nil {
		return
	}
	r.dryMu.Lock()
	fmt.Fprintf(r.opt.DryRunOutput, format, args...)
	r.dryMu.Unlock()
}
