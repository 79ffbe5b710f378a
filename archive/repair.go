package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// repair brings the files back to what the catalog says after a run was
// killed: mbox files are truncated to their committed size (dropping torn
// frames and uncommitted messages), and Maildir files that a killed run
// delivered but never committed are removed (the next run fetches them
// again). Runs that never ended are recorded as killed.
func (a *Archive) repair() error {
	folders, err := a.Cat.Folders()
	if err != nil {
		return err
	}
	if a.Format.isMbox() {
		for _, f := range folders {
			st, err := safefs.StatRegular(a.Dir, f.Path)
			if os.IsNotExist(err) && f.CommittedSize == 0 {
				continue
			}
			if err != nil {
				return fmt.Errorf("folder %q: %w", f.Name, err)
			}
			switch {
			case st.Size() > f.CommittedSize:
				if err := truncateSync(a.Dir, f.Path, f.CommittedSize); err != nil {
					return fmt.Errorf("folder %q: trimming uncommitted tail of %s: %w", f.Name, f.Path, err)
				}
			case st.Size() < f.CommittedSize:
				return fmt.Errorf("folder %q: %s is %d bytes but %d were committed: the file lost data (restore it from another copy, or run verify)", f.Name, f.Path, st.Size(), f.CommittedSize)
			}
		}
	}
	unclean, err := a.Cat.CloseKilledRuns()
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
		all, err := a.Cat.All(f.ID)
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(all))
		for _, m := range all {
			known[maildir.KeyOf(filepath.Base(m.File))] = true
		}
		for _, n := range names {
			k := maildir.KeyOf(filepath.Base(n))
			if strings.HasSuffix(k, ".mailkeep") && !known[k] {
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

// truncateSync cuts the regular file rel below the archive root to size
// and fsyncs it; a symlink or special file there is refused, never
// followed (*safefs.UnsafeError).
func truncateSync(root, rel string, size int64) error {
	return safefs.Truncate(root, rel, size)
}
