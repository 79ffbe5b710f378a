package catalog

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestFoldersCache: a writing open (journal attached) reads the folders
// table once between writes, and every write, committed or failed, is seen
// by the next Folders call; callers get their own copies.
func TestFoldersCache(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.AttachJournal(t.Context(), filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	run, err := c.BeginRun(t.Context(), "backup", "imap://a@h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	folders := func() []*Folder {
		t.Helper()
		fl, err := c.Folders(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	if fl := folders(); len(fl) != 0 {
		t.Fatalf("new catalog lists %d folders", len(fl))
	}
	a, err := c.EnsureFolder(t.Context(), "A", '/', "", "mbox/A.mbox")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.EnsureFolder(t.Context(), "B", '/', "", "mbox/B.mbox")
	if err != nil {
		t.Fatal(err)
	}
	fl := folders()
	if len(fl) != 2 || fl[0].Name != "A" || fl[1].Name != "B" {
		t.Fatalf("after two EnsureFolder: %+v", fl)
	}
	// A caller changing its copy changes nothing for the next.
	fl[0].CommittedSize, fl[0].Name = 99, "changed"
	if fl := folders(); fl[0].Name != "A" || fl[0].CommittedSize != 0 {
		t.Fatalf("a caller's change leaked into the cache: %+v", fl[0])
	}
	steps := []struct {
		name  string
		write func() error
		check func(fl []*Folder) bool
	}{
		{"commit", func() error { return c.Commit(t.Context(), a.ID, 4096, 3, run, []*Message{msg(7, 1)}) },
			func(fl []*Folder) bool { return fl[0].CommittedSize == 4096 && fl[0].LastUID == 3 }},
		{"failed commit (duplicate UID)", func() error {
			if err := c.Commit(t.Context(), a.ID, 5000, 3, run, []*Message{msg(7, 1)}); err == nil {
				t.Error("duplicate UID accepted")
			}
			return nil
		}, func(fl []*Folder) bool { return fl[0].CommittedSize == 4096 }},
		{"status", func() error { return c.SetFolderStatus(t.Context(), b.ID, 9, 10, 11, 12) },
			func(fl []*Folder) bool { return fl[1].UIDValidity == 9 && fl[1].Messages == 11 }},
		{"gone", func() error { _, err := c.MarkFolderGone(t.Context(), b.ID, run); return err },
			func(fl []*Folder) bool { return fl[1].GoneRun == run }},
		{"new folder", func() error { _, err := c.EnsureFolder(t.Context(), "0 first", '/', "", "mbox/0.mbox"); return err },
			func(fl []*Folder) bool { return len(fl) == 3 && fl[0].Name == "0 first" }},
	}
	for _, s := range steps {
		folders() // cached before the write
		if err := s.write(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if fl := folders(); !s.check(fl) {
			t.Errorf("%s: Folders after the write: %+v %+v", s.name, fl[0], fl[len(fl)-1])
		}
	}
	// A write that touches no folder (a run's start or end, the no-op
	// backup's) keeps the list read.
	folders()
	run2, err := c.BeginRun(t.Context(), "backup", "imap://a@h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseKilledRuns(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.EndRun(t.Context(), Run{ID: run2, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if !c.foldersOK || c.foldersGen != c.gen.Load() {
		t.Error("a write of runs only dropped the cached folders")
	}
	// A reading open of the same file (no cache) sees the same list.
	r, err := OpenReadOnly(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rl, err := r.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wl := folders()
	if len(rl) != len(wl) {
		t.Fatalf("reader lists %d folders, writer %d", len(rl), len(wl))
	}
	for i := range rl {
		if *rl[i] != *wl[i] {
			t.Errorf("folder %d: reader %+v, writer %+v", i, rl[i], wl[i])
		}
	}
}

// TestFoldersOrder: Folders sorts as SQLite's ORDER BY name (BINARY) does,
// for names that differ in case, accents, prefixes and delimiters.
func TestFoldersOrder(t *testing.T) {
	c := open(t)
	names := []string{"b", "B", "a/ä", "a/z", "ä", "Z", "a", "a b", "a/", "INBOX", "Inbox/x", "日本", "é", "e\u0301", "~", "0"}
	for i, n := range names {
		if _, err := c.EnsureFolder(t.Context(), n, '/', "", "mbox/"+strconv.Itoa(i)+".mbox"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := c.db.Query(`SELECT name FROM folders ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		want = append(want, n)
	}
	rows.Close()
	fl, err := c.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fl {
		got = append(got, f.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Folders order %q, ORDER BY name %q", got, want)
	}
}
