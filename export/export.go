// Package export writes the mail of a mailkeep archive out as plain files
// that mail programs import: one mbox file per folder (Thunderbird with
// ImportExportTools NG, mutt, Apple Mail), a Maildir++ tree (mutt,
// Dovecot) or one .eml file per message. It is the way back out of the
// archive without a network.
//
// It streams: each folder's archive file is read front to back once
// (archive.Walk) and every message is written as it is read, through a
// fixed set of buffers, so memory does not grow with message size. The
// catalog metadata of one folder is loaded at a time (a few hundred bytes
// per message), as restore does.
//
// Selection (--folder, --as-of, --include-expunged) is restore's: folders
// and messages come from archive.Selector.
//
// Safety: the target must be new or an empty directory. Every output file
// is written under a temporary name, made durable (fsync, or one syncfs per
// batch of small files) and only then renamed to its final name, and the
// directories are fsynced; so a file with its final name is always
// complete, whatever happens to the export. Every message's bytes are
// checked against the catalog's size and SHA-256 while they stream; a
// message that does not match is not written, and is reported.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/internal/gmaillabels"
)

// Format is an export format.
type Format string

// The export formats.
const (
	Mbox    Format = "mbox"    // one mboxrd file per folder
	Maildir Format = "maildir" // a Maildir++ tree
	EML     Format = "eml"     // one .eml file per message, a directory per folder
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Mbox, Maildir, EML:
		return f, nil
	}
	return "", fmt.Errorf("unknown export format %q (want mbox, maildir or eml)", s)
}

// ErrTargetNotEmpty is wrapped by Run's and CheckTarget's error when the
// target exists and is not an empty directory.
var ErrTargetNotEmpty = errors.New("exists and is not an empty directory; export never writes into existing files")

// ErrDamaged is wrapped by the error of a message whose archived bytes do
// not match the catalog (or cannot be read): archive.ErrDamaged.
var ErrDamaged = archive.ErrDamaged

// Options configure Run.
type Options struct {
	Format Format
	// Folders and Exclude are globs (package internal/glob) on folder
	// names written with '/' between levels; no Folders means all.
	Folders, Exclude []string
	// AsOf and IncludeExpunged select messages as restore does
	// (archive.Selection).
	AsOf            time.Time
	IncludeExpunged bool
	// Account names the archive in errors (an account name or URL).
	Account string
	Logger  *slog.Logger
	// Progress, when set, is called after each message written.
	Progress func(folder string, bytes int64)
	// Labels is what becomes of Gmail labels: "folders" ("" too),
	// "keywords" or "none" (labels.go).
	Labels string
}

// Stats count what Run did.
type Stats struct {
	Folders  int     // folders exported
	Messages int     // messages written, in folders completed
	Bytes    int64   // their size (the archived bytes)
	Skipped  int     // damaged messages not written
	Damaged  []error // one *archive.MessageError per skipped message
}

// folderOut writes one folder in one format. Put streams a message into
// a pending place; Keep makes it part of the export, Drop undoes Put.
// Close makes the folder durable and final; Abort removes what is not.
type folderOut interface {
	Put(m *catalog.Message, flags []string, seq int, r io.Reader) error
	Keep() error
	Drop() error
	Close() error
	Abort()
}

// Run exports the archive a into the directory to (which must not exist or
// be empty). Damaged messages are skipped and listed in Stats.Damaged; an
// error means the export stopped (the folders and messages written until
// then are complete and valid).
func Run(ctx context.Context, a *archive.Archive, to string, opt Options) (Stats, error) {
	var st Stats
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := ParseFormat(string(opt.Format)); err != nil {
		return st, err
	}
	if err := CheckTarget(to); err != nil {
		return st, err
	}
	src, err := a.Selector(ctx, archive.Selection{IncludeExpunged: opt.IncludeExpunged, AsOf: opt.AsOf})
	if err != nil {
		return st, fmt.Errorf("archive %s: %w", a.Dir, err)
	}
	folders, err := src.Folders(ctx)
	if err != nil {
		return st, fmt.Errorf("archive %s: listing folders: %w", a.Dir, err)
	}
	if err := gmaillabels.CheckMode(opt.Labels); err != nil {
		return st, err
	}
	chosen, err := plan(ctx, a.Cat, src, folders, glob.New(opt.Folders, opt.Exclude), opt.Labels)
	if err != nil {
		return st, fmt.Errorf("archive %s: %w", a.Dir, err)
	}
	// Folders are written relative to the source's personal namespace, as
	// restore maps them: "INBOX.Sent" from Cyrus or Courier is "Sent".
	nsPrefix, _, err := a.SourceNamespace(ctx)
	if err != nil {
		return st, fmt.Errorf("archive %s: %w", a.Dir, err)
	}
	e := &exporter{a: a, src: src, to: to, opt: opt, st: &st, buf: make([]byte, 64<<10), nsPrefix: nsPrefix}
	if err := e.start(); err != nil {
		return st, err
	}
	for _, f := range chosen {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := e.folder(ctx, f); err != nil {
			return st, err
		}
		st.Folders++
	}
	return st, syncDir(to)
}

type exporter struct {
	a   *archive.Archive
	src *archive.Selector
	to  string
	opt Options
	st  *Stats
	buf []byte
	// kept and keptBytes count the current folder's messages; they join
	// Stats when the folder is complete and durable.
	kept      int
	keptBytes int64
	// nsPrefix is the source's personal namespace prefix ("INBOX." on
	// Cyrus and Courier, "" on Dovecot), left out of exported names.
	nsPrefix string
}

// start creates the target directory (and for Maildir the INBOX
// directories at its root, which Dovecot expects).
func (e *exporter) start() error {
	if err := mkdirAll(e.to); err != nil {
		return fmt.Errorf("export to %s: %w", e.to, err)
	}
	if e.opt.Format == Maildir {
		if err := makeMaildir(e.to, false); err != nil {
			return fmt.Errorf("export to %s: %w", e.to, err)
		}
	}
	return nil
}

func (e *exporter) open(f *outFolder) (folderOut, error) {
	comps := layout.Components(relativeName(f.name, e.nsPrefix), f.delim)
	switch e.opt.Format {
	case Mbox:
		return newMboxOut(e.to, comps, e.buf)
	case Maildir:
		return newMaildirOut(e.to, comps, e.buf)
	default:
		return newEMLOut(e.to, comps, e.buf)
	}
}

// errRestart stops a Walk after a damaged message so that the next one is
// read from its own position: damage must not shift what follows.
var errRestart = errors.New("restart after a damaged message")

// fatal marks an error that ends the export (a write failed, or ctx).
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }
func (f fatal) Unwrap() error { return f.err }

// folder exports one folder. It walks the folder's messages front to back;
// after a damaged message, or when the archive stream breaks, it walks on
// from the next message (a fresh read from that message's own position),
// so one bad spot costs only the messages it touches.
func (e *exporter) folder(ctx context.Context, of *outFolder) error {
	out, err := e.open(of)
	if err != nil {
		return e.wrap(of.name, nil, err)
	}
	e.kept, e.keptBytes = 0, 0
	seq := 0
	for _, p := range of.parts {
		n, err := e.part(ctx, out, p, seq)
		if err != nil {
			return err
		}
		seq += n
	}
	if err := out.Close(); err != nil {
		out.Abort()
		return e.wrap(of.name, nil, err)
	}
	e.st.Messages += e.kept
	e.st.Bytes += e.keptBytes
	return nil
}

// part writes the messages of one archive folder that p chooses into
// out, numbering them from seq+1; it returns how many it went through.
func (e *exporter) part(ctx context.Context, out folderOut, p part, seq int) (int, error) {
	f := p.f
	msgs, flags, err := p.selected(ctx, e.src)
	if err != nil {
		out.Abort()
		return 0, e.wrap(f.Name, nil, err)
	}
	if p.keep != nil {
		kept := msgs[:0:0]
		for _, m := range msgs {
			if p.keep(m) {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	if e.a.Format != archive.Maildir { // Walk's order: by position in the file
		sort.SliceStable(msgs, func(i, j int) bool {
			if msgs[i].FrameOffset != msgs[j].FrameOffset {
				return msgs[i].FrameOffset < msgs[j].FrameOffset
			}
			return msgs[i].FramePos < msgs[j].FramePos
		})
	}
	e.opt.Logger.Debug("exporting folder", "folder", f.Name, "messages", len(msgs))
	done := 0
	for done < len(msgs) {
		start := done
		err := e.a.Walk(ctx, f, msgs[done:], func(m *catalog.Message, r io.Reader) error {
			if err := ctx.Err(); err != nil {
				return fatal{err}
			}
			if m.ID != msgs[done].ID {
				return fatal{e.wrap(f.Name, m, fmt.Errorf("archive returned messages out of order (catalog id %d, expected %d)", m.ID, msgs[done].ID))}
			}
			err := e.message(out, f.Name, m, labelFlags(e.opt.Labels, flags[m.ID], m.Labels), seq+done+1, r)
			done++
			return err
		})
		var fe fatal
		switch {
		case err == nil:
			if done < len(msgs) { // cannot happen: Walk reports missing messages
				err = e.wrap(f.Name, msgs[done], errors.New("message not found in the archive"))
			}
		case errors.Is(err, errRestart):
			continue
		case errors.As(err, &fe):
			out.Abort()
			return 0, fe.err
		case done == start:
			// The archive could not even start this message: it is damaged.
			e.damaged(f.Name, msgs[done], err)
			done++
			continue
		default:
			continue // the stream broke after some messages: read on from the next
		}
		if err != nil {
			out.Abort()
			return 0, err
		}
	}
	return len(msgs), nil
}

// message writes one message, checking its bytes as they stream.
func (e *exporter) message(out folderOut, folder string, m *catalog.Message, flags []string, seq int, r io.Reader) error {
	cr := archive.CheckedOf(m, r)
	err := out.Put(m, flags, seq, cr)
	if cr.Err() == nil && err == nil {
		err = cr.Finish() // a writer that stopped short still checks the end
	}
	if derr := cr.Err(); derr != nil {
		return e.drop(out, folder, m, derr)
	}
	if err != nil {
		out.Drop()
		return fatal{e.wrap(folder, m, err)}
	}
	if err := out.Keep(); err != nil {
		return fatal{e.wrap(folder, m, err)}
	}
	e.kept++
	e.keptBytes += m.Size
	if e.opt.Progress != nil {
		e.opt.Progress(folder, m.Size)
	}
	return nil
}

// drop undoes a damaged message's output, records it and restarts the walk.
func (e *exporter) drop(out folderOut, folder string, m *catalog.Message, err error) error {
	if derr := out.Drop(); derr != nil {
		return fatal{e.wrap(folder, m, fmt.Errorf("removing the damaged message's output: %w", derr))}
	}
	e.damaged(folder, m, err)
	return errRestart
}

func (e *exporter) damaged(folder string, m *catalog.Message, err error) {
	if !errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	me := &archive.MessageError{Ref: archive.RefTo(e.opt.Account, folder, m), Err: err}
	e.st.Skipped++
	e.st.Damaged = append(e.st.Damaged, me)
	e.opt.Logger.Warn("damaged message skipped", "folder", folder, "uid", m.UID, "error", err)
}

// wrap names account, folder and (when m is set) message in err.
func (e *exporter) wrap(folder string, m *catalog.Message, err error) error {
	if m != nil {
		return &archive.MessageError{Ref: archive.RefTo(e.opt.Account, folder, m), Err: err}
	}
	if e.opt.Account != "" {
		return fmt.Errorf("account %s: folder %q: %w", e.opt.Account, folder, err)
	}
	return fmt.Errorf("folder %q: %w", folder, err)
}

// relativeName is a folder's name below the personal namespace prefix;
// INBOX and folders outside the prefix keep their names.
func relativeName(name, prefix string) string {
	if prefix == "" || len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return name
	}
	return name[len(prefix):]
}
