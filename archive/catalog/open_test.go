package catalog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/mailkeep/mailkeep/internal/rodir"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestOpenMode: under umask 022 the catalog, its -wal and -shm are 0600,
// and a 0644 catalog of an older mailkeep becomes 0600 when opened for
// writing.
func TestOpenMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetMeta(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
		}
	}
	c.Close()

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetMeta(t.Context(), "k", "w"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("after reopening an old 0644 catalog, %s: mode %v, want 0600", filepath.Base(p), m)
		}
	}
}

// TestOpenRefusesPlanted: a catalog.db or -wal that is a symlink (to a
// file outside the archive) or a FIFO is refused by both opens, naming the
// path, and the target is not touched.
func TestOpenRefusesPlanted(t *testing.T) {
	for _, planted := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm"} {
		for _, kind := range []string{"symlink", "FIFO"} {
			t.Run(planted+" "+kind, func(t *testing.T) {
				base := t.TempDir()
				dir := filepath.Join(base, "archive")
				os.Mkdir(dir, 0o700)
				path := filepath.Join(dir, "catalog.db")
				if planted != "catalog.db" {
					c, err := Open(path)
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
				}
				target := filepath.Join(base, "target")
				want := []byte("not the archive's")
				os.WriteFile(target, want, 0o644)
				p := filepath.Join(dir, planted)
				os.Remove(p)
				if kind == "symlink" {
					if err := os.Symlink(target, p); err != nil {
						t.Fatal(err)
					}
				} else if err := syscall.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
				for name, open := range map[string]func(string) (*Catalog, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
					c, err := open(path)
					if err == nil {
						c.Close()
						t.Errorf("%s succeeded", name)
						continue
					}
					var ue *safefs.UnsafeError
					if !errors.As(err, &ue) || ue.Path != p || ue.Kind != kind {
						t.Errorf("%s: %v, want an UnsafeError naming %s as a %s", name, err, p, kind)
					}
				}
				if b, _ := os.ReadFile(target); string(b) != string(want) || mode(t, target) != 0o644 {
					t.Errorf("the symlink's target changed: %q %v", b, mode(t, target))
				}
			})
		}
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlyMedia: catalogs on a read-only bind mount, in each state a
// snapshot or a copy can leave them: closed cleanly (no -wal), with
// commits only in the -wal beside its -shm (a snapshot of a running or
// killed backup), and with commits in the -wal but no -shm. Each is read
// with every commit or refused as "cannot write here"; none is read
// without its -wal commits. Open for writing there says "cannot write
// here"; a file that is not a catalog says so.
func TestReadOnlyMedia(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "catalog.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetMeta(t.Context(), "in", "database"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	clean := t.TempDir()
	copyFile(t, path, filepath.Join(clean, "catalog.db"))
	os.WriteFile(filepath.Join(clean, "other.db"), []byte("hello, not sqlite at all, but long enough to look like a header....................................................................."), 0o600)

	// A live writer with a commit only in its WAL.
	w, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.SetMeta(t.Context(), "in", "wal"); err != nil {
		t.Fatal(err)
	}
	live, noshm := t.TempDir(), t.TempDir()
	for _, s := range []string{"", "-wal", "-shm"} {
		copyFile(t, path+s, filepath.Join(live, "catalog.db"+s))
		if s != "-shm" {
			copyFile(t, path+s, filepath.Join(noshm, "catalog.db"+s))
		}
	}
	if st, err := os.Stat(filepath.Join(live, "catalog.db-wal")); err != nil || st.Size() == 0 {
		t.Fatalf("the writer's commit is not in its -wal: %v", err)
	}

	for _, tc := range []struct {
		name, dir, file, want string
		wantErr               error
	}{
		{"clean", clean, "catalog.db", "database", nil},
		{"wal+shm", live, "catalog.db", "wal", nil},
		{"wal without shm", noshm, "catalog.db", "", ErrReadOnly},
		{"not a catalog", clean, "other.db", "", ErrNotCatalog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := rodir.Bind(t, tc.dir)
			before := names(t, ro)
			c, err := OpenReadOnly(filepath.Join(ro, tc.file))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("OpenReadOnly: %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr == ErrReadOnly && errors.Is(err, ErrNotCatalog) {
					t.Errorf("read-only error also says not a catalog: %v", err)
				}
			} else {
				if err != nil {
					t.Fatalf("OpenReadOnly: %v", err)
				}
				if v, err := c.Meta(t.Context(), "in"); err != nil || v != tc.want {
					t.Errorf("meta in = %q, %v; want %q", v, err, tc.want)
				}
				c.Close()
			}
			if after := names(t, ro); !slices.Equal(before, after) {
				t.Errorf("files changed: %v -> %v", before, after)
			}
			_, err = Open(filepath.Join(ro, tc.file))
			if !errors.Is(err, ErrReadOnly) || errors.Is(err, ErrNotCatalog) || !errors.Is(err, syscall.EROFS) {
				t.Errorf("Open for writing on a read-only mount: %v, want cannot write here (EROFS)", err)
			}
		})
	}
}

// TestReadOnlyCreatesNothing: OpenReadOnly on writable storage leaves the
// directory as it found it.
func TestReadOnlyCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMeta(t.Context(), "k", "v")
	w.Close()
	before := names(t, dir)
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Meta(t.Context(), "k"); v != "v" {
		t.Errorf("meta k = %q", v)
	}
	r.Close()
	if after := names(t, dir); !slices.Equal(before, after) {
		t.Errorf("files changed: %v -> %v", before, after)
	}
}

// TestNotCatalog: random bytes and an empty SQLite database of another
// program are ErrNotCatalog, for both opens, and not ErrReadOnly.
func TestNotCatalog(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not sqlite at all, "), 300), 0o600)
	for name, open := range map[string]func(string) (*Catalog, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
		c, err := open(junk)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, ErrNotCatalog) || errors.Is(err, ErrReadOnly) {
			t.Errorf("%s of random bytes: %v, want ErrNotCatalog", name, err)
		}
	}
	b, err := os.ReadFile(junk)
	if err != nil || !bytes.Equal(b, bytes.Repeat([]byte("not sqlite at all, "), 300)) {
		t.Errorf("the file changed: %v", err)
	}
}
