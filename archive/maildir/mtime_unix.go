//go:build unix

package maildir

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setMtime sets the open file's access and modification times.
func setMtime(f *os.File, mtime time.Time) error {
	ts := unix.NsecToTimeval(mtime.UnixNano())
	return unix.Futimes(int(f.Fd()), []unix.Timeval{ts, ts})
}
