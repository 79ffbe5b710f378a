//go:build unix

// The POSIX implementation: openat(2) and O_NOFOLLOW from a directory
// descriptor.

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// IsReadOnlyErrno reports whether err is an errno that means the medium
// or the directory cannot be written by us.
func IsReadOnlyErrno(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// wrap turns an errno into the error callers see: a *ReadOnlyError for
// EROFS/EACCES/EPERM when write is set, else an *fs.PathError.
func wrap(op, path string, err error, write bool) error {
	if write && IsReadOnlyErrno(err) {
		return &ReadOnlyError{Op: op, Path: path, Err: err}
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFDIR:
		return "directory"
	}
	return "not a regular file"
}

// Dir is an open directory below (or at) a trusted root. A Dir that is
// dropped without Close is closed by the garbage collector.
type Dir struct {
	fd       int
	path     string
	borrowed bool // a view of another Dir's descriptor: Close does nothing
	cleanup  runtime.Cleanup
}

func newDir(fd int, path string) *Dir {
	d := &Dir{fd: fd, path: path}
	d.cleanup = runtime.AddCleanup(d, func(fd int) { unix.Close(fd) }, fd)
	return d
}

// OpenRoot opens the trusted root directory path (following symlinks:
// the user chose it).
func OpenRoot(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return newDir(fd, path), nil
}

// Path returns the directory's path, root included.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error {
	if d.fd < 0 || d.borrowed {
		return nil
	}
	d.cleanup.Stop()
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Sync fsyncs the directory, making its entries durable.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return &fs.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// Fd returns the directory's file descriptor, valid until Close.
func (d *Dir) Fd() int { return d.fd }

// openDirAt opens the directory name inside dirfd without following a
// symlink; create makes it (mode perm) when missing.
func openDirAt(dirfd int, dirPath, name string, create bool, perm fs.FileMode, changed *[]string) (int, error) {
	p := filepath.Join(dirPath, name)
	for try := 0; ; try++ {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == nil {
			return fd, nil
		}
		if errors.Is(err, unix.ENOENT) && create && try == 0 {
			if err := unix.Mkdirat(dirfd, name, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, wrap("mkdir", p, err, true)
			} else if err == nil {
				// Force the mode whatever the umask.
				if err := unix.Fchmodat(dirfd, name, uint32(perm.Perm()), 0); err != nil {
					return -1, wrap("chmod", p, err, true)
				}
				if changed != nil {
					*changed = append(*changed, dirPath)
				}
			}
			continue
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if serr := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
				k := kindOf(uint32(st.Mode))
				if k == "not a regular file" {
					k = "not a directory"
				}
				return -1, &UnsafeError{Path: p, Kind: k}
			}
		}
		return -1, &fs.PathError{Op: "open", Path: p, Err: err}
	}
}

// walk opens the directory rel below d, component by component. With no
// component it returns d itself (borrowed, Close does nothing) unless own
// is set (a duplicate descriptor).
func (d *Dir) walk(parts []string, create bool, perm fs.FileMode, changed *[]string, own bool) (*Dir, error) {
	cur := &Dir{fd: d.fd, path: d.path, borrowed: true}
	if len(parts) == 0 && own {
		fd, err := reopen(d)
		if err != nil {
			return nil, err
		}
		return newDir(fd, d.path), nil
	}
	for _, p := range parts {
		nfd, err := openDirAt(cur.fd, cur.path, p, create, perm, changed)
		cur.Close()
		if err != nil {
			return nil, err
		}
		cur = newDir(nfd, filepath.Join(cur.path, p))
	}
	return cur, nil
}

// OpenDir opens the directory rel below d; no component may be a symlink.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	parts, err := d.split(rel)
	if err != nil {
		return nil, err
	}
	return d.walk(parts, false, 0, nil, true)
}

// MkdirAll creates the directory rel below d and its missing parents with
// mode perm (forced, whatever the umask), refusing symlinks on the way. It
// appends to changed the path of each directory whose entries it changed,
// for the caller to fsync (SyncDirs) once for a batch.
func (d *Dir) MkdirAll(rel string, perm fs.FileMode, changed *[]string) error {
	parts, err := d.split(rel)
	if err != nil {
		return err
	}
	nd, err := d.walk(parts, true, perm, changed, false)
	if err != nil {
		return err
	}
	return nd.Close()
}

// parent opens the directory holding rel and returns it with the base name.
func (d *Dir) parent(rel string) (*Dir, string, error) {
	parts, err := d.split(rel)
	if err != nil {
		return nil, "", err
	}
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: "open", Path: filepath.Join(d.path, rel), Err: unix.EISDIR}
	}
	pd, err := d.walk(parts[:len(parts)-1], false, 0, nil, false)
	if err != nil {
		return nil, "", err
	}
	return pd, parts[len(parts)-1], nil
}

// OpenFile opens the regular file rel below d with flag (os.O_*) and, when
// it creates the file, mode perm forced by fchmod whatever the umask. A
// symlink, FIFO, device or socket at rel, or a symlinked directory on the
// way, is an *UnsafeError and is not opened (a FIFO is opened non-blocking,
// fstat'ed and closed if it appeared between the lstat and the open).
func (d *Dir) OpenFile(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	pd, name, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	defer pd.Close()
	return pd.openFileAt(name, flag, perm)
}

func (d *Dir) openFileAt(name string, flag int, perm fs.FileMode) (*os.File, error) {
	p := filepath.Join(d.path, name)
	write := flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0
	var st unix.Stat_t
	existed := true
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		existed = false
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: p, Err: unix.ENOENT}
		}
	} else if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &UnsafeError{Path: p, Kind: kindOf(uint32(st.Mode))}
	}
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &UnsafeError{Path: p, Kind: "symlink"}
		}
		if errors.Is(err, unix.ENXIO) { // a FIFO without reader, opened for writing
			return nil, &UnsafeError{Path: p, Kind: "FIFO"}
		}
		return nil, wrap("open", p, err, write)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &UnsafeError{Path: p, Kind: kindOf(uint32(st.Mode))}
	}
	if !existed || flag&os.O_EXCL != 0 {
		if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
			unix.Close(fd)
			return nil, wrap("chmod", p, err, true)
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Open opens the regular file rel below d for reading.
func (d *Dir) Open(rel string) (*os.File, error) { return d.OpenFile(rel, os.O_RDONLY, 0) }

// Lstat returns the FileInfo of rel below d without following a symlink
// at rel; a symlinked directory on the way is an *UnsafeError.
func (d *Dir) Lstat(rel string) (fs.FileInfo, error) {
	pd, name, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	defer pd.Close()
	var st unix.Stat_t
	p := filepath.Join(pd.path, name)
	if err := unix.Fstatat(pd.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return newInfo(name, &st), nil
}

// StatRegular is Lstat that also refuses (with an *UnsafeError) anything
// but a regular file at rel.
func (d *Dir) StatRegular(rel string) (fs.FileInfo, error) {
	fi, err := d.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		st := fi.Sys().(*unix.Stat_t)
		return nil, &UnsafeError{Path: filepath.Join(d.path, rel), Kind: kindOf(uint32(st.Mode))}
	}
	return fi, nil
}

// Remove removes the file rel below d (a symlink there is removed, never
// followed).
func (d *Dir) Remove(rel string) error {
	pd, name, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer pd.Close()
	if err := unix.Unlinkat(pd.fd, name, 0); err != nil {
		return wrap("remove", filepath.Join(pd.path, name), err, true)
	}
	return nil
}

// Rename renames oldRel to newRel, both below d; no directory on the way
// may be a symlink (a symlink being renamed is moved, not followed).
func (d *Dir) Rename(oldRel, newRel string) error { return RenameBetween(d, oldRel, d, newRel) }

// RenameBetween renames oldRel below from to newRel below to.
func RenameBetween(from *Dir, oldRel string, to *Dir, newRel string) error {
	od, on, err := from.parent(oldRel)
	if err != nil {
		return err
	}
	defer od.Close()
	nd, nn, err := to.parent(newRel)
	if err != nil {
		return err
	}
	defer nd.Close()
	if err := unix.Renameat(od.fd, on, nd.fd, nn); err != nil {
		if IsReadOnlyErrno(err) {
			return &ReadOnlyError{Op: "rename", Path: filepath.Join(nd.path, nn), Err: err}
		}
		return &os.LinkError{Op: "rename", Old: filepath.Join(od.path, on), New: filepath.Join(nd.path, nn), Err: err}
	}
	return nil
}

// reopen opens d again: a new open file description, whose directory
// read position is its own (a dup would share it).
func reopen(d *Dir) (int, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	return fd, nil
}

// ReadDir lists the directory rel below d, sorted by name (entries are not
// followed).
func (d *Dir) ReadDir(rel string) ([]fs.DirEntry, error) {
	nd, err := d.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	fd, err := reopen(nd)
	nd.Close()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), nd.path)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// SyncDir fsyncs the directory rel below d.
func (d *Dir) SyncDir(rel string) error {
	nd, err := d.OpenDir(rel)
	if err != nil {
		return err
	}
	defer nd.Close()
	return nd.Sync()
}

// Truncate truncates the regular file rel below d to size and fsyncs it.
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

// Chtimes sets the access and modification times of the regular file rel
// below d, not following a symlink.
func (d *Dir) Chtimes(rel string, atime, mtime time.Time) error {
	pd, name, err := d.parent(rel)
	if err != nil {
		return err
	}
	defer pd.Close()
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pd.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrap("chtimes", filepath.Join(pd.path, name), err, true)
	}
	return nil
}

// info is an fs.FileInfo built from an lstat.
type info struct {
	name string
	st   unix.Stat_t
}

func newInfo(name string, st *unix.Stat_t) *info { return &info{name: name, st: *st} }

func (i *info) Name() string       { return i.name }
func (i *info) Size() int64        { return i.st.Size }
func (i *info) ModTime() time.Time { return time.Unix(i.st.Mtim.Unix()) }
func (i *info) IsDir() bool        { return i.Mode().IsDir() }
func (i *info) Sys() any           { return &i.st }
func (i *info) Mode() fs.FileMode {
	m := fs.FileMode(i.st.Mode & 0o777)
	switch i.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if i.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// WalkDir walks the tree below root as filepath.WalkDir does (lexical
// order; fn gets paths joined to root, SkipDir and SkipAll work), but
// enters each directory with openat and O_NOFOLLOW from its parent's
// descriptor: a symlink is reported to fn as an entry and never entered,
// and a directory swapped for a symlink during the walk is reported to fn
// as an error (a second call for that directory, with the *UnsafeError).
func WalkDir(root string, fn fs.WalkDirFunc) error {
	d, err := OpenRoot(root)
	if err != nil {
		return fn(root, nil, err)
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fn(root, nil, &fs.PathError{Op: "fstat", Path: root, Err: err})
	}
	err = fn(root, fs.FileInfoToDirEntry(newInfo(filepath.Base(root), &st)), nil)
	if err == nil {
		err = walk(d, fn)
	}
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func walk(d *Dir, fn fs.WalkDirFunc) error {
	ents, err := d.ReadDir(".")
	if err != nil {
		if err := fn(d.path, nil, err); err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
		return nil
	}
	for _, e := range ents { // ReadDir sorts by name
		p := filepath.Join(d.path, e.Name())
		if err := fn(p, e, nil); err != nil {
			if errors.Is(err, fs.SkipDir) {
				if e.IsDir() {
					continue
				}
				return nil // the rest of this directory
			}
			return err
		}
		if !e.IsDir() {
			continue
		}
		fd, err := openDirAt(d.fd, d.path, e.Name(), false, 0, nil)
		if err != nil {
			if err := fn(p, e, err); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
			continue
		}
		sub := newDir(fd, p)
		err = walk(sub, fn)
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Tree looks up many files below d, opening each parent directory once
// (component by component, no symlink followed) and keeping it open until
// Close: checking the files of thousands of folders costs one fstatat each
// instead of a walk from the root each.
type Tree struct {
	d    *Dir
	dirs map[string]*Dir
}

// Tree returns a Tree of the directories below d; d stays owned by the
// caller and must outlive the Tree.
func (d *Dir) Tree() *Tree { return &Tree{d: d, dirs: map[string]*Dir{}} }

// parent returns the open directory holding rel (cached) and rel's base.
func (t *Tree) parent(rel string) (*Dir, string, error) {
	parts, err := t.d.split(rel)
	if err != nil {
		return nil, "", err
	}
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: "open", Path: filepath.Join(t.d.path, rel), Err: unix.EISDIR}
	}
	if len(parts) == 1 {
		return t.d, parts[0], nil
	}
	key := filepath.Join(parts[:len(parts)-1]...)
	if pd, ok := t.dirs[key]; ok {
		return pd, parts[len(parts)-1], nil
	}
	pd, err := t.d.walk(parts[:len(parts)-1], false, 0, nil, false)
	if err != nil {
		return nil, "", err
	}
	t.dirs[key] = pd
	return pd, parts[len(parts)-1], nil
}

// StatRegular is (*Dir).StatRegular through the Tree's open directories.
func (t *Tree) StatRegular(rel string) (fs.FileInfo, error) {
	var pd *Dir
	var name string
	// A clean path whose directory is already open (it was checked then)
	// is looked up without splitting it again.
	if i := strings.LastIndexByte(rel, filepath.Separator); i > 0 && filepath.Clean(rel) == rel {
		if d, ok := t.dirs[rel[:i]]; ok {
			pd, name = d, rel[i+1:]
		}
	}
	if pd == nil {
		var err error
		if pd, name, err = t.parent(rel); err != nil {
			return nil, err
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pd.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: filepath.Join(pd.path, name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &UnsafeError{Path: filepath.Join(pd.path, name), Kind: kindOf(uint32(st.Mode))}
	}
	return newInfo(name, &st), nil
}

// Close closes the directories the Tree opened (not d).
func (t *Tree) Close() error {
	var first error
	for k, pd := range t.dirs {
		if err := pd.Close(); err != nil && first == nil {
			first = err
		}
		delete(t.dirs, k)
	}
	return first
}
