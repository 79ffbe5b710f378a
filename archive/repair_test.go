package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

func storeOne(t *testing.T, dir, folder string) {
	t.Helper()
	a, err := Open(dir, Options{Format: Mbox})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	f, err := a.Folder(t.Context(), folder, '/', "")
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.NewWriter(t.Context(), f, run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(&Incoming{UIDValidity: 1, UID: 1, InternalDate: time.Now()}, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := a.Cat.EndRun(t.Context(), runOK(run)); err != nil {
		t.Fatal(err)
	}
}

// Bytes past the committed size that no killed run accounts for are kept
// in a file beside the mbox file before they are cut off.
func TestUnprovenTailKeptAside(t *testing.T) {
	dir := t.TempDir()
	storeOne(t, dir, "INBOX")
	path := filepath.Join(dir, "mbox", "INBOX.mbox")
	before, _ := os.ReadFile(path)
	foreign := "From someone Mon Jan  1 00:00:00 2024\nSubject: mine\n\nnot mailkeep's\n"
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(foreign)
	f.Close()
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatalf("file not back at its committed size: %d bytes, want %d", len(after), len(before))
	}
	tails, _ := filepath.Glob(path + ".tail-*")
	if len(tails) != 1 {
		t.Fatalf("tail files: %v", tails)
	}
	if b, _ := os.ReadFile(tails[0]); string(b) != foreign {
		t.Fatalf("kept tail %q, want %q", b, foreign)
	}
}

// A folder file the catalog does not know is never cut to zero.
func TestUnknownFolderFileRefused(t *testing.T) {
	dir := t.TempDir()
	storeOne(t, dir, "INBOX")
	other := filepath.Join(dir, "mbox", "Other.mbox")
	content := "From x Mon Jan  1 00:00:00 2024\n\nkeep me\n"
	os.WriteFile(other, []byte(content), 0o600)
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := a.Folder(t.Context(), "Other", '/', "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewWriter(t.Context(), f, 1); !errors.Is(err, ErrNeedsReindex) {
		t.Fatalf("NewWriter on an unknown non-empty file: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != content {
		t.Fatal("the unknown file changed")
	}
}

func runOK(id int64) catalog.Run { return catalog.Run{ID: id, Ended: time.Now(), Outcome: "ok"} }
