package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// Incoming describes a message about to be stored.
type Incoming struct {
	UIDValidity  uint32
	UID          uint32
	UIDL         string // POP3
	ModSeq       uint64
	InternalDate time.Time // IMAP INTERNALDATE; zero for POP3 (the Received: date or now is used)
	Flags        []string
	// Gmail (X-GM-MSGID, X-GM-THRID, X-GM-LABELS), committed with the
	// message; zero and nil elsewhere.
	GmailMsgID, GmailThrID uint64
	Labels                 []string
}

// FolderWriter appends messages to one folder of an archive. Stored
// messages become visible in the catalog only at Commit, after their data
// is durable; a writer that is dropped without Commit leaves nothing behind
// that the next run would keep. Not safe for concurrent use.
//
// For the mbox formats the commits Add makes by itself run behind the
// writer: the open frame is closed and written out, and a goroutine
// fsyncs the file and then records the batch in the catalog while Add
// goes on appending after it. At most one such commit is in flight; the
// next one, Commit, Close and Abort wait for it first, and its error is
// returned by the call that waits.
type FolderWriter struct {
	ctx     context.Context // NewWriter's: the catalog writes run under it
	a       *Archive
	f       *catalog.Folder
	run     int64
	now     func() time.Time
	ab      *addBuffers // Add's, from addPool at the first Add; back at Close
	h       hash.Hash
	mw      *mboxfile.Writer
	enc     *mboxrd.Encoder
	md      *maildir.Folder
	pending []*catalog.Message
	extr    []any // Options.Extract's results, beside pending
	pendBy  int64
	lastUID uint32
	bytes   int64
	stored  int
	flight  *behind // the commit running behind Add, or nil
}

// behind is a batch being made durable and committed on a goroutine of
// its own (commitBehind).
type behind struct {
	done    chan error
	msgs    []*catalog.Message
	extr    []any
	by      int64
	size    int64
	lastUID uint32
}

// NewWriter opens a folder for appending on behalf of run. For mbox formats
// it trims any uncommitted tail a killed run left; for Maildir it removes
// temporary files a killed run left.
func (a *Archive) NewWriter(ctx context.Context, f *catalog.Folder, run int64) (*FolderWriter, error) {
	if a.opt.ReadOnly {
		return nil, errors.New("archive opened read-only")
	}
	w := &FolderWriter{ctx: ctx, a: a, f: f, run: run, now: time.Now, h: sha256.New()}
	path := filepath.Join(a.Dir, f.Path)
	if a.Format.isMbox() {
		// Open repaired every folder the catalog knew; bytes in the file
		// of a folder it did not know (or past what it committed) are
		// nobody's to cut off.
		if fi, err := safefs.Lstat(a.Dir, f.Path); err == nil && fi.Size() > f.CommittedSize {
			return nil, fmt.Errorf("folder %q: %s holds %d bytes the catalog does not account for: nothing was changed; run \"mailkeep reindex --archive %s\" to catalog them: %w", f.Name, f.Path, fi.Size()-f.CommittedSize, a.Dir, ErrNeedsReindex)
		}
		mw, err := mboxfile.OpenAppend(path, f.CommittedSize, mboxfile.Options{Codec: a.Format.codec(), FrameSize: a.opt.FrameSize, Level: a.opt.CompressionLevel, Root: a.Dir})
		if err != nil {
			return nil, fmt.Errorf("folder %q: %w", f.Name, err)
		}
		w.mw = mw
		w.enc = mboxrd.NewEncoder(mw)
	} else {
		md, err := maildir.OpenFolderIn(a.Dir, f.Path, isSubMaildir(f.Path))
		if err != nil {
			return nil, fmt.Errorf("folder %q: %w", f.Name, err)
		}
		if err := md.CleanTmp(); err != nil {
			return nil, fmt.Errorf("folder %q: %w", f.Name, err)
		}
		w.md = md
	}
	return w, nil
}

// addBuffers are Add's read buffer and copy buffer. A backup opens a
// writer for each folder with new mail: a thousand small folders
// allocated (and cleared) 128 KiB each, most of the run's garbage.
type addBuffers struct {
	br  *bufio.Reader
	buf []byte
}

var addPool = sync.Pool{New: func() any {
	return &addBuffers{br: bufio.NewReaderSize(nil, 64<<10), buf: make([]byte, 64<<10)}
}}

// Folder returns the catalog folder being written.
func (w *FolderWriter) Folder() *catalog.Folder { return w.f }

// Add streams one message from r into the archive. The message is pending
// until the next Commit (Add commits by itself every CommitBytes). On error
// the pending messages are dropped (they are not in the catalog, so the next
// run fetches them again) and the archive stays as it was at the last commit.
func (w *FolderWriter) Add(in *Incoming, r io.Reader) (*catalog.Message, error) {
	if w.ab == nil {
		w.ab = addPool.Get().(*addBuffers)
	}
	w.ab.br.Reset(r)
	hdr := sniffHeader(w.ab.br)
	m := &catalog.Message{
		UIDValidity:  in.UIDValidity,
		UID:          in.UID,
		UIDL:         in.UIDL,
		ModSeq:       in.ModSeq,
		InternalDate: in.InternalDate,
		Flags:        in.Flags,
		GmailMsgID:   in.GmailMsgID,
		GmailThrID:   in.GmailThrID,
		Labels:       in.Labels,
		MessageID:    hdr.MessageID,
		Sender:       hdr.From,
		Subject:      hdr.Subject,
		ReceivedDate: hdr.Received,
	}
	if m.InternalDate.IsZero() { // POP3: the newest Received: date, else now
		m.InternalDate = hdr.Received
		if m.InternalDate.IsZero() {
			m.InternalDate = w.now().Truncate(time.Second)
		}
	}
	w.h.Reset()
	src := io.TeeReader(w.ab.br, w.h)
	var ext *extraction
	if w.a.opt.Extract != nil {
		if fn := w.a.opt.Extract(w.f); fn != nil {
			ext = startExtraction(fn)
			src = io.TeeReader(src, ext.pw)
		}
	}
	var n int64
	var err error
	if w.mw != nil {
		pos := w.mw.Pos()
		m.File, m.FrameOffset, m.FramePos = w.f.Path, pos.FrameOffset, pos.Offset
		n, err = w.writeMbox(hdr.EnvelopeFrom, m.InternalDate, src)
	} else {
		var name string
		name, n, err = w.md.Deliver(maildirKeyOf(m), m.Flags, m.InternalDate, src)
		m.File = filepath.Join(w.f.Path, name)
	}
	var extracted any
	if ext != nil {
		extracted = ext.finish(err)
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("folder %q %s: %w", w.f.Name, msgName(m), err)
	}
	m.Size = n
	m.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	w.pending = append(w.pending, m)
	if w.a.opt.Extract != nil {
		w.extr = append(w.extr, extracted)
	}
	w.pendBy += n
	if m.UID > w.lastUID {
		w.lastUID = m.UID
	}
	if w.pendBy >= w.a.opt.CommitBytes || len(w.pending) >= 2000 {
		commit := w.Commit
		if w.mw != nil {
			commit = w.commitBehind
		}
		if err := commit(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// commitBehind hands the pending messages to a goroutine that makes them
// durable (fsync) and then records them in the catalog, while the caller
// goes on writing after them. It first waits for the previous one.
func (w *FolderWriter) commitBehind() error {
	if err := w.land(); err != nil {
		w.Abort()
		return err
	}
	size, err := w.mw.Cut()
	if err != nil {
		w.Abort()
		return fmt.Errorf("folder %q: sync %s: %w", w.f.Name, w.f.Path, err)
	}
	b := &behind{done: make(chan error, 1), msgs: w.pending, extr: w.extr, by: w.pendBy, size: size, lastUID: w.lastUID}
	w.pending, w.extr, w.pendBy = nil, nil, 0
	w.flight = b
	// The bytes are durable before the catalog names them; a cancelled
	// run still records what is durable, as Close does.
	ctx := context.WithoutCancel(w.ctx)
	go func() {
		if err := w.mw.SyncTo(b.size); err != nil {
			b.done <- fmt.Errorf("sync %s: %w", w.f.Path, err)
			return
		}
		b.done <- w.a.Cat.Commit(ctx, w.f.ID, b.size, b.lastUID, w.run, b.msgs)
	}()
	return nil
}

// land waits for the commit in flight, if any, and counts it.
func (w *FolderWriter) land() error {
	b := w.flight
	if b == nil {
		return nil
	}
	w.flight = nil
	if err := <-b.done; err != nil {
		return fmt.Errorf("folder %q: %w", w.f.Name, err)
	}
	w.f.CommittedSize = b.size
	if w.a.opt.OnCommit != nil {
		w.a.opt.OnCommit(w.f, b.msgs, b.extr)
	}
	w.stored += len(b.msgs)
	w.bytes += b.by
	return nil
}

func (w *FolderWriter) writeMbox(sender string, date time.Time, src io.Reader) (int64, error) {
	if _, err := io.WriteString(w.mw, mboxrd.FromLine(sender, date)); err != nil {
		return 0, err
	}
	w.enc.Reset(w.mw)
	n, err := io.CopyBuffer(w.enc, src, w.ab.buf)
	if err != nil {
		return n, err
	}
	return n, w.enc.Close()
}

// Commit makes the pending messages durable and then records them in the
// catalog. It returns how many were committed.
func (w *FolderWriter) Commit() error { return w.commit(w.ctx) }

// commit is Commit under ctx.
func (w *FolderWriter) commit(ctx context.Context) error {
	if err := w.land(); err != nil {
		w.Abort()
		return err
	}
	if len(w.pending) == 0 {
		return nil
	}
	var size int64
	if w.mw != nil {
		var err error
		if size, err = w.mw.Sync(); err != nil {
			w.Abort()
			return fmt.Errorf("folder %q: sync %s: %w", w.f.Name, w.f.Path, err)
		}
	} else if err := w.md.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("folder %q: sync %s: %w", w.f.Name, w.f.Path, err)
	}
	if err := w.a.Cat.Commit(ctx, w.f.ID, size, w.lastUID, w.run, w.pending); err != nil {
		w.Abort()
		return fmt.Errorf("folder %q: %w", w.f.Name, err)
	}
	if w.mw != nil {
		w.f.CommittedSize = size
	}
	if w.a.opt.OnCommit != nil {
		w.a.opt.OnCommit(w.f, w.pending, w.extr)
	}
	w.stored += len(w.pending)
	w.bytes += w.pendBy
	w.pending, w.extr, w.pendBy = nil, nil, 0
	return nil
}

// extraction feeds one message's bytes to an Options.Extract function.
type extraction struct {
	pw   *io.PipeWriter
	done chan any
}

func startExtraction(fn func(io.Reader) any) *extraction {
	pr, pw := io.Pipe()
	e := &extraction{pw: pw, done: make(chan any, 1)}
	go func() {
		res := fn(pr)
		io.Copy(io.Discard, pr) // what fn did not want
		pr.Close()
		e.done <- res
	}()
	return e
}

// finish ends the message's bytes (with err when storing it failed) and
// returns fn's result.
func (e *extraction) finish(err error) any {
	if err != nil {
		e.pw.CloseWithError(err)
	} else {
		e.pw.Close()
	}
	return <-e.done
}

// Stored returns how many messages and bytes this writer has committed.
func (w *FolderWriter) Stored() (int, int64) { return w.stored, w.bytes }

// Abort drops the pending messages. A commit in flight is waited for
// first: what it recorded stays.
func (w *FolderWriter) Abort() {
	if w.flight != nil {
		w.land()
	}
	if w.mw != nil {
		w.mw.Abort()
	}
	// Maildir: delivered but uncommitted files have deterministic names
	// (Deliver replaces them on the next run); nothing else to undo.
	w.pending, w.extr, w.pendBy = nil, nil, 0
}

// Close commits what is pending and closes the folder's files.
func (w *FolderWriter) Close() error {
	if w.ab != nil {
		w.ab.br.Reset(nil)
		addPool.Put(w.ab)
		w.ab = nil
	}
	// What is durable is recorded even when the run was cancelled.
	err := w.commit(context.WithoutCancel(w.ctx))
	if w.mw != nil {
		if cerr := w.mw.Close(); err == nil {
			err = cerr
		}
	}
	if w.md != nil {
		w.md.Close()
	}
	return err
}

// SetFlags records new flags for stored messages; for Maildir it also
// renames the files so their info suffix matches.
func (w *FolderWriter) SetFlags(changes []catalog.FlagChange, byID map[int64]*catalog.Message) error {
	if w.md != nil {
		for _, ch := range changes {
			m := byID[ch.ID]
			if m == nil {
				continue
			}
			name, err := w.md.SetFlags(filepath.Base(filepath.Dir(m.File))+"/"+filepath.Base(m.File), ch.Flags)
			if err != nil {
				return fmt.Errorf("folder %q %s: %w", w.f.Name, msgName(m), err)
			}
			file := filepath.Join(w.f.Path, name)
			if file != m.File {
				if err := w.a.Cat.SetFile(w.ctx, m.ID, file); err != nil {
					return err
				}
				m.File = file
			}
		}
		if err := w.md.Sync(); err != nil {
			return err
		}
	}
	return w.a.Cat.SetFlags(w.ctx, w.run, changes)
}

func msgName(m *catalog.Message) string {
	if m.UIDL != "" {
		return fmt.Sprintf("message uidl %q", m.UIDL)
	}
	return fmt.Sprintf("message uid %d", m.UID)
}

func maildirKeyOf(m *catalog.Message) string {
	if m.UIDL != "" {
		h := sha256.Sum256([]byte(m.UIDL))
		return fmt.Sprintf("%d.P%s.mailkeep", m.InternalDate.Unix(), hex.EncodeToString(h[:8]))
	}
	return fmt.Sprintf("%d.M%dU%d.mailkeep", m.InternalDate.Unix(), m.UIDValidity, m.UID)
}
