//go:build windows

// The Windows implementation. Windows has no openat(2) and no O_NOFOLLOW,
// so each component below the root is checked with Lstat (a symlink, a
// junction or any other reparse point is refused, as is anything but a
// directory on the way and anything but a regular file at the end) before
// the path is opened. Unlike the POSIX implementation this is check-then-
// open: a component swapped for a link between the check and the open is
// not caught. The file is checked again after the open (Stat on the
// handle), so at least a non-regular file is never used. Modes are what
// Windows gives (no chmod bits); directories are not fsynced (Windows
// cannot open a directory for FlushFileBuffers; NTFS journals metadata).

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// IsReadOnlyErrno reports whether err means the medium or the directory
// cannot be written by us.
func IsReadOnlyErrno(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ERROR_ACCESS_DENIED) ||
		errors.Is(err, syscall.Errno(19)) // ERROR_WRITE_PROTECT
}

func wrap(op, path string, err error, write bool) error {
	if write && IsReadOnlyErrno(err) {
		return &ReadOnlyError{Op: op, Path: path, Err: err}
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// Dir is a directory below (or at) a trusted root, by path.
type Dir struct {
	path string
}

// OpenRoot opens the trusted root directory path (following links: the
// user chose it).
func OpenRoot(path string) (*Dir, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path, root included.
func (d *Dir) Path() string { return d.path }

// Close does nothing: a Windows Dir holds no handle.
func (d *Dir) Close() error { return nil }

// Sync does nothing on Windows (see the file comment).
func (d *Dir) Sync() error { return nil }

// Fd returns -1: a Windows Dir holds no handle.
func (d *Dir) Fd() int { return -1 }

func kindOfMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeIrregular != 0:
		return "reparse point"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return "not a regular file"
}

// dirAt checks (creating when create is set) the directory name inside
// parent: it must be a real directory, not a link.
func dirAt(parent, name string, create bool, perm fs.FileMode, changed *[]string) (string, error) {
	p := filepath.Join(parent, name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.Mkdir(p, perm.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", wrap("mkdir", p, err, true)
		} else if err == nil && changed != nil {
			*changed = append(*changed, parent)
		}
		fi, err = os.Lstat(p)
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() || fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		k := kindOfMode(fi.Mode())
		if k == "not a regular file" {
			k = "not a directory"
		}
		return "", &UnsafeError{Path: p, Kind: k}
	}
	return p, nil
}

func (d *Dir) walk(parts []string, create bool, perm fs.FileMode, changed *[]string) (*Dir, error) {
	cur := d.path
	for _, p := range parts {
		next, err := dirAt(cur, p, create, perm, changed)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return &Dir{path: cur}, nil
}

// OpenDir opens the directory rel below d; no component may be a link.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	parts, err := d.split(rel)
	if err != nil {
		return nil, err
	}
	return d.walk(parts, false, 0, nil)
}

// MkdirAll creates the directory rel below d and its missing parents.
func (d *Dir) MkdirAll(rel string, perm fs.FileMode, changed *[]string) error {
	parts, err := d.split(rel)
	if err != nil {
		return err
	}
	_, err = d.walk(parts, true, perm, changed)
	return err
}

func (d *Dir) parent(rel string) (*Dir, string, error) {
	parts, err := d.split(rel)
	if err != nil {
		return nil, "", err
	}
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: "open", Path: filepath.Join(d.path, rel), Err: syscall.EISDIR}
	}
	pd, err := d.walk(parts[:len(parts)-1], false, 0, nil)
	if err != nil {
		return nil, "", err
	}
	return pd, parts[len(parts)-1], nil
}

// OpenFile opens the regular file rel below d with flag (os.O_*); a link
// or special file at rel or a linked directory on the way is an
// *UnsafeError.
func (d *Dir) OpenFile(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	pd, name, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(pd.path, name)
	write := flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0
	if fi, err := os.Lstat(p); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, &UnsafeError{Path: p, Kind: kindOfMode(fi.Mode())}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	} else if flag&os.O_CREATE == 0 {
		return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT}
	}
	f, err := os.OpenFile(p, flag, perm.Perm())
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, wrap("open", p, err, write)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, &UnsafeError{Path: p, Kind: kindOfMode(fi.Mode())}
	}
	return f, nil
}

// Open opens the regular file rel below d for reading.
func (d *Dir) Open(rel string) (*os.File, error) { return d.OpenFile(rel, os.O_RDONLY, 0) }

// Lstat returns the FileInfo of rel below d without following a link at
// rel; a linked directory on the way is an *UnsafeError.
func (d *Dir) Lstat(rel string) (fs.FileInfo, error) {
	pd, name, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	return os.Lstat(filepath.Join(pd.path, name))
}

// StatRegular is Lstat that also refuses anything but a regular file.
func (d *Dir) StatRegular(rel string) (fs.FileInfo, error) {
	fi, err := d.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafeError{Path: filepath.Join(d.path, rel), Kind: kindOfMode(fi.Mode())}
	}
	return fi, nil
}

// Remove removes the file rel below d (a link there is removed, never
// followed).
func (d *Dir) Remove(rel string) error {
	pd, name, err := d.parent(rel)
	if err != nil {
		return err
	}
	p := filepath.Join(pd.path, name)
	if err := os.Remove(p); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return wrap("remove", p, err, true)
	}
	return nil
}

// Rename renames oldRel to newRel, both below d.
func (d *Dir) Rename(oldRel, newRel string) error { return RenameBetween(d, oldRel, d, newRel) }

// RenameBetween renames oldRel below from to newRel below to.
func RenameBetween(from *Dir, oldRel string, to *Dir, newRel string) error {
	od, on, err := from.parent(oldRel)
	if err != nil {
		return err
	}
	nd, nn, err := to.parent(newRel)
	if err != nil {
		return err
	}
	oldp, newp := filepath.Join(od.path, on), filepath.Join(nd.path, nn)
	if err := os.Rename(oldp, newp); err != nil {
		if IsReadOnlyErrno(err) {
			return &ReadOnlyError{Op: "rename", Path: newp, Err: err}
		}
		return err
	}
	return nil
}

// ReadDir lists the directory rel below d, sorted by name.
func (d *Dir) ReadDir(rel string) ([]fs.DirEntry, error) {
	nd, err := d.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(nd.path)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// SyncDir checks the directory rel below d; Windows does not fsync
// directories.
func (d *Dir) SyncDir(rel string) error {
	_, err := d.OpenDir(rel)
	return err
}

// Truncate truncates the regular file rel below d to size and syncs it.
func (d *Dir) Truncate(rel string, size int64) error {
	f, err := d.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// Chtimes sets the times of the regular file rel below d.
func (d *Dir) Chtimes(rel string, atime, mtime time.Time) error {
	if _, err := d.StatRegular(rel); err != nil {
		return err
	}
	p := filepath.Join(d.path, rel)
	if err := os.Chtimes(p, atime, mtime); err != nil {
		return wrap("chtimes", p, err, true)
	}
	return nil
}

// WalkDir walks the tree below root as filepath.WalkDir does; a link is
// reported to fn as an entry and never entered.
func WalkDir(root string, fn fs.WalkDirFunc) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e != nil && e.Type()&(fs.ModeSymlink|fs.ModeIrregular) != 0 && e.IsDir() {
			return fn(p, e, &UnsafeError{Path: p, Kind: kindOfMode(e.Type())})
		}
		return fn(p, e, err)
	})
}

// Tree looks up many files below d (on Windows, each from the root).
type Tree struct{ d *Dir }

// Tree returns a Tree of the directories below d.
func (d *Dir) Tree() *Tree { return &Tree{d: d} }

// StatRegular is (*Dir).StatRegular.
func (t *Tree) StatRegular(rel string) (fs.FileInfo, error) { return t.d.StatRegular(rel) }

// Close does nothing.
func (t *Tree) Close() error { return nil }
