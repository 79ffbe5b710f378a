package archive

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// repair brings the files back to what the catalog says after a run was
// killed. Runs that never ended are recorded as killed.
//
// Bytes are cut or files removed only where the catalog proves that a
// killed run of mailkeep wrote them and never committed them:
//   - an mbox file longer than its committed size is truncated to it when a
//     run was killed since the last open (a torn frame, uncommitted
//     messages); otherwise nobody can say who wrote the tail, so it is first
//     copied, durably, to "<file>.tail-<time>" beside the file, and only
//     then cut off (verify reports the copy);
//   - a Maildir file named by mailkeep (".mailkeep" keys) that the catalog
//     does not know is removed only when its inode changed after the killed
//     run started (the next run fetches the message again); older unknown
//     files are left alone.
func (a *Archive) repair(ctx context.Context) error {
	folders, err := a.Cat.Folders(ctx)
	if err != nil {
		return err
	}
	folders = ownFolders(folders) // a Gmail label view has no file
	killedSince, err := a.Cat.UnfinishedSince(ctx)
	if err != nil {
		return err
	}
	if a.Format.isMbox() {
		if err := a.repairMbox(folders, killedSince); err != nil {
			return err
		}
	}
	unclean, err := a.Cat.CloseKilledRuns(ctx)
	if err != nil || unclean == 0 || a.Format != Maildir {
		return err
	}
	for _, f := range folders {
		md, err := maildir.OpenFolderIn(a.Dir, f.Path, isSubMaildir(f.Path))
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
		if err := md.CleanTmp(); err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
		names, err := md.Scan()
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
		all, err := a.Cat.All(ctx, f.ID)
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(all))
		for _, m := range all {
			known[maildir.KeyOf(filepath.Base(m.File))] = true
		}
		for _, n := range names {
			k := maildir.KeyOf(filepath.Base(n))
			if strings.HasSuffix(k, ".mailkeep") && !known[k] && changedSince(a.Dir, filepath.Join(f.Path, n), killedSince) {
				if err := md.Remove(n); err != nil {
					return fmt.Errorf("folder %q: removing uncommitted %s: %w", f.Name, n, err)
				}
			}
		}
		err = md.Sync()
		md.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// repairMbox checks each mbox file against its committed size (see
// repair). The parent directories are opened once each (no symlink
// followed) and each file is lstat'ed in its directory: a symlink or
// special file at a folder's path is refused, never followed.
func (a *Archive) repairMbox(folders []*catalog.Folder, killedSince time.Time) error {
	root, err := safefs.OpenRoot(a.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tree := root.Tree()
	defer tree.Close()
	for _, f := range folders {
		st, err := tree.StatRegular(f.Path)
		if os.IsNotExist(err) && f.CommittedSize == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
		switch {
		case st.Size() > f.CommittedSize:
			if killedSince.IsZero() {
				if err := saveTail(a.Dir, f.Path, f.CommittedSize, st.Size()); err != nil {
					return fmt.Errorf("folder %q: keeping %d bytes past the committed size of %s: %w", f.Name, st.Size()-f.CommittedSize, f.Path, err)
				}
			}
			if err := truncateSync(a.Dir, f.Path, f.CommittedSize); err != nil {
				return fmt.Errorf("folder %q: trimming uncommitted tail of %s: %w", f.Name, f.Path, err)
			}
		case st.Size() < f.CommittedSize:
			return fmt.Errorf("folder %q: %s is %d bytes but %d were committed: the file lost data (restore it from another copy, or run verify)", f.Name, f.Path, st.Size(), f.CommittedSize)
		}
	}
	return nil
}

// truncateSync cuts the regular file rel below the archive root to size
// and fsyncs it; a symlink or special file there is refused, never
// followed (*safefs.UnsafeError).
func truncateSync(root, rel string, size int64) error {
	return safefs.Truncate(root, rel, size)
}

// saveTail copies the bytes [from, to) of the file rel below the archive
// root to a new file beside it, durably, before they are cut off.
func saveTail(root, rel string, from, to int64) error {
	src, err := safefs.Open(root, rel)
	if err != nil {
		return err
	}
	defer src.Close()
	name := rel + ".tail-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	dst, err := safefs.OpenFile(root, name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, from, to-from)); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	slog.Warn("bytes past the committed size that no killed run accounts for were kept aside", "file", name, "bytes", to-from)
	return safefs.SyncDir(root, filepath.Dir(rel))
}

// changedSince reports whether the inode of the file rel below root
// changed (ctime: created, renamed or written) at or after t.
func changedSince(root, rel string, t time.Time) bool {
	if t.IsZero() {
		return false
	}
	fi, err := safefs.Lstat(root, rel)
	if err != nil {
		return false
	}
	ctime, ok := changeTime(fi)
	if !ok {
		return false
	}
	return !ctime.Before(t.Add(-time.Second))
}
