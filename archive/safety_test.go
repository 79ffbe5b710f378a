package archive_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// build writes n messages into each folder and returns the archive dir
// (inside base) and the catalog's messages of each folder.
func build(t *testing.T, base string, format archive.Format, folders []string, n int) string {
	t.Helper()
	dir := filepath.Join(base, "archive")
	a, err := archive.Open(dir, archive.Options{Format: format, FrameSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range folders {
		f, err := a.Folder(t.Context(), name, '/', "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(t.Context(), f, run)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			body := fmt.Sprintf("Subject: %s %d\r\n\r\n%s", name, i, strings.Repeat("some text\r\n", 50*i))
			in := &archive.Incoming{UIDValidity: 7, UID: uint32(i), InternalDate: time.Date(2025, 3, 1, 0, 0, i, 0, time.UTC), Flags: []string{`\Seen`}}
			if _, err := w.Add(in, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// snapshot records every file below dir (path -> bytes; symlinks as
// "-> target").
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[p] = "-> " + l
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		case d.IsDir():
			out[p] = "dir"
		default:
			out[p] = d.Type().String()
		}
		return nil
	})
	return out
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: %s changed (%d -> %d bytes)", what, p, len(v), len(after[p]))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

// bounded runs fn and fails the test if it does not return in 10 s (a
// FIFO opened for reading blocks until a writer comes).
func bounded(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on a planted file")
		return nil
	}
}

func wantUnsafe(t *testing.T, what string, err error, path string) {
	t.Helper()
	var ue *safefs.UnsafeError
	if !errors.As(err, &ue) || !errors.Is(err, archive.ErrUnsafePath) {
		t.Errorf("%s: %v, want an unsafe-path error", what, err)
		return
	}
	if ue.Path != path {
		t.Errorf("%s: names %s, want %s", what, ue.Path, path)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%s: message does not name %s: %v", what, path, err)
	}
}

// openAndRead opens the archive for writing (repair runs), then read-only
// and reads every message of folder; it returns the errors.
func openAndRead(t *testing.T, dir, folder string) (writeErr, readErr error) {
	t.Helper()
	writeErr = bounded(t, func() error {
		a, err := archive.Open(dir, archive.Options{})
		if err != nil {
			return err
		}
		defer a.Close()
		f, err := a.Cat.Folder(t.Context(), folder)
		if err != nil {
			return err
		}
		w, err := a.NewWriter(t.Context(), f, 1)
		if err != nil {
			return err
		}
		_, err = w.Add(&archive.Incoming{UIDValidity: 7, UID: 999, InternalDate: time.Now()}, strings.NewReader("Subject: new\r\n\r\nnew\r\n"))
		if err == nil {
			err = w.Close()
		}
		return err
	})
	readErr = bounded(t, func() error {
		a, err := archive.Open(dir, archive.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer a.Close()
		f, err := a.Cat.Folder(t.Context(), folder)
		if err != nil {
			return err
		}
		msgs, err := a.Cat.Live(t.Context(), f.ID)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			r, err := a.Open(m)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r)
			r.Close()
			if err != nil {
				return err
			}
		}
		return a.Walk(t.Context(), f, msgs, func(*catalog.Message, io.Reader) error { return nil })
	})
	return writeErr, readErr
}

// TestPlantedInArchive: a symlink or FIFO planted in an archive in place of
// an mbox file, an mbox directory, a Maildir folder or its cur/, the
// catalog or the lock makes opening, repairing, writing and reading fail
// with an error naming it, and nothing outside the archive is read,
// written, truncated or created. The symlinks point at copies of the real
// files (longer than the committed size, so a repair that followed them
// would truncate them).
func TestPlantedInArchive(t *testing.T) {
	tests := []struct {
		name    string
		format  archive.Format
		folder  string
		planted string // archive-relative path replaced
		fifo    bool
	}{
		{"mbox file symlink", archive.MboxZstd, "INBOX", "mbox/INBOX.mbox.zst", false},
		{"plain mbox file symlink", archive.Mbox, "INBOX", "mbox/INBOX.mbox", false},
		{"mbox directory symlink", archive.MboxGzip, "Work/Projects", "mbox/Work", false},
		{"mbox file FIFO", archive.MboxZstd, "INBOX", "mbox/INBOX.mbox.zst", true},
		{"maildir folder symlink", archive.Maildir, "Work", "maildir/.Work", false},
		{"maildir cur symlink", archive.Maildir, "Work", "maildir/.Work/cur", false},
		{"maildir message FIFO", archive.Maildir, "Work", "", true},
		{"catalog symlink", archive.MboxZstd, "INBOX", "catalog.db", false},
		{"catalog FIFO", archive.MboxZstd, "INBOX", "catalog.db", true},
		{"lock symlink", archive.MboxZstd, "INBOX", "lock", false},
		{"lock FIFO", archive.Maildir, "INBOX", "lock", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := build(t, base, tc.format, []string{"INBOX", "Work/Projects", "Work"}, 5)
			planted := tc.planted
			if planted == "" { // a message file of the folder
				ents, err := os.ReadDir(filepath.Join(dir, "maildir/.Work/cur"))
				if err != nil || len(ents) == 0 {
					t.Fatal(err)
				}
				planted = "maildir/.Work/cur/" + ents[0].Name()
			}
			p := filepath.Join(dir, planted)
			outside := filepath.Join(base, "outside")
			if tc.fifo {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				// Move the real thing outside, make it longer, and link
				// to it (the lock: link to a file that does not exist).
				if tc.planted != "lock" {
					if err := os.Rename(p, outside); err != nil {
						t.Fatal(err)
					}
					filepath.WalkDir(outside, func(q string, d fs.DirEntry, err error) error {
						if err == nil && d.Type().IsRegular() && !strings.HasSuffix(q, "catalog.db") {
							f, _ := os.OpenFile(q, os.O_WRONLY|os.O_APPEND, 0)
							f.Write(bytes.Repeat([]byte("x"), 1000))
							f.Close()
						}
						return nil
					})
				} else {
					os.Remove(p)
				}
				if err := os.Symlink(outside, p); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, base)
			writeErr, readErr := openAndRead(t, dir, tc.folder)
			if tc.planted != "" || writeErr != nil {
				// (A new message never touches another message's file.)
				wantUnsafe(t, "open, repair and write", writeErr, p)
			}
			if tc.planted != "lock" { // readers take no lock
				wantUnsafe(t, "read", readErr, p)
			} else if readErr != nil {
				t.Errorf("read with a planted lock: %v", readErr)
			}
			after := snapshot(t, base)
			// Only the archive's own files may change (the catalog records
			// a run); nothing outside, and the planted entry stays.
			for q := range before {
				if strings.HasPrefix(q, dir+string(filepath.Separator)) && !strings.HasPrefix(q, p) {
					delete(before, q)
					delete(after, q)
				}
			}
			for q := range after {
				if strings.HasPrefix(q, dir+string(filepath.Separator)) && !strings.HasPrefix(q, p) {
					delete(after, q)
				}
			}
			sameTree(t, tc.name, before, after)
		})
	}
}

// TestModesUmask022: under umask 022 every file an archive of each format
// holds is 0600 and every directory 0700, catalog, -wal, -shm and lock
// included.
func TestModesUmask022(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, format := range []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox, archive.Maildir} {
		t.Run(string(format), func(t *testing.T) {
			base := t.TempDir()
			dir := build(t, base, format, []string{"INBOX", "Work/Projects", "Sent"}, 3)
			// Hold it open so -wal and -shm exist during the walk.
			a, err := archive.Open(dir, archive.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Cat.SetMeta(t.Context(), "probe", "x"); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				st, _ := os.Lstat(p)
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = 0o700 | fs.ModeDir
				}
				if st.Mode() != want {
					t.Errorf("%s: %v, want %v", p, st.Mode(), want)
				}
				seen[d.Name()] = true
				return nil
			})
			for _, n := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm", "lock"} {
				if !seen[n] {
					t.Errorf("%s not in the archive", n)
				}
			}
		})
	}
}

// TestReadOnlyOpenCreatesNothing: Open with ReadOnly leaves an archive's
// directory as it was, and creates no directory where there is none.
func TestReadOnlyOpenCreatesNothing(t *testing.T) {
	base := t.TempDir()
	dir := build(t, base, archive.MboxZstd, []string{"INBOX"}, 3)
	before := snapshot(t, base)
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.Cat.Folder(t.Context(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := a.Cat.Live(t.Context(), f.ID); err != nil || len(msgs) != 3 {
		t.Fatalf("live: %d %v", len(msgs), err)
	}
	a.Close()
	sameTree(t, "read-only open", before, snapshot(t, base))

	none := filepath.Join(base, "none")
	if _, err := archive.Open(none, archive.Options{ReadOnly: true}); !errors.Is(err, archive.ErrNoArchive) {
		t.Errorf("read-only open of a missing archive: %v", err)
	}
	if _, err := os.Lstat(none); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open created %s", none)
	}
}
