package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// The commits Add makes by itself run behind it (fsync, then the catalog)
// while it appends the next messages: every message lands in the catalog
// once, in order, through OnCommit, the catalog never names bytes past
// the file's end, and everything reads back whole after Close.
func TestCommitBehind(t *testing.T) {
	for _, format := range []Format{MboxZstd, Mbox, MboxGzip} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			var landed []uint32
			a, err := Open(dir, Options{Format: format, CommitBytes: 8 << 10, FrameSize: 4 << 10,
				OnCommit: func(_ *catalog.Folder, msgs []*catalog.Message, _ []any) {
					for _, m := range msgs {
						landed = append(landed, m.UID)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
			f, err := a.Folder(t.Context(), "INBOX", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.NewWriter(t.Context(), f, run)
			if err != nil {
				t.Fatal(err)
			}
			const n = 60
			var want []string
			var total int64
			for uid := uint32(1); uid <= n; uid++ {
				body := fmt.Sprintf("Subject: %d\r\n\r\n%s", uid, strings.Repeat(fmt.Sprintf("From line %d of a message\r\n", uid), 100))
				want = append(want, body)
				total += int64(len(body))
				if _, err := w.Add(&Incoming{UIDValidity: 1, UID: uid, InternalDate: time.Now()}, strings.NewReader(body)); err != nil {
					t.Fatal(err)
				}
				// What the catalog has committed so far lies within the file.
				cf, err := a.Cat.Folder(t.Context(), "INBOX")
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(filepath.Join(dir, f.Path))
				if err != nil {
					t.Fatal(err)
				}
				if cf.CommittedSize > fi.Size() {
					t.Fatalf("after uid %d: catalog committed %d bytes, the file has %d", uid, cf.CommittedSize, fi.Size())
				}
			}
			if len(landed) == 0 || len(landed) >= n {
				t.Fatalf("before Close %d of %d messages landed; want some commits made behind Add and some pending", len(landed), n)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, by := w.Stored(); got != n || by != total {
				t.Fatalf("Stored() = %d, %d; want %d, %d", got, by, n, total)
			}
			for i, uid := range landed {
				if uid != uint32(i+1) {
					t.Fatalf("OnCommit order %v", landed)
				}
			}
			if len(landed) != n {
				t.Fatalf("OnCommit saw %d messages, want %d", len(landed), n)
			}
			if err := a.Cat.EndRun(t.Context(), runOK(run)); err != nil {
				t.Fatal(err)
			}
			a.Close()

			a, err = Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			cf, err := a.Cat.Folder(t.Context(), "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(dir, f.Path)); err != nil || fi.Size() != cf.CommittedSize {
				t.Fatalf("file %v (%v), catalog committed %d", fi.Size(), err, cf.CommittedSize)
			}
			checkBodies(t, a, cf, want)
		})
	}
}

// A commit that fails behind Add is reported by the call that waits for
// it (the next commit's Add, or Close), and the writer drops what it had
// pending: nothing it reports as stored is missing from the catalog.
func TestCommitBehindFails(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Options{Format: MboxZstd, CommitBytes: 8 << 10, FrameSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	f, err := a.Folder(t.Context(), "INBOX", '/', "")
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.NewWriter(t.Context(), f, run)
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: x\r\n\r\n" + strings.Repeat("a line of text\r\n", 300)
	add := func(uid uint32) error {
		_, err := w.Add(&Incoming{UIDValidity: 1, UID: uid, InternalDate: time.Now()}, strings.NewReader(body))
		return err
	}
	uid := uint32(1)
	for ; w.flight == nil; uid++ {
		if err := add(uid); err != nil {
			t.Fatal(err)
		}
	}
	// The catalog goes away under the commit in flight (or the next one).
	a.Cat.Close()
	var werr error
	for ; werr == nil && uid < 100; uid++ {
		werr = add(uid)
	}
	if werr == nil {
		werr = w.Close()
	} else {
		w.Close()
	}
	if werr == nil || !strings.Contains(werr.Error(), `folder "INBOX"`) {
		t.Fatalf("error %v, want one naming the folder", werr)
	}
	n, _ := w.Stored()
	if n >= int(uid) {
		t.Fatalf("Stored() = %d of %d after a failed commit", n, uid)
	}
	a.Close()
	a, err = Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Cat.MessageCount(t.Context()); err != nil || got != int64(n) {
		t.Fatalf("catalog holds %d messages (%v), the writer stored %d", got, err, n)
	}
}

// checkBodies reads UIDs 1 to len(want) of folder f back through the
// archive and compares each with want.
func checkBodies(t *testing.T, a *Archive, f *catalog.Folder, want []string) {
	t.Helper()
	for i, body := range want {
		m, err := a.Cat.ByUID(t.Context(), f, uint32(i+1))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := a.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body {
			t.Fatalf("uid %d: %v, read %d bytes, want %d", i+1, err, len(got), len(body))
		}
	}
}
