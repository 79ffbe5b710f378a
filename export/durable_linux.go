package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// renameNew renames old to new, refusing to replace an existing new
// (RENAME_NOREPLACE; on file systems without it, a check first).
func renameNew(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, serr := os.Lstat(new); serr == nil {
			return fmt.Errorf("rename %s: %w", new, fs.ErrExist)
		}
		return os.Rename(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// syncFiles makes the data of the written files durable with one
// syncfs(2) of their file system: an fsync per exported message would cost
// more than the export.
func syncFiles(paths []string) error {
	d, err := os.Open(filepath.Dir(paths[0]))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}
