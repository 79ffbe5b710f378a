//go:build !linux

package export

import (
	"fmt"
	"io/fs"
	"os"
)

// renameNew renames old to new, refusing to replace an existing new (a
// check first: there is no RENAME_NOREPLACE here).
func renameNew(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return fmt.Errorf("rename %s: %w", new, fs.ErrExist)
	}
	return os.Rename(old, new)
}

// syncFiles makes the data of the written files durable, one fsync each
// (no syncfs outside Linux).
func syncFiles(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
	}
	return nil
}
