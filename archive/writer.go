package archive

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
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
}

// FolderWriter appends messages to one folder of an archive. Stored
// messages become visible in the catalog only at Commit, after their data
// is durable; a writer that is dropped without Commit leaves nothing behind
// that the next run would keep. Not safe for concurrent use.
type FolderWriter struct {
	a       *Archive
	f       *catalog.Folder
	run     int64
	now     func() time.Time
	br      *bufio.Reader
	h       hash.Hash
	mw      *mboxfile.Writer
	enc     *mboxrd.Encoder
	md      *maildir.Folder
	pipe    *pipeline // mbox formats: the queue to the worker that hashes and compresses
	pending []*catalog.Message
	pendBy  int64
	lastUID uint32
	bytes   int64
	stored  int
}

// NewWriter opens a folder for appending on behalf of run. For mbox formats
// it trims any uncommitted tail a killed run left; for Maildir it removes
// temporary files a killed run left.
func (a *Archive) NewWriter(f *catalog.Folder, run int64) (*FolderWriter, error) {
	if a.opt.ReadOnly {
		return nil, errors.New("archive opened read-only")
	}
	w := &FolderWriter{a: a, f: f, run: run, now: time.Now, br: bufio.NewReaderSize(nil, 64<<10), h: sha256.New()}
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
		w.startPipeline()
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

// Folder returns the catalog folder being written.
func (w *FolderWriter) Folder() *catalog.Folder { return w.f }

// Add streams one message from r into the archive. The message is pending
// until the next Commit (Add commits by itself every CommitBytes). On error
// the pending messages are dropped (they are not in the catalog, so the next
// run fetches them again) and the archive stays as it was at the last commit.
//
// In the mbox formats Add returns once it has read r to its end: the
// message is hashed and compressed in the background (see pipeline.go),
// and the returned message's SHA256 and file position are set when the
// next Commit or Close returns. An error in that background work is
// returned by the next Add, Commit or Close.
func (w *FolderWriter) Add(in *Incoming, r io.Reader) (*catalog.Message, error) {
	if w.pipe != nil && w.pipe.failed.Load() {
		err := w.drain()
		w.Abort()
		return nil, err
	}
	w.br.Reset(r)
	hdr := sniffHeader(w.br)
	m := &catalog.Message{
		UIDValidity:  in.UIDValidity,
		UID:          in.UID,
		UIDL:         in.UIDL,
		ModSeq:       in.ModSeq,
		InternalDate: in.InternalDate,
		Flags:        in.Flags,
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
	var n int64
	var err error
	if w.pipe != nil {
		m.File = w.f.Path
		n, err = w.queueMbox(m, hdr.EnvelopeFrom, w.br)
		if errors.Is(err, errWorker) {
			err = w.drain()
			w.Abort()
			return nil, err
		}
	} else {
		w.h.Reset()
		var name string
		name, n, err = w.md.Deliver(maildirKeyOf(m), m.Flags, m.InternalDate, io.TeeReader(w.br, w.h))
		m.File = filepath.Join(w.f.Path, name)
		m.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("folder %q %s: %w", w.f.Name, msgName(m), err)
	}
	m.Size = n
	w.pending = append(w.pending, m)
	w.pendBy += n
	if m.UID > w.lastUID {
		w.lastUID = m.UID
	}
	if w.pendBy >= w.a.opt.CommitBytes || len(w.pending) >= 2000 {
		if err := w.Commit(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Commit makes the pending messages durable and then records them in the
// catalog. It returns how many were committed.
func (w *FolderWriter) Commit() error {
	if len(w.pending) == 0 {
		return nil
	}
	// Every queued message is stored (and hashed) before the file is
	// synced, and the file is synced before the catalog records them.
	if err := w.drain(); err != nil {
		w.Abort()
		return err
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
	if err := w.a.Cat.Commit(w.f.ID, size, w.lastUID, w.run, w.pending); err != nil {
		w.Abort()
		return fmt.Errorf("folder %q: %w", w.f.Name, err)
	}
	if w.mw != nil {
		w.f.CommittedSize = size
	}
	w.stored += len(w.pending)
	w.bytes += w.pendBy
	w.pending, w.pendBy = nil, 0
	return nil
}

// Stored returns how many messages and bytes this writer has committed.
func (w *FolderWriter) Stored() (int, int64) { return w.stored, w.bytes }

// Abort drops the pending messages.
func (w *FolderWriter) Abort() {
	if w.mw != nil {
		w.drain() // the worker is idle before the file is cut back
		w.mw.Abort()
	}
	// Maildir: delivered but uncommitted files have deterministic names
	// (Deliver replaces them on the next run); nothing else to undo.
	w.pending, w.pendBy = nil, 0
}

// Close commits what is pending and closes the folder's files.
func (w *FolderWriter) Close() error {
	err := w.Commit()
	w.stopPipeline()
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
				if err := w.a.Cat.SetFile(m.ID, file); err != nil {
					return err
				}
				m.File = file
			}
		}
		if err := w.md.Sync(); err != nil {
			return err
		}
	}
	return w.a.Cat.SetFlags(w.run, changes)
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
