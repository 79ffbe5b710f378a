// Package safefs opens, creates, renames and removes files below a trusted
// directory (an archive) without ever following a symbolic link or opening
// a special file there.
//
// The root directory itself is trusted as the user named it (it may be a
// symlink to another disk). Every path below it is walked one component at
// a time with openat(2) and O_NOFOLLOW|O_DIRECTORY, so a symlinked
// directory anywhere on the way is refused, even one that points back
// inside the root; the last component is opened with O_NOFOLLOW and
// O_NONBLOCK (a planted FIFO cannot block the open) after an lstat, and
// anything but a regular file (FIFO, device, socket) is refused, also
// after the open (fstat), so a swap between the two is caught. A refusal
// is an *UnsafeError naming the path (errors.Is(err, ErrUnsafe)).
//
// Files are created with their mode forced by fchmod and directories by
// fchmodat, whatever the umask. A write refused because the medium is
// read-only or not ours (EROFS, EACCES, EPERM) is a *ReadOnlyError
// (errors.Is(err, ErrReadOnly)), so callers can tell "cannot write here"
// apart from a damaged archive.
package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrUnsafe is matched (errors.Is) by every *UnsafeError.
var ErrUnsafe = errors.New("symlink or special file inside the archive")

// ErrReadOnly is matched (errors.Is) by every *ReadOnlyError.
var ErrReadOnly = errors.New("cannot write here")

// UnsafeError is a path below the root that is a symlink, a special file
// or otherwise not what mailkeep may use. Nothing was opened through it.
type UnsafeError struct {
	Path string // the offending path, root included
	Kind string // "symlink", "FIFO", "device", "socket", "not a directory", "not a regular file", "path outside the archive"
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s is a %s inside the archive: refused (mailkeep never follows symlinks or opens special files in an archive; remove it or restore the original)", e.Path, e.Kind)
}

// Is makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

// ReadOnlyError is a write that the file system refused for lack of
// permission or because it is mounted read-only.
type ReadOnlyError struct {
	Op   string
	Path string
	Err  error // the errno: EROFS, EACCES or EPERM
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("cannot write here: %s %s: %v", e.Op, e.Path, e.Err)
}

// Is makes errors.Is(err, ErrReadOnly) true.
func (e *ReadOnlyError) Is(target error) bool { return target == ErrReadOnly }

// Unwrap gives the errno (errors.Is(err, syscall.EROFS)).
func (e *ReadOnlyError) Unwrap() error { return e.Err }

// split cleans rel and returns its components; rel must stay below d.
func (d *Dir) split(rel string) ([]string, error) {
	if filepath.IsAbs(rel) {
		return nil, &UnsafeError{Path: rel, Kind: "path outside the archive"}
	}
	c := filepath.Clean(rel)
	if c == "." {
		return nil, nil
	}
	parts := strings.Split(c, string(filepath.Separator))
	for _, p := range parts {
		if p == ".." {
			return nil, &UnsafeError{Path: filepath.Join(d.path, rel), Kind: "path outside the archive"}
		}
	}
	return parts, nil
}

// Path-based helpers: root is trusted, rel is walked safely.

func withRoot[T any](root string, fn func(*Dir) (T, error)) (T, error) {
	d, err := OpenRoot(root)
	if err != nil {
		var zero T
		return zero, err
	}
	defer d.Close()
	return fn(d)
}

// OpenFile is (*Dir).OpenFile on the root directory root.
func OpenFile(root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	return withRoot(root, func(d *Dir) (*os.File, error) { return d.OpenFile(rel, flag, perm) })
}

// Open is (*Dir).Open on the root directory root.
func Open(root, rel string) (*os.File, error) {
	return withRoot(root, func(d *Dir) (*os.File, error) { return d.Open(rel) })
}

// Lstat is (*Dir).Lstat on the root directory root.
func Lstat(root, rel string) (fs.FileInfo, error) {
	return withRoot(root, func(d *Dir) (fs.FileInfo, error) { return d.Lstat(rel) })
}

// StatRegular is (*Dir).StatRegular on the root directory root.
func StatRegular(root, rel string) (fs.FileInfo, error) {
	return withRoot(root, func(d *Dir) (fs.FileInfo, error) { return d.StatRegular(rel) })
}

// MkdirAll is (*Dir).MkdirAll on the root directory root.
func MkdirAll(root, rel string, perm fs.FileMode, changed *[]string) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.MkdirAll(rel, perm, changed) })
	return err
}

// Truncate is (*Dir).Truncate on the root directory root.
func Truncate(root, rel string, size int64) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.Truncate(rel, size) })
	return err
}

// Remove is (*Dir).Remove on the root directory root.
func Remove(root, rel string) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.Remove(rel) })
	return err
}

// ReadDir is (*Dir).ReadDir on the root directory root.
func ReadDir(root, rel string) ([]fs.DirEntry, error) {
	return withRoot(root, func(d *Dir) ([]fs.DirEntry, error) { return d.ReadDir(rel) })
}

// SyncDir is (*Dir).SyncDir on the root directory root.
func SyncDir(root, rel string) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.SyncDir(rel) })
	return err
}

// Rel returns path relative to root, refusing a path outside root (the
// callers that are handed full paths use it to get back the part to walk).
func Rel(root, path string) (string, error) {
	r, err := filepath.Rel(root, path)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", &UnsafeError{Path: path, Kind: "path outside the archive"}
	}
	return r, nil
}

// Rename is (*Dir).Rename on the root directory root.
func Rename(root, oldRel, newRel string) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.Rename(oldRel, newRel) })
	return err
}

// Chtimes is (*Dir).Chtimes on the root directory root.
func Chtimes(root, rel string, atime, mtime time.Time) error {
	_, err := withRoot(root, func(d *Dir) (struct{}, error) { return struct{}{}, d.Chtimes(rel, atime, mtime) })
	return err
}
