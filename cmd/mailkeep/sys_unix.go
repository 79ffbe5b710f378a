//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// saverDirFlags open only a directory.
const saverDirFlags = unix.O_DIRECTORY | unix.O_CLOEXEC

// create makes the new file name in the attachments directory with
// openat(O_CREAT|O_EXCL|O_NOFOLLOW): never over an existing file, never
// through a symlink (both are fs.ErrExist).
func (s *saver) create(name string) (*os.File, error) {
	fd, err := unix.Openat(int(s.dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(s.path, name)), nil
}

// remove removes name from the attachments directory.
func (s *saver) remove(name string) { unix.Unlinkat(int(s.dir.Fd()), name, 0) }

// writableDir reports whether the archive directory can be written (false
// on read-only media, whoever runs mailkeep: access(2) reports EROFS to
// root as well).
func writableDir(dir string) bool {
	return syscall.Access(dir, 2 /* W_OK */) == nil
}
