//go:build unix

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTreeStatRegular: a Tree answers as (*Dir).StatRegular does, for
// files in the root and in nested directories opened once, and refuses
// symlinks (to files, to directories on the way, to outside the root)
// and special files without following them.
func TestTreeStatRegular(t *testing.T) {
	root, _ := setup(t)
	must(t, os.WriteFile(filepath.Join(root, "a", "b", "g"), []byte("twelve bytes"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "top"), []byte("top"), 0o600))
	must(t, os.Symlink("f", filepath.Join(root, "a", "lnk")))
	must(t, unix.Mkfifo(filepath.Join(root, "a", "pipe"), 0o600))
	d, err := OpenRoot(root)
	must(t, err)
	defer d.Close()
	tree := d.Tree()
	tests := []struct {
		rel     string
		size    int64  // for a regular file
		unsafe  string // kind of the *UnsafeError, or ""
		missing bool
		escape  bool // a path outside the root
	}{
		{rel: "a/f", size: 6},
		{rel: "a/b/g", size: 12},
		{rel: "a/f", size: 6}, // the cached directory again
		{rel: "a/lnk", unsafe: "symlink"},
		{rel: "a/pipe", unsafe: "FIFO"},
		{rel: "a/b/../f", size: 6},
		{rel: "a/b/../../../outside/secret", escape: true},
		{rel: "top", size: 3},
		{rel: "a/nothing", missing: true},
		{rel: "nothing/x", missing: true},
		{rel: "linkfile", unsafe: "symlink"},
		{rel: "outfile", unsafe: "symlink"},
		{rel: "linkdir/f", unsafe: "symlink"},
		{rel: "outdir/secret", unsafe: "symlink"},
		{rel: "fifo", unsafe: "FIFO"},
		{rel: "sock", unsafe: "socket"},
		{rel: "a", unsafe: "directory"},
		{rel: "../outside/secret", escape: true},
		{rel: "/etc/passwd", escape: true},
	}
	for _, tt := range tests {
		fi, err := tree.StatRegular(tt.rel)
		want, werr := d.StatRegular(tt.rel)
		switch {
		case tt.escape:
			wantUnsafe(t, tt.rel, err, "path outside the archive")
		case tt.unsafe != "":
			wantUnsafe(t, tt.rel, err, tt.unsafe)
		case tt.missing:
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: err = %v, want not exist", tt.rel, err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.rel, err)
		case fi.Size() != tt.size || !fi.Mode().IsRegular() || fi.Name() != filepath.Base(tt.rel):
			t.Errorf("%s: %s %v size %d, want a regular file of %d bytes", tt.rel, fi.Name(), fi.Mode(), fi.Size(), tt.size)
		}
		// The same answer as the walk from the root.
		if (err == nil) != (werr == nil) || errors.Is(err, ErrUnsafe) != errors.Is(werr, ErrUnsafe) {
			t.Errorf("%s: tree says %v, Dir.StatRegular says %v", tt.rel, err, werr)
		}
		if err == nil && werr == nil && fi.Size() != want.Size() {
			t.Errorf("%s: tree size %d, Dir.StatRegular %d", tt.rel, fi.Size(), want.Size())
		}
	}
	if n := len(tree.dirs); n != 2 {
		t.Errorf("tree holds %d directories, want 2 (a, a/b)", n)
	}
	must(t, tree.Close())
	if len(tree.dirs) != 0 {
		t.Errorf("Close left %d directories open", len(tree.dirs))
	}
}
