// Package archive is mailkeep's local store: one directory per source
// account holding the mail in an open format (mboxrd compressed with zstd or
// gzip, plain mboxrd, or Maildir) beside a SQLite catalog. It has no network
// code: fetchers write into it and restore reads from it.
//
// Layout of an archive directory:
//
//	catalog.db            the catalog (see package catalog)
//	lock                  held (flock) by the run that writes
//	mbox/<folder>.mbox.zst  one mboxrd file per folder (mbox formats)
//	maildir/              a Maildir++ tree (maildir format): INBOX at the
//	                      root, other folders as .Sub.Folder directories
package archive

import (
	"context"
	"errors"
	"fmt"
	"github.com/mailkeep/mailkeep/internal/flock"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// Format is an archive's storage format.
type Format string

// The archive formats.
const (
	MboxZstd Format = "mbox.zst"
	MboxGzip Format = "mbox.gz"
	Mbox     Format = "mbox"
	Maildir  Format = "maildir"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case MboxZstd, MboxGzip, Mbox, Maildir:
		return f, nil
	}
	return "", fmt.Errorf("unknown archive format %q (want mbox.zst, mbox.gz, mbox or maildir)", s)
}

// Codec is how the format compresses its mbox files (CodecNone for plain
// mbox and Maildir).
func (f Format) Codec() mboxfile.Codec { return f.codec() }

func (f Format) codec() mboxfile.Codec {
	switch f {
	case MboxZstd:
		return mboxfile.CodecZstd
	case MboxGzip:
		return mboxfile.CodecGzip
	}
	return mboxfile.CodecNone
}

func (f Format) isMbox() bool { return f != Maildir }

// ErrLocked is returned by Open when another run holds the archive.
var ErrLocked = errors.New("archive is locked by another mailkeep run")

// ErrNoArchive is returned by Open with ReadOnly when dir holds no archive.
var ErrNoArchive = errors.New("no mailkeep archive here")

// Options configure Open.
type Options struct {
	// Format for a new archive; an existing archive keeps its own and a
	// different non-empty Format is an error. Default MboxZstd.
	Format Format
	// ReadOnly opens without taking the lock and without creating anything
	// (ls, cat, restore's reads).
	ReadOnly bool
	// MustExist refuses to create a new archive (restore).
	MustExist bool
	// FrameSize is the decompressed size of an mbox frame (default 4 MiB).
	FrameSize int
	// CompressionLevel is the level new frames of mbox.zst and mbox.gz
	// archives are written at (mboxfile.Options.Level: zstd -1 to 22,
	// gzip -3 to 9; 0 the default). Frames are independent, so a level
	// can change between runs. Non-zero is an error (wrapping
	// mboxfile.ErrLevel) for the uncompressed formats.
	CompressionLevel int
	// CommitBytes is how much a folder writer buffers before it makes its
	// data durable and commits the catalog (default 16 MiB).
	CommitBytes int64
	// OnCommit, when set, is called by a folder writer right after each
	// commit with the messages it committed (their catalog rows, IDs
	// set) and, when Extract is set, what it extracted of each (nil
	// where nothing). It runs in the writer's goroutine and must not
	// block. The search index follows a backup through it.
	OnCommit func(f *catalog.Folder, msgs []*catalog.Message, extracted []any)
	// Extract, when set, is asked by Add for each message whether to
	// extract something from its bytes (a nil function: no). The function
	// is given exactly the bytes Open reads back later, as they are
	// stored, in a goroutine of its own: it must read r only as far as it
	// wants (the rest is read for it). Its result goes to OnCommit beside
	// the message, or is dropped with the message when the writer fails.
	Extract func(f *catalog.Folder) func(r io.Reader) any
}

// Archive is an open archive directory.
type Archive struct {
	Dir    string
	Format Format
	Cat    *catalog.Catalog
	// Journal says what opening found in the catalog's journal: commits
	// replayed because the catalog had lost them, or a journal written
	// anew (writing opens only).
	Journal catalog.JournalState
	opt     Options
	lock    *os.File
}

// Open opens (creating when needed) the archive in dir.
func Open(dir string, opt Options) (*Archive, error) {
	// Open has no ctx; threading one in would reach every caller (issue 15).
	ctx := context.TODO()
	if opt.FrameSize <= 0 {
		opt.FrameSize = 4 << 20
	}
	if opt.CommitBytes <= 0 {
		opt.CommitBytes = 16 << 20
	}
	a := &Archive{Dir: dir, opt: opt}
	dbPath := filepath.Join(dir, "catalog.db")
	if err := checkCatalogFile(dir, dbPath); err != nil {
		return nil, err
	}
	if opt.ReadOnly || opt.MustExist {
		if _, err := safefs.Lstat(dir, "catalog.db"); err != nil {
			return nil, fmt.Errorf("archive %s: %w", dir, ErrNoArchive)
		}
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("archive %s: %w", dir, err)
		}
		lf, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		a.lock = lf
	}
	open := catalog.Open
	if opt.ReadOnly {
		open = catalog.OpenReadOnly
	}
	cat, err := open(dbPath)
	if err != nil {
		a.unlock()
		return nil, catalogFailure(dir, err)
	}
	a.Cat = cat
	stored, err := cat.Meta(ctx, "format")
	if err != nil {
		a.Close()
		return nil, catalogFailure(dir, err)
	}
	if stored == "" {
		// A catalog that never recorded a format is new. Beside mail
		// files it is not this archive's catalog: refuse before a run
		// could cut off or ignore the mail only the files hold.
		mail, err := hasMail(dir)
		if err == nil && mail {
			err = &CatalogError{Dir: dir, Problem: "new (it knows none of the mail beside it)"}
		}
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	switch {
	case stored == "" && opt.ReadOnly:
		a.Format = MboxZstd
	case stored == "":
		a.Format = opt.Format
		if a.Format == "" {
			a.Format = MboxZstd
		}
		if err := cat.SetMeta(ctx, "format", string(a.Format)); err != nil {
			a.Close()
			return nil, fmt.Errorf("archive %s: %w", dir, err)
		}
	default:
		a.Format = Format(stored)
		if opt.Format != "" && opt.Format != a.Format && !opt.ReadOnly {
			// An archive that holds nothing yet (a first run that never
			// logged in) takes the format asked for.
			if empty, err := a.isEmpty(ctx); err != nil {
				a.Close()
				return nil, catalogFailure(dir, err)
			} else if empty {
				if err := cat.SetMeta(ctx, "format", string(opt.Format)); err != nil {
					a.Close()
					return nil, fmt.Errorf("archive %s: %w", dir, err)
				}
				a.Format = opt.Format
			}
		}
		if opt.Format != "" && opt.Format != a.Format {
			a.Close()
			return nil, fmt.Errorf("archive %s holds format %s, not %s: use a new directory to change format", dir, a.Format, opt.Format)
		}
	}
	if !opt.ReadOnly && opt.CompressionLevel != 0 {
		if err := mboxfile.CheckLevel(a.Format.codec(), opt.CompressionLevel); err != nil {
			a.Close()
			return nil, fmt.Errorf("archive %s (%s): %w", dir, a.Format, err)
		}
	}
	if !opt.ReadOnly {
		js, err := cat.AttachJournal(ctx, filepath.Join(dir, JournalName))
		if err != nil {
			a.Close()
			return nil, catalogFailure(dir, err)
		}
		a.Journal = js
		if err := a.repair(ctx); err != nil {
			a.Close()
			return nil, fmt.Errorf("archive %s: %w", dir, err)
		}
	}
	return a, nil
}

func (a *Archive) unlock() {
	if a.lock != nil {
		a.lock.Close() // closing releases the flock
		a.lock = nil
	}
}

// Close closes the catalog and releases the lock.
func (a *Archive) Close() error {
	var err error
	if a.Cat != nil {
		err = a.Cat.Close()
	}
	a.unlock()
	return err
}

// FolderPath returns the archive-relative path where a folder's mail lives.
func (a *Archive) FolderPath(name string, delim rune) string {
	comps := layout.Components(name, delim)
	if a.Format == Maildir {
		return filepath.Join("maildir", layout.MaildirPath(comps))
	}
	return filepath.Join("mbox", layout.MboxPath(comps, "."+string(a.Format)))
}

// Folder returns the catalog entry of a source folder, creating it.
func (a *Archive) Folder(ctx context.Context, name string, delim rune, specialUse string) (*catalog.Folder, error) {
	return a.Cat.EnsureFolder(ctx, name, delim, specialUse, a.FolderPath(name, delim))
}

// Open returns a reader of a message's exact bytes. It checks the length;
// callers that need the checksum verified use OpenVerified.
func (a *Archive) Open(m *catalog.Message) (io.ReadCloser, error) {
	if a.Format == Maildir {
		f, err := safefs.Open(a.Dir, m.File)
		if err != nil {
			return nil, fmt.Errorf("message uid %d: %w", m.UID, err)
		}
		return &exactReader{r: f, c: f, left: m.Size, name: m.File}, nil
	}
	rc, err := mboxfile.OpenReaderIn(a.Dir, m.File, a.Format.codec(), mboxfile.Pos{FrameOffset: m.FrameOffset, Offset: m.FramePos})
	if err != nil {
		return nil, fmt.Errorf("message uid %d in %s: %w", m.UID, m.File, err)
	}
	dec := mboxrd.NewDecoder(rc)
	_, _, body, err := dec.Next()
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("message uid %d in %s at frame %d+%d: %w", m.UID, m.File, m.FrameOffset, m.FramePos, err)
	}
	return &exactReader{r: body, c: rc, left: m.Size, name: m.File}, nil
}

// exactReader yields exactly left bytes and fails if the source has fewer.
type exactReader struct {
	r    io.Reader
	c    io.Closer
	left int64
	name string
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%s: message truncated, %d bytes missing: %w", e.name, e.left, io.ErrUnexpectedEOF)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (e *exactReader) Close() error { return e.c.Close() }

func isSubMaildir(rel string) bool {
	return strings.TrimPrefix(filepath.ToSlash(rel), "maildir") != ""
}

// Walk calls fn for each message of msgs (all of one folder) with a reader
// of its exact bytes, in storage order. For mbox formats the folder's file
// is decompressed once, front to back, instead of once per message. fn
// must not keep the reader; a read error names the message.
func (a *Archive) Walk(ctx context.Context, f *catalog.Folder, msgs []*catalog.Message, fn func(*catalog.Message, io.Reader) error) error {
	if len(msgs) == 0 {
		return nil
	}
	if a.Format == Maildir {
		for _, m := range msgs {
			r, err := a.Open(m)
			if err != nil {
				return fmt.Errorf("folder %q: %w", f.Name, err)
			}
			err = fn(m, r)
			r.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	sorted := append([]*catalog.Message(nil), msgs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].FrameOffset != sorted[j].FrameOffset {
			return sorted[i].FrameOffset < sorted[j].FrameOffset
		}
		return sorted[i].FramePos < sorted[j].FramePos
	})
	first := sorted[0]
	rc, err := mboxfile.OpenReaderIn(a.Dir, first.File, a.Format.codec(), mboxfile.Pos{FrameOffset: first.FrameOffset, Offset: first.FramePos})
	if err != nil {
		return fmt.Errorf("folder %q: %w", f.Name, err)
	}
	defer rc.Close()
	// The stream holds every message stored from the first wanted one on;
	// skip those not asked for by counting them off the catalog.
	// A Gmail label view's messages live in the file of the folder it
	// shows: count off every message of that file.
	fileFolder := f.ID
	if f.IsView() {
		fileFolder = f.ViewOf
	}
	all, err := a.Cat.All(ctx, fileFolder)
	if err != nil {
		return err
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].FrameOffset != all[j].FrameOffset {
			return all[i].FrameOffset < all[j].FrameOffset
		}
		return all[i].FramePos < all[j].FramePos
	})
	// fn gets the caller's messages (which may carry more than the
	// catalog's rows: restore and export give frozen folders' their
	// labels), not the rows counted off.
	want := make(map[int64]*catalog.Message, len(sorted))
	for _, m := range sorted {
		want[m.ID] = m
	}
	dec := mboxrd.NewDecoder(rc)
	left := len(sorted)
	for _, m := range all {
		if m.File != first.File || m.FrameOffset < first.FrameOffset || (m.FrameOffset == first.FrameOffset && m.FramePos < first.FramePos) {
			continue
		}
		_, _, body, err := dec.Next()
		if err != nil {
			return fmt.Errorf("folder %q uid %d: reading %s: %w", f.Name, m.UID, m.File, err)
		}
		given := want[m.ID]
		if given == nil {
			continue
		}
		if err := fn(given, &exactReader{r: body, c: io.NopCloser(nil), left: m.Size, name: m.File}); err != nil {
			return err
		}
		if left--; left == 0 {
			return nil
		}
	}
	if left > 0 {
		return fmt.Errorf("folder %q: %d messages not found in %s", f.Name, left, first.File)
	}
	return nil
}

// isEmpty reports whether the archive holds no folder and no mail file.
func (a *Archive) isEmpty(ctx context.Context) (bool, error) {
	fl, err := a.Cat.Folders(ctx)
	if err != nil || len(fl) > 0 {
		return false, err
	}
	for _, sub := range []string{"mbox", "maildir"} {
		ents, err := safefs.ReadDir(a.Dir, sub)
		if err == nil && len(ents) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// lockDir takes the archive's lock (flock of DIR/lock, without waiting):
// one writing run at a time. Closing the file releases it.
func lockDir(dir string) (*os.File, error) {
	lf, err := safefs.OpenFile(dir, "lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := flock.TryLock(lf); err != nil {
		lf.Close()
		if errors.Is(err, flock.ErrWouldBlock) {
			return nil, fmt.Errorf("archive %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("archive %s: lock: %w", dir, err)
	}
	return lf, nil
}
