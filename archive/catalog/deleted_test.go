package catalog

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestSchema1Migration: a schema-1 catalog reads the same read-only and
// after Open migrates it: POP3 messages marked expunged by a backup run
// that recorded deletions become "deleted by mailkeep" (visible), the
// others stay expunged.
func TestSchema1Migration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r1, _ := c.BeginRun(t.Context(), "backup", "pop3://a@h:110", t0)
	f, _ := c.EnsureFolder(t.Context(), "INBOX", 0, "", "mbox/INBOX.mbox.zst")
	var ms []*Message
	for i := 0; i < 5; i++ {
		m := msg(0, 0)
		m.UIDL = string(rune('a' + i))
		ms = append(ms, m)
	}
	if err := c.Commit(t.Context(), f.ID, 1, 0, r1, ms); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.BeginRun(t.Context(), "backup", "pop3s://a@h:995", t0.Add(time.Hour))   // deleted 0,1; saw 2 gone
	r3, _ := c.BeginRun(t.Context(), "backup", "pop3://a@h:110", t0.Add(2*time.Hour))  // saw 3 gone, deleted nothing
	r4, _ := c.BeginRun(t.Context(), "restore", "pop3://a@h:110", t0.Add(3*time.Hour)) // not a backup
	c.EndRun(t.Context(), Run{ID: r2, Ended: t0, Outcome: "ok", Deleted: 2, Expunged: 1})
	c.EndRun(t.Context(), Run{ID: r3, Ended: t0, Outcome: "ok", Expunged: 1})
	c.EndRun(t.Context(), Run{ID: r4, Ended: t0, Outcome: "ok", Deleted: 1})
	for run, ids := range map[int64][]int64{r2: {ms[0].ID, ms[1].ID, ms[2].ID}, r3: {ms[3].ID}, r4: {ms[4].ID}} {
		if err := c.MarkExpunged(t.Context(), run, ids); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`DROP INDEX messages_deleted`, `ALTER TABLE messages DROP COLUMN deleted_run`, `UPDATE meta SET value='1' WHERE key='schema_version'`} {
		if _, err := c.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	want := Deleted{ms[0].ID: r2, ms[1].ID: r2, ms[2].ID: r2}
	wantN := FolderCounts{Total: 5, Expunged: 2, Deleted: 3, Bytes: 5 * 100}
	check := func(c *Catalog, when string) {
		t.Helper()
		d, err := c.Deleted(t.Context(), f.ID)
		if err != nil || len(d) != len(want) {
			t.Fatalf("%s: Deleted = %v, %v; want %v", when, d, err, want)
		}
		for id, run := range want {
			if d[id] != run {
				t.Errorf("%s: Deleted = %v, want %v", when, d, want)
			}
		}
		all, _ := c.All(t.Context(), f.ID)
		for i, m := range all {
			if got, w := d.ExpungedRun(m), []int64{0, 0, 0, r3, r4}[i]; got != w {
				t.Errorf("%s: message %d expunged by run %d, want %d", when, i, got, w)
			}
		}
		if n, err := c.CountStates(t.Context(), f.ID); err != nil || n != wantN || n.Visible() != 3 {
			t.Errorf("%s: CountStates = %+v, %v; want %+v", when, n, err, wantN)
		}
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	check(ro, "schema 1 read-only")
	if v, _ := ro.Meta(t.Context(), "schema_version"); v != "1" {
		t.Errorf("read-only open changed schema_version to %s", v)
	}
	ro.Close()

	c, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check(c, "migrated")
	if v, _ := c.Meta(t.Context(), "schema_version"); v != fmt.Sprint(schemaVersion) {
		t.Errorf("schema_version %s after migration", v)
	}
	live, _ := c.Live(t.Context(), f.ID)
	if len(live) != 3 {
		t.Errorf("Live = %d messages after migration, want the 3 deleted by mailkeep", len(live))
	}
	// MarkDeleted marks only messages that are neither expunged nor deleted.
	r5, _ := c.BeginRun(t.Context(), "backup", "pop3://a@h:110", t0.Add(4*time.Hour))
	if err := c.MarkDeleted(t.Context(), r5, []int64{ms[0].ID, ms[3].ID}); err != nil {
		t.Fatal(err)
	}
	check(c, "after MarkDeleted")
}
