package catalog

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A catalog written by the release before schema 4 (testdata/v3, see its
// README.md) reads as it is read-only (every value through the API), and
// migrates in place keeping every value as the API reads it; the journal
// restarts from a snapshot, and replaying it, or the old schema-3 journal,
// into an empty catalog (reindex) rebuilds the migrated catalog.
func TestMigrateFromSchema3(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	copyFile(t, "testdata/v3/catalog.db", path)
	copyFile(t, "testdata/v3/catalog.journal", JournalPath(path))
	oldJournal := filepath.Join(t.TempDir(), "v3.journal")
	copyFile(t, "testdata/v3/catalog.journal", oldJournal)

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ro.Meta(t.Context(), "schema_version"); v != "3" {
		t.Fatalf("testdata catalog has schema %s, want 3", v)
	}
	if ro.v4 {
		t.Fatal("schema 3 catalog read as schema 4")
	}
	want := logical(t, ro)
	ro.Close()
	for _, s := range []string{
		"File:mbox/INBOX.mbox.zst", "File:Maildir/cur/",
		"InternalDate:2020-09-13 07:56:40.123456789 -0430 -0430", // a fraction and an odd zone: kept as text
		"InternalDate:2017-07-14 04:40:00 +0100 +0100",
		"Sender:Bob <bob@example.org> Subject:Grüße",
		"ReceivedDate:2020-09-13 14:28:20 +0200 +0200",
		"flags of 1 as of 2026-05-28T20:43:20.000001Z: [$Label1 \\Deleted \\Seen] true",
		"flags of 1 as of 2026-05-28T20:26:40.000001Z: [] true",
	} {
		if !strings.Contains(want, s) {
			t.Errorf("sample catalog lacks %q", s)
		}
	}
	if n := strings.Count(want, "message {"); n != 123 {
		t.Fatalf("sample catalog: %d messages, want 123:\n%s", n, want)
	}

	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.AttachJournal(t.Context(), JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Snapshot || st.MovedAside == "" {
		t.Errorf("journal after the migration: %+v, want a snapshot and the old one kept aside", st)
	}
	if v, _ := c.Meta(t.Context(), "schema_version"); v != fmt.Sprint(schemaVersion) {
		t.Errorf("schema_version %s after migration", v)
	}
	if v, _ := c.Meta(t.Context(), metaJournalSchema); v != fmt.Sprint(schemaVersion) {
		t.Errorf("journal_schema %s after migration", v)
	}
	if got := logical(t, c); got != want {
		t.Fatalf("migrated catalog reads differently:\n got %s\nwant %s", got, want)
	}
	for q, n := range map[string]int{
		`SELECT COUNT(*) FROM messages WHERE typeof(sha256)<>'blob' OR length(sha256)<>32`:      0,
		`SELECT COUNT(*) FROM messages WHERE typeof(internal_date)<>'integer'`:                  1, // the date with a fraction
		`SELECT COUNT(*) FROM messages WHERE date_zone=60`:                                      120,
		`SELECT COUNT(*) FROM senders`:                                                          41, // 40 of fill, Bob
		`SELECT COUNT(*) FROM messages WHERE sender_id IS NULL`:                                 2,
		`SELECT COUNT(*) FROM flag_history`:                                                     2, // message 1 as stored and as changed; the rest say what messages.flags says
		`SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='sender'`:                0,
		`SELECT COUNT(*) FROM sqlite_schema WHERE type='index' AND tbl_name='messages'`:         7,   // uid, uidl, folder, gone, nokey, deleted, gm (schema 5)
		`SELECT COUNT(*) FROM messages WHERE typeof(stored_at)='text' AND stored_at LIKE '%.%'`: 123, // kept exact
	} {
		var got int
		if err := c.db.QueryRow(q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("%s: %d, want %d", q, got, n)
		}
	}
	migrated := dump(t, c)
	c.Close()

	// Open again: nothing left to migrate, the journal is kept.
	c, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.AttachJournal(t.Context(), JournalPath(path)); err != nil || st.Snapshot || st.Replayed != 0 {
		t.Errorf("second open: %+v %v", st, err)
	}
	if got := dump(t, c); got != migrated {
		t.Errorf("second open changed the catalog:\n got %s\nwant %s", got, migrated)
	}
	c.Close()

	// restored is not journaled (a hint restore rebuilds from the server).
	wantNoRestored := want[:strings.LastIndex(want, "\nimap.example.net bob")]
	for _, j := range []string{JournalPath(path), oldJournal} {
		fresh, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, st, err := fresh.Replay(t.Context(), j, 0); err != nil || st.Damaged != 0 {
			t.Fatal(st, err)
		}
		if j == JournalPath(path) {
			if got := dump(t, fresh); got != migrated {
				t.Errorf("replayed catalog differs:\n got %s\nwant %s", got, migrated)
			}
		}
		if got := logical(t, fresh); got != wantNoRestored {
			t.Errorf("catalog replayed from %s reads differently:\n got %s\nwant %s", filepath.Base(j), got, wantNoRestored)
		}
		var n int
		fresh.db.QueryRow(`SELECT COUNT(*) FROM messages WHERE typeof(sha256)<>'blob'`).Scan(&n)
		if n != 0 {
			t.Errorf("%s: %d checksums replayed as text", filepath.Base(j), n)
		}
		fresh.Close()
	}
}
