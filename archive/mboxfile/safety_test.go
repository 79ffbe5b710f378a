package mboxfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// TestPlantedFiles: an mbox file replaced by a symlink to a file outside
// the archive, by a FIFO, or reached through a symlinked directory is
// refused by OpenAppend (whatever committed size, so the truncation of an
// uncommitted tail never reaches the target) and by OpenReaderIn, with an
// error naming the path; the target's bytes do not change and nothing is
// created outside. A FIFO never blocks.
func TestPlantedFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, root, outside string) string // returns the mbox path, relative to root
		kind  string
	}{
		{"mbox file symlink", func(t *testing.T, root, outside string) string {
			must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "mbox", "INBOX.mbox.zst")))
			return "mbox/INBOX.mbox.zst"
		}, "symlink"},
		{"mbox file relative symlink inside the archive", func(t *testing.T, root, outside string) string {
			must(t, os.WriteFile(filepath.Join(root, "mbox", "other.mbox.zst"), nil, 0o600))
			must(t, os.Symlink("other.mbox.zst", filepath.Join(root, "mbox", "INBOX.mbox.zst")))
			return "mbox/INBOX.mbox.zst"
		}, "symlink"},
		{"symlinked directory", func(t *testing.T, root, outside string) string {
			must(t, os.Symlink(outside, filepath.Join(root, "mbox", "Work")))
			return "mbox/Work/victim"
		}, "symlink"},
		{"symlinked directory, new file", func(t *testing.T, root, outside string) string {
			must(t, os.Symlink(outside, filepath.Join(root, "mbox", "Work")))
			return "mbox/Work/Sub/new.mbox.zst"
		}, "symlink"},
		{"FIFO", func(t *testing.T, root, outside string) string {
			must(t, syscall.Mkfifo(filepath.Join(root, "mbox", "INBOX.mbox.zst"), 0o600))
			return "mbox/INBOX.mbox.zst"
		}, "FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "archive"), filepath.Join(base, "outside")
			must(t, os.MkdirAll(filepath.Join(root, "mbox"), 0o700))
			must(t, os.MkdirAll(outside, 0o700))
			victim := bytes.Repeat([]byte("precious bytes outside the archive\n"), 100)
			must(t, os.WriteFile(filepath.Join(outside, "victim"), victim, 0o644))
			rel := tc.plant(t, root, outside)
			path := filepath.Join(root, rel)
			for _, committed := range []int64{0, 10} {
				done := make(chan error, 1)
				go func() {
					w, err := OpenAppend(path, committed, Options{Root: root})
					if err == nil {
						w.Close()
					}
					done <- err
				}()
				select {
				case err := <-done:
					checkUnsafe(t, "OpenAppend", err, tc.kind)
				case <-time.After(10 * time.Second):
					t.Fatal("OpenAppend blocked")
				}
			}
			done := make(chan error, 1)
			go func() {
				r, err := OpenReaderIn(root, rel, CodecNone, Pos{})
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				checkUnsafe(t, "OpenReaderIn", err, tc.kind)
			case <-time.After(10 * time.Second):
				t.Fatal("OpenReaderIn blocked")
			}
			if b, err := os.ReadFile(filepath.Join(outside, "victim")); err != nil || !bytes.Equal(b, victim) {
				t.Errorf("the file outside the archive changed (%d bytes, %v)", len(b), err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("files created outside the archive: %v", ents)
			}
		})
	}
}

func checkUnsafe(t *testing.T, what string, err error, kind string) {
	t.Helper()
	var ue *safefs.UnsafeError
	if !errors.As(err, &ue) {
		t.Errorf("%s: %v, want *safefs.UnsafeError", what, err)
		return
	}
	if ue.Kind != kind {
		t.Errorf("%s: %v, want a %s", what, err, kind)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestModes: files are 0600 and created directories 0700 under umask 022.
func TestModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	root := t.TempDir()
	w, err := OpenAppend(filepath.Join(root, "mbox", "A", "B.mbox.zst"), 0, Options{Root: root})
	must(t, err)
	w.Write([]byte("From x\n"))
	if _, err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for p, want := range map[string]os.FileMode{"mbox": 0o700, "mbox/A": 0o700, "mbox/A/B.mbox.zst": 0o600} {
		st, err := os.Lstat(filepath.Join(root, p))
		must(t, err)
		if st.Mode().Perm() != want {
			t.Errorf("%s: %v, want %v", p, st.Mode().Perm(), want)
		}
	}
}
