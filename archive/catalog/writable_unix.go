//go:build unix

package catalog

import (
	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// oNoFollow refuses a symlink at a file the catalog creates.
const oNoFollow = unix.O_NOFOLLOW

// writable reports whether we may create and write files in dir and write
// the file path (when it exists): nil, or a *safefs.ReadOnlyError.
func writable(dir, path string) error {
	if err := unix.Access(dir, unix.W_OK); err != nil && safefs.IsReadOnlyErrno(err) {
		return &safefs.ReadOnlyError{Op: "write", Path: dir, Err: err}
	}
	if err := unix.Access(path, unix.W_OK); err != nil && safefs.IsReadOnlyErrno(err) {
		return &safefs.ReadOnlyError{Op: "write", Path: path, Err: err}
	}
	if fsReadOnly(dir) {
		return &safefs.ReadOnlyError{Op: "write", Path: dir, Err: unix.EROFS}
	}
	return nil
}
