package catalog

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logical lists what a catalog says, as its readers see it: folders, runs,
// every message (file resolved), flag history, restore records.
func logical(t *testing.T, c *Catalog) string {
	t.Helper()
	var out []string
	fs, err := c.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		out = append(out, fmt.Sprintf("folder %+v", *f))
		all, err := c.All(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range all {
			out = append(out, fmt.Sprintf("message %+v", *m))
		}
	}
	runs, err := c.Runs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		out = append(out, fmt.Sprintf("run %+v", r))
	}
	// The flag history as restore --as-of reads it: each message's flags
	// as of each run and after the last one.
	var probes []time.Time
	for _, r := range runs {
		probes = append(probes, r.Started.Add(time.Microsecond))
	}
	probes = append(probes, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, f := range fs {
		all, _ := c.All(t.Context(), f.ID)
		for _, m := range all {
			for _, p := range probes {
				fl, ok, err := c.FlagsAsOf(t.Context(), m.ID, p)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("flags of %d as of %s: %v %v", m.ID, p.Format(time.RFC3339Nano), fl, ok))
			}
		}
	}
	for _, q := range []string{
		`SELECT server||' '||user||' '||key||' '||folder||' '||uidvalidity||' '||uid||' '||run FROM restored ORDER BY key`} {
		rows, err := c.db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		rows.Close()
	}
	return strings.Join(out, "\n")
}

// A catalog written by the release before schema 3 (testdata/v2, see its
// README.md) reads as it is read-only, and
// migrates in place keeping every row; the journal restarts from a
// snapshot, and replaying it into an empty catalog (reindex) rebuilds the
// migrated catalog.
func TestMigrateFromSchema2(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	copyFile(t, "testdata/v2/catalog.db", path)
	copyFile(t, "testdata/v2/catalog.journal", JournalPath(path))

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ro.Meta(t.Context(), "schema_version"); v != "2" {
		t.Fatalf("testdata catalog has schema %s, want 2", v)
	}
	want := logical(t, ro)
	ro.Close()
	if !strings.Contains(want, "File:mbox/INBOX.mbox.zst") || !strings.Contains(want, "File:Maildir/cur/") || strings.Count(want, "message ") != 122 {
		t.Fatalf("unexpected sample catalog:\n%s", want)
	}

	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.AttachJournal(t.Context(), JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Snapshot {
		t.Errorf("journal after the migration: %+v, want a snapshot", st)
	}
	if v, _ := c.Meta(t.Context(), "schema_version"); v != fmt.Sprint(schemaVersion) {
		t.Errorf("schema_version %s after migration", v)
	}
	if got := logical(t, c); got != want {
		t.Fatalf("migrated catalog reads differently:\n got %s\nwant %s", got, want)
	}
	var n int
	c.db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name='messages_sha'`).Scan(&n)
	if n != 0 {
		t.Error("messages_sha survived the migration")
	}
	c.db.QueryRow(`SELECT COUNT(*) FROM messages WHERE file<>''`).Scan(&n)
	if n != 1 { // the Maildir message
		t.Errorf("%d messages still store a file name, want 1", n)
	}
	var def string
	c.db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name='flag_history'`).Scan(&def)
	if !strings.Contains(def, "WITHOUT ROWID") {
		t.Errorf("flag_history: %s", def)
	}
	migrated := dump(t, c)
	c.Close()

	fresh, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, st, err := fresh.Replay(t.Context(), JournalPath(path), 0); err != nil || st.Damaged != 0 {
		t.Fatal(st, err)
	}
	if got := dump(t, fresh); got != migrated {
		t.Fatalf("replayed catalog differs:\n got %s\nwant %s", got, migrated)
	}
	// restored is not journaled (a hint restore rebuilds from the server).
	wantNoRestored := want[:strings.LastIndex(want, "\nimap.example.net bob")]
	if got := logical(t, fresh); got != wantNoRestored {
		t.Fatalf("replayed catalog reads differently:\n got %s\nwant %s", got, want)
	}
}
