//go:build unix

package archive

import (
	"io/fs"
	"time"

	"golang.org/x/sys/unix"
)

// changeTime is the inode change time (ctime) of a safefs FileInfo.
func changeTime(fi fs.FileInfo) (time.Time, bool) {
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(st.Ctim.Unix()), true
}
