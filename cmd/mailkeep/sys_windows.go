//go:build windows

package main

import (
	"os"
	"path/filepath"
)

const saverDirFlags = 0

// create makes the new file name in the attachments directory with
// O_CREATE|O_EXCL (CREATE_NEW): it fails on any existing name, a link
// included (fs.ErrExist), so nothing is written through a link.
func (s *saver) create(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(s.path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// remove removes name from the attachments directory.
func (s *saver) remove(name string) { os.Remove(filepath.Join(s.path, name)) }

// writableDir reports whether the archive directory can be written: a
// probe file is created and removed (Windows has no access(2)).
func writableDir(dir string) bool {
	f, err := os.CreateTemp(dir, ".mailkeep-probe-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}
