// Package durable holds the few file-system steps that make a change
// survive a crash: fsync of a directory after its entries changed,
// directory creation that fsyncs the parents it changed, and replacing a
// small file atomically (temporary file, fsync, rename, directory fsync).
// The archive, export, the token store and the metrics file share them.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// SyncDir fsyncs the directory dir, making its entries (created, renamed,
// removed files) durable. Anything but a directory at dir (a FIFO, whose
// plain open would block) is an error, never opened.
//
// The archive does not use this package for its own files: those go
// through internal/safefs, which also refuses symlinks below the archive.
// durable serves paths the user chose (export target, token store,
// metrics file), where a symlinked directory is the user's choice.
func SyncDir(dir string) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|openDirFlags, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncDirFile(d); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// SyncDirs fsyncs each directory of dirs once.
func SyncDirs(dirs []string) error {
	for i, d := range dirs {
		if slices.Contains(dirs[:i], d) {
			continue
		}
		if err := SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Mkdir creates dir and its missing parents with mode perm and appends to
// changed the directory holding each one it created, for the caller to
// SyncDirs (batching the fsyncs of several Mkdir calls). It fails if dir
// exists and is not a directory.
func Mkdir(dir string, perm fs.FileMode, changed *[]string) error {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := Mkdir(parent, perm, changed); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	*changed = append(*changed, parent)
	return nil
}

// MkdirAll creates dir and its missing parents with mode perm and makes
// them durable.
func MkdirAll(dir string, perm fs.FileMode) error {
	var changed []string
	if err := Mkdir(dir, perm, &changed); err != nil {
		return err
	}
	return SyncDirs(changed)
}

// WriteFile replaces the file at path with data, atomically and durably:
// a temporary file in the same directory (named ".BASE.tmp-*", so that
// programs that read "*.prom" or "*.json" there never see it) is written
// with mode perm, fsynced and renamed over path, and the directory is
// fsynced. Missing directories are created with mode dirPerm. On failure
// the previous file is untouched and no temporary file is left.
func WriteFile(path string, data []byte, perm, dirPerm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}
