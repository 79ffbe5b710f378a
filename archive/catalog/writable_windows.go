//go:build windows

package catalog

import (
	"os"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// oNoFollow: Windows has no O_NOFOLLOW; the catalog's temporary files are
// created with O_EXCL, which fails on an existing name, link or not.
const oNoFollow = 0

// writable reports whether we may write the file path (when it exists):
// nil, or a *safefs.ReadOnlyError. Windows has no access(2): a read-only
// attribute on the file is what it checks; a directory we cannot write
// shows up as an error from the first write.
func writable(dir, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o200 == 0 {
		return &safefs.ReadOnlyError{Op: "write", Path: path, Err: os.ErrPermission}
	}
	return nil
}
