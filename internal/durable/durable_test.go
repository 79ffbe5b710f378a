package durable

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMkdir(t *testing.T) {
	root := t.TempDir()
	var changed []string
	if err := Mkdir(filepath.Join(root, "a", "b", "c"), 0o700, &changed); err != nil {
		t.Fatal(err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if !slices.Equal(changed, want) {
		t.Errorf("changed = %q, want %q", changed, want)
	}
	st, err := os.Stat(filepath.Join(root, "a", "b", "c"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("created: %v %v", st, err)
	}
	changed = nil
	if err := Mkdir(filepath.Join(root, "a", "b"), 0o700, &changed); err != nil || len(changed) != 0 {
		t.Errorf("existing directory: %v, changed %q", err, changed)
	}
	os.WriteFile(filepath.Join(root, "file"), nil, 0o600)
	if err := MkdirAll(filepath.Join(root, "file", "x"), 0o700); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("below a file: %v", err)
	}
	if err := SyncDirs(append(want, want...)); err != nil {
		t.Error(err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "m.prom")
	if err := WriteFile(path, []byte("one\n"), 0o644, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two\n"), 0o600, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	st, _ := os.Stat(path)
	if err != nil || string(b) != "two\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("got %q (%v), mode %v", b, err, st.Mode().Perm())
	}
	if d, _ := os.Stat(dir); d.Mode().Perm() != 0o755 {
		t.Errorf("directory mode %v", d.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries, want only the file", len(ents))
	}
	// Failure (the target is a directory): the old content stays, no
	// temporary file is left.
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if err := WriteFile(filepath.Join(dir, "sub"), []byte("x"), 0o644, 0o755); err == nil {
		t.Error("replacing a directory succeeded")
	}
	ents, _ = os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("after a failed write: %d entries, want 2 (a temporary file left?)", len(ents))
	}
}

// TestSyncDirFIFO: a FIFO where a directory should be is an error at once,
// not a blocked open.
func TestSyncDirFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- SyncDir(p) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("SyncDir(FIFO) = %v, want ENOTDIR", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SyncDir blocked on a FIFO")
	}
}
