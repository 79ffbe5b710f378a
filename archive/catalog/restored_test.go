package catalog

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestRestoredIn lists the records of one destination folder, and a write
// to a read-only catalog fails with ErrReadOnly.
func TestRestoredIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.BeginRun(t.Context(), "restore", "s", time.Now())
	for _, m := range []struct {
		server, key, folder string
		uid                 uint32
	}{{"h:993", "k1", "INBOX", 1}, {"h:993", "k2", "INBOX", 2}, {"h:993", "k3", "Sent", 1}, {"o:993", "k4", "INBOX", 1}} {
		if err := c.MarkRestored(t.Context(), m.server, "bob", m.key, m.folder, 7, m.uid, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.RestoredIn(t.Context(), "h:993", "bob", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b Restored) int { return int(a.UID) - int(b.UID) })
	want := []Restored{{"k1", "INBOX", 7, 1}, {"k2", "INBOX", 7, 2}}
	if !slices.Equal(got, want) {
		t.Fatalf("RestoredIn: %+v, want %+v", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.RestoredIn(t.Context(), "h:993", "bob", "Sent"); err != nil || len(got) != 1 {
		t.Fatalf("read-only RestoredIn: %v %v", got, err)
	}
	if err := ro.MarkRestored(t.Context(), "h:993", "bob", "k9", "INBOX", 7, 9, r); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("MarkRestored on a read-only catalog: %v, want ErrReadOnly", err)
	}
}
