//go:build windows

package maildir

import (
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// setMtime sets the open file's access and modification times
// (SetFileTime on its handle).
func setMtime(f *os.File, mtime time.Time) error {
	ft := windows.NsecToFiletime(mtime.UnixNano())
	return windows.SetFileTime(windows.Handle(f.Fd()), nil, &ft, &ft)
}
