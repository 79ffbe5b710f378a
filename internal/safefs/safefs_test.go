//go:build unix

package safefs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// setup builds root/{a/f, a/b/, linkdir -> a, linkfile -> a/f,
// outside-link -> ../outside/secret, fifo, sock} and returns root and the
// outside file (whose bytes must never change).
func setup(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	od := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "a", "b"), od} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	outside = filepath.Join(od, "secret")
	must(t, os.WriteFile(outside, []byte("outside bytes"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "a", "f"), []byte("inside"), 0o600))
	must(t, os.Symlink("a", filepath.Join(root, "linkdir")))
	must(t, os.Symlink("a/f", filepath.Join(root, "linkfile")))
	must(t, os.Symlink(outside, filepath.Join(root, "outfile")))
	must(t, os.Symlink(od, filepath.Join(root, "outdir")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(t, unix.Mknod(filepath.Join(root, "sock"), unix.S_IFSOCK|0o600, 0))
	return root, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantUnsafe(t *testing.T, what string, err error, kind string) {
	t.Helper()
	var ue *UnsafeError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnsafe) {
		t.Errorf("%s: err = %v, want *UnsafeError", what, err)
		return
	}
	if kind != "" && ue.Kind != kind {
		t.Errorf("%s: kind %q, want %q (%v)", what, ue.Kind, kind, err)
	}
}

func TestOpenFileRefuses(t *testing.T) {
	root, outside := setup(t)
	tests := []struct {
		rel  string
		flag int
		kind string // "" = must succeed
	}{
		{"a/f", os.O_RDONLY, ""},
		{"a/f", os.O_RDWR, ""},
		{"a/new", os.O_RDWR | os.O_CREATE, ""},
		{"linkfile", os.O_RDONLY, "symlink"},
		{"outfile", os.O_RDONLY, "symlink"},
		{"outfile", os.O_WRONLY | os.O_TRUNC, "symlink"},
		{"outfile", os.O_WRONLY | os.O_CREATE | os.O_APPEND, "symlink"},
		{"linkdir/f", os.O_RDONLY, "symlink"},
		{"outdir/secret", os.O_RDWR | os.O_TRUNC, "symlink"},
		{"outdir/new", os.O_RDWR | os.O_CREATE, "symlink"},
		{"fifo", os.O_RDONLY, "FIFO"},
		{"fifo", os.O_WRONLY, "FIFO"},
		{"fifo/x", os.O_RDONLY, "FIFO"},
		{"sock", os.O_RDONLY, "socket"},
		{"a/f/x", os.O_RDONLY, "not a directory"},
		{"../outside/secret", os.O_RDWR | os.O_TRUNC, "path outside the archive"},
		{"a/b", os.O_RDONLY, "directory"},
	}
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			done := make(chan struct{})
			var f *os.File
			var err error
			go func() { f, err = OpenFile(root, tc.rel, tc.flag, 0o600); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("OpenFile(%s) blocked", tc.rel)
			}
			if tc.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				return
			}
			if f != nil {
				f.Close()
			}
			wantUnsafe(t, tc.rel, err, tc.kind)
		})
	}
	if b, _ := os.ReadFile(outside); !bytes.Equal(b, []byte("outside bytes")) {
		t.Errorf("outside file changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "new")); err == nil {
		t.Error("a file was created outside the root")
	}
}

func TestModesWhateverUmask(t *testing.T) {
	old := syscall.Umask(0o077 | 0o022 | 0o200) // strips the owner's write bit too
	defer syscall.Umask(old)
	root := t.TempDir()
	var changed []string
	must(t, MkdirAll(root, "x/y/z", 0o700, &changed))
	f, err := OpenFile(root, "x/y/z/file", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	f.Close()
	for _, p := range []string{"x", "x/y", "x/y/z"} {
		st, err := os.Lstat(filepath.Join(root, p))
		must(t, err)
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", p, st.Mode())
		}
	}
	st, err := os.Lstat(filepath.Join(root, "x/y/z/file"))
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode())
	}
	want := []string{root, filepath.Join(root, "x"), filepath.Join(root, "x/y")}
	if len(changed) != len(want) {
		t.Fatalf("changed %v, want %v", changed, want)
	}
	for i := range want {
		if changed[i] != want[i] {
			t.Errorf("changed %v, want %v", changed, want)
		}
	}
}

func TestMkdirAllRefusesSymlinkedDir(t *testing.T) {
	root, outside := setup(t)
	for _, rel := range []string{"outdir/sub", "linkdir/sub", "linkdir", "a/f/sub"} {
		var changed []string
		err := MkdirAll(root, rel, 0o700, &changed)
		if err == nil {
			t.Errorf("MkdirAll(%s) succeeded", rel)
			continue
		}
		wantUnsafe(t, rel, err, "")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "sub")); err == nil {
		t.Error("a directory was created outside the root")
	}
}

func TestRenameRemoveLstatTruncate(t *testing.T) {
	root, outside := setup(t)
	wantUnsafe(t, "rename into symlinked dir", Rename(root, "a/f", "outdir/f"), "symlink")
	wantUnsafe(t, "truncate via symlink", Truncate(root, "outfile", 0), "symlink")
	wantUnsafe(t, "truncate FIFO", Truncate(root, "fifo", 0), "FIFO")
	_, err := StatRegular(root, "outfile")
	wantUnsafe(t, "StatRegular symlink", err, "symlink")
	_, err = Lstat(root, "outdir/secret")
	wantUnsafe(t, "Lstat through symlinked dir", err, "symlink")
	_, err = ReadDir(root, "outdir")
	wantUnsafe(t, "ReadDir symlinked dir", err, "symlink")
	must(t, Rename(root, "a/f", "a/b/g"))
	fi, err := StatRegular(root, "a/b/g")
	must(t, err)
	if fi.Size() != 6 || !fi.Mode().IsRegular() {
		t.Errorf("a/b/g: %v %d", fi.Mode(), fi.Size())
	}
	must(t, Truncate(root, "a/b/g", 2))
	must(t, Chtimes(root, "a/b/g", time.Unix(1e9, 0), time.Unix(1e9, 0)))
	st, _ := os.Stat(filepath.Join(root, "a/b/g"))
	if st.Size() != 2 || !st.ModTime().Equal(time.Unix(1e9, 0)) {
		t.Errorf("a/b/g after truncate+chtimes: %d %v", st.Size(), st.ModTime())
	}
	// Removing a symlink removes the link, never its target.
	must(t, Remove(root, "outfile"))
	if b, _ := os.ReadFile(outside); string(b) != "outside bytes" {
		t.Errorf("outside file changed: %q", b)
	}
	if err := Remove(root, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing) = %v", err)
	}
}

func TestReadOnlyError(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root ignores directory permissions; cmd/mailkeep tests cover EROFS with a bind mount")
	}
	root := t.TempDir()
	must(t, os.Chmod(root, 0o500))
	t.Cleanup(func() { os.Chmod(root, 0o700) })
	_, err := OpenFile(root, "lock", os.O_RDWR|os.O_CREATE, 0o600)
	var ro *ReadOnlyError
	if !errors.As(err, &ro) || !errors.Is(err, ErrReadOnly) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("create in a read-only dir: %v", err)
	}
}

// TestWalkDir: symlinks are entries, never entered; order and SkipDir as
// filepath.WalkDir.
func TestWalkDir(t *testing.T) {
	root, _ := setup(t)
	must(t, os.WriteFile(filepath.Join(root, "a", "b", "g"), nil, 0o600))
	var got []string
	err := WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		got = append(got, rel+" "+d.Type().String())
		if rel == "a/b" {
			return fs.SkipDir
		}
		return nil
	})
	must(t, err)
	var want []string
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		want = append(want, rel+" "+d.Type().String())
		if rel == "a/b" {
			return fs.SkipDir
		}
		return err
	}))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("WalkDir:\n got %v\nwant %v", got, want)
	}
}

// BenchmarkOpen compares a checked open of a file three directories below
// the root with a plain os.Open of the same path.
func BenchmarkOpen(b *testing.B) {
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "maildir/.Work/cur"), 0o700); err != nil {
		b.Fatal(err)
	}
	rel := "maildir/.Work/cur/1.M1U1.mailkeep:2,S"
	if err := os.WriteFile(filepath.Join(root, rel), []byte("x"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Run("os.Open", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open(filepath.Join(root, rel))
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("safefs.Open", func(b *testing.B) {
		for b.Loop() {
			f, err := Open(root, rel)
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}

// TestReadDirTwice: listing the same open directory twice gives the same
// entries both times (a shared read position would give none).
func TestReadDirTwice(t *testing.T) {
	root, _ := setup(t)
	d, err := OpenRoot(root)
	must(t, err)
	defer d.Close()
	a, err := d.OpenDir("a")
	must(t, err)
	defer a.Close()
	for i := 0; i < 2; i++ {
		ents, err := a.ReadDir(".")
		must(t, err)
		if len(ents) != 2 {
			t.Errorf("listing %d: %d entries, want 2", i, len(ents))
		}
	}
}
