// Package verify checks an archive against its catalog without changing
// either: every catalogued message (expunged ones included) is read back
// from its mbox frame or Maildir file and its size and SHA-256 compared
// with the catalog, and every file under the archive directory must be one
// the catalog accounts for. It has no network code; comparing the catalog
// with the live server is the fetchers' business (imapsrc.Compare).
//
// mbox folders are read front to back with one decompressor, as
// archive.Walk does, so each frame is decompressed once. A message that
// fails is read again from its own recorded position, which tells a
// damaged message from a stream that merely lost its place; after a
// decompression error the rest of that frame is reported and reading goes
// on at the next frame (zstd frames and gzip members are independent).
//
// Memory does not grow with the archive: catalog rows are streamed in
// storage order and message bytes pass through fixed buffers.
package verify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/internal/glob"
)

// Kind classifies a finding.
type Kind string

// The kinds of findings. Server* kinds are filled in by callers that
// compare the catalog with the server (see cmd/mailkeep).
const (
	Missing    Kind = "missing"    // message file, mbox file, or message past the end of its file
	Unreadable Kind = "unreadable" // read or decompression error: a damaged frame, an I/O error
	Checksum   Kind = "checksum"   // the bytes differ from the catalogued SHA-256
	Size       Kind = "size"       // the byte count differs from the catalog
	Renamed    Kind = "renamed"    // a Maildir message lives under another name than catalogued
	Stray      Kind = "stray"      // a file the catalog does not account for
	Truncated  Kind = "truncated"  // an mbox file shorter than its committed size
	Tail       Kind = "tail"       // bytes past an mbox file's committed size
	Gap        Kind = "gap"        // data between or after catalogued messages of an mbox file
	Leftover   Kind = "leftover"   // a temporary file of an interrupted or running backup

	ServerValidity    Kind = "server-uidvalidity"  // the folder's UIDVALIDITY differs from the catalog's
	ServerNew         Kind = "server-new"          // messages on the server the archive lacks
	ServerGone        Kind = "server-gone"         // catalogued live messages the server no longer has
	ServerOnlyFolder  Kind = "server-only-folder"  // a folder on the server, not in the archive
	ArchiveOnlyFolder Kind = "archive-only-folder" // a live archive folder the server no longer has
	ServerError       Kind = "server-error"        // the folder could not be compared
)

// Finding is one problem or note. UID (IMAP) or UIDL (POP3) names the
// message when the finding is about one; UIDs and Count summarise a set of
// messages (server comparisons).
type Finding struct {
	Folder      string `json:"folder,omitempty"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	UID         uint32 `json:"uid,omitempty"`
	UIDL        string `json:"uidl,omitempty"`
	UIDs        string `json:"uids,omitempty"`
	Count       int    `json:"count,omitempty"`
	Expunged    bool   `json:"expunged,omitempty"`
	File        string `json:"file,omitempty"`
	Kind        Kind   `json:"kind"`
	Detail      string `json:"detail"`
}

// String is the finding as one line of text: folder, message, file, what.
func (f Finding) String() string {
	var b strings.Builder
	if f.Folder != "" {
		fmt.Fprintf(&b, "folder %q ", f.Folder)
	}
	switch {
	case f.UIDL != "":
		fmt.Fprintf(&b, "uidl %q ", f.UIDL)
	case f.UID != 0:
		fmt.Fprintf(&b, "uid %d ", f.UID)
		if f.UIDValidity != 0 {
			fmt.Fprintf(&b, "(uidvalidity %d) ", f.UIDValidity)
		}
	case f.UIDs != "":
		fmt.Fprintf(&b, "uids %s ", f.UIDs)
	}
	if f.Expunged {
		b.WriteString("(expunged on the server) ")
	}
	if f.File != "" {
		fmt.Fprintf(&b, "in %s ", f.File)
	}
	fmt.Fprintf(&b, "%s: %s", f.Kind, f.Detail)
	return b.String()
}

// Options configure Run.
type Options struct {
	// Folders and Exclude select folders by glob (package glob); with
	// neither, every folder is verified and files outside any folder are
	// checked too.
	Folders, Exclude []string
	// OnFinding, when set, is called for each finding as it is made;
	// problem tells problems from notes.
	OnFinding func(f Finding, problem bool)
	// Progress, when set, is called after each message.
	Progress func(folder string, n int, bytes int64)
	// Keep bounds how many problems (and, separately, notes) the report
	// lists; counts are always complete. Default 10000.
	Keep   int
	Logger *slog.Logger
}

// Report is the outcome of a verification.
type Report struct {
	Dir      string    `json:"archive"`
	Format   string    `json:"format"`
	Folders  int       `json:"folders"`
	Messages int       `json:"messages"` // messages checked
	Bytes    int64     `json:"bytes"`    // their catalogued size
	Problems int       `json:"problem_count"`
	Notes    int       `json:"note_count"`
	Problem  []Finding `json:"problems"`
	Note     []Finding `json:"notes"`
	// Capped says the lists were cut at Options.Keep.
	Capped bool `json:"capped,omitempty"`
}

// OK reports whether verification found no problem.
func (r *Report) OK() bool { return r.Problems == 0 }

// Add records a finding (callers add server comparisons this way).
func (r *Report) Add(f Finding, problem bool, keep int) {
	if keep <= 0 {
		keep = 10000
	}
	list, n := &r.Note, &r.Notes
	if problem {
		list, n = &r.Problem, &r.Problems
	}
	*n++
	if len(*list) < keep {
		*list = append(*list, f)
	} else {
		r.Capped = true
	}
}

// verifier is one Run.
type verifier struct {
	ctx     context.Context
	a       *archive.Archive
	opt     Options
	log     *slog.Logger
	rep     *Report
	sel     *glob.Set
	pending bool // a backup run has not ended: running, or killed and not yet repaired
}

// isPending reports whether a backup is pending now (one that started
// after verify did counts: its files appear while verify runs).
func (v *verifier) isPending() bool {
	if !v.pending {
		p, err := pendingBackup(v.ctx, v.a.Cat)
		v.pending = err == nil && p
	}
	return v.pending
}

// Run verifies the archive a, which should be opened with
// archive.Options{ReadOnly: true}: Run only reads, takes no lock and
// repairs nothing. Damage is reported in the Report; an error means the
// verification itself could not be done (catalog unreadable, ctx ended).
func Run(ctx context.Context, a *archive.Archive, opt Options) (*Report, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Keep <= 0 {
		opt.Keep = 10000
	}
	v := &verifier{ctx: ctx, a: a, opt: opt, log: opt.Logger, sel: glob.New(opt.Folders, opt.Exclude),
		rep: &Report{Dir: a.Dir, Format: string(a.Format), Problem: []Finding{}, Note: []Finding{}}}
	var err error
	if v.pending, err = pendingBackup(ctx, a.Cat); err != nil {
		return v.rep, fmt.Errorf("archive %s: reading runs: %w", a.Dir, err)
	}
	folders, err := a.Cat.Folders(ctx)
	if err != nil {
		return v.rep, fmt.Errorf("archive %s: reading folders: %w", a.Dir, err)
	}
	for _, f := range folders {
		if !v.sel.Match(folderPath(f)) || f.IsView() { // a Gmail label view: its messages are All Mail's
			continue
		}
		v.rep.Folders++
		if err := v.folder(f); err != nil {
			return v.rep, err
		}
	}
	if len(opt.Folders) == 0 && len(opt.Exclude) == 0 {
		if err := v.strays(folders); err != nil {
			return v.rep, err
		}
	}
	return v.rep, ctx.Err()
}

func (v *verifier) folder(f *catalog.Folder) error {
	v.log.Debug("verifying folder", "folder", f.Name, "path", f.Path)
	if v.a.Format == archive.Maildir {
		return v.maildirFolder(f)
	}
	return v.mboxFolder(f)
}

// add records a finding.
func (v *verifier) add(f Finding, problem bool) {
	v.rep.Add(f, problem, v.opt.Keep)
	if v.opt.OnFinding != nil {
		v.opt.OnFinding(f, problem)
	}
}

// checked counts a message as verified (whatever the outcome).
func (v *verifier) checked(folder string, size int64) {
	v.rep.Messages++
	v.rep.Bytes += size
	if v.opt.Progress != nil {
		v.opt.Progress(folder, 1, size)
	}
}

// folderPath is a catalogued folder's name as globs see it.
func folderPath(f *catalog.Folder) string {
	return layout.Join(layout.Components(f.Name, f.Delim), '/')
}

// pendingBackup reports whether a backup run has not ended: it is running
// now, or it was killed and no later run has repaired the archive yet.
// Its uncommitted data is then expected, and reported as notes.
func pendingBackup(ctx context.Context, c *catalog.Catalog) (bool, error) {
	return c.BackupPending(ctx)
}

// canceled tells the folder loops to stop when ctx has ended.
func (v *verifier) canceled() error {
	if err := v.ctx.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
