package catalog

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Catalog {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func msg(uv, uid uint32, flags ...string) *Message {
	return &Message{UIDValidity: uv, UID: uid, Flags: flags, Size: int64(100 + uid), SHA256: "h" + string(rune('a'+uid)),
		InternalDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600)), File: "mbox/INBOX.mbox.zst"}
}

func TestCommitAndQuery(t *testing.T) {
	c := open(t)
	run, err := c.BeginRun("backup", "imaps://a@h:993", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.EnsureFolder("Work/Größe", '/', `\Archive`, "mbox/Work/Größe.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(f.ID, 4096, 3, run, []*Message{msg(7, 1, `\Seen`), msg(7, 3, `\Flagged`, `$Work`)}); err != nil {
		t.Fatal(err)
	}
	f, _ = c.Folder("Work/Größe")
	if f.CommittedSize != 4096 || f.LastUID != 3 || f.Delim != '/' || f.SpecialUse != `\Archive` {
		t.Fatalf("folder after commit: %+v", f)
	}
	live, err := c.Live(f.ID)
	if err != nil || len(live) != 2 {
		t.Fatalf("live = %d, %v", len(live), err)
	}
	m := live[1]
	if m.UID != 3 || !slices.Equal(m.Flags, []string{"$Work", `\Flagged`}) || m.InternalDate.Format(time.RFC3339) != "2020-01-02T03:04:05+01:00" {
		t.Fatalf("message round trip: %+v", m)
	}
	// The same UID under the same UIDVALIDITY cannot be stored twice.
	if err := c.Commit(f.ID, 5000, 3, run, []*Message{msg(7, 3)}); err == nil {
		t.Fatal("duplicate uid accepted")
	}
	f2, _ := c.Folder("Work/Größe")
	if f2.CommittedSize != 4096 {
		t.Fatalf("failed commit changed committed size to %d", f2.CommittedSize)
	}
	got, err := c.ByUID(f, 3)
	if err != nil || got.SHA256 != m.SHA256 {
		t.Fatalf("ByUID: %+v %v", got, err)
	}
}

func TestFlagsHistoryAndExpunge(t *testing.T) {
	c := open(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r1, _ := c.BeginRun("backup", "s", t0)
	f, _ := c.EnsureFolder("INBOX", '/', "", "mbox/INBOX.mbox.zst")
	m := msg(1, 1, `\Seen`)
	if err := c.Commit(f.ID, 1, 1, r1, []*Message{m}); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.BeginRun("backup", "s", t0.Add(48*time.Hour))
	if err := c.SetFlags(r2, []FlagChange{{ID: m.ID, Flags: []string{`\Seen`, `\Answered`}}}); err != nil {
		t.Fatal(err)
	}
	r3, _ := c.BeginRun("backup", "s", t0.Add(96*time.Hour))
	if err := c.MarkExpunged(r3, []int64{m.ID}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want string
		ok   bool
	}{
		{t0.Add(-time.Hour), "", false},
		{t0.Add(time.Hour), `\Seen`, true},
		{t0.Add(50 * time.Hour), `\Answered \Seen`, true},
	} {
		fl, ok, err := c.FlagsAsOf(m.ID, tt.at)
		if err != nil || ok != tt.ok || JoinFlags(fl) != tt.want {
			t.Errorf("FlagsAsOf(%v) = %q %v %v, want %q %v", tt.at, fl, ok, err, tt.want, tt.ok)
		}
	}
	live, _ := c.Live(f.ID)
	if len(live) != 0 {
		t.Fatalf("expunged message still live")
	}
	all, _ := c.All(f.ID)
	if len(all) != 1 || all[0].ExpungedRun != r3 {
		t.Fatalf("expunged message: %+v", all)
	}
}

func TestResetValidity(t *testing.T) {
	c := open(t)
	r1, _ := c.BeginRun("backup", "s", time.Now())
	f, _ := c.EnsureFolder("INBOX", '/', "", "p")
	a, b := msg(1, 1), msg(1, 2)
	if err := c.Commit(f.ID, 1, 2, r1, []*Message{a, b}); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.BeginRun("backup", "s", time.Now())
	if err := c.ResetValidity(f.ID, r2, 9, []Rekey{{ID: a.ID, UID: 40, Flags: []string{`\Seen`}}}); err != nil {
		t.Fatal(err)
	}
	all, _ := c.All(f.ID)
	if all[0].UIDValidity != 9 || all[0].UID != 40 || all[0].ExpungedRun != 0 || JoinFlags(all[0].Flags) != `\Seen` {
		t.Errorf("rekeyed: %+v", all[0])
	}
	if all[1].UIDValidity != 1 || all[1].ExpungedRun != r2 {
		t.Errorf("unrecognised message should be marked expunged: %+v", all[1])
	}
	f, _ = c.Folder("INBOX")
	if f.UIDValidity != 9 || f.LastUID != 0 {
		t.Errorf("folder: %+v", f)
	}
}

func TestRestoredAndRuns(t *testing.T) {
	c := open(t)
	r, _ := c.BeginRun("restore", "s", time.Now())
	if ok, _ := c.IsRestored("h:993", "bob", "k1"); ok {
		t.Fatal("restored before marking")
	}
	if err := c.MarkRestored("h:993", "bob", "k1", "INBOX", 5, 6, r); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.IsRestored("h:993", "bob", "k1"); !ok {
		t.Fatal("not restored after marking")
	}
	if ok, _ := c.IsRestored("other:993", "bob", "k1"); ok {
		t.Fatal("restored to another destination")
	}
	if err := c.EndRun(Run{ID: r, Ended: time.Now(), Outcome: "ok", Fetched: 3}); err != nil {
		t.Fatal(err)
	}
	runs, _ := c.Runs()
	if len(runs) != 1 || runs[0].Outcome != "ok" || runs[0].Fetched != 3 || runs[0].Ended.IsZero() {
		t.Fatalf("runs: %+v", runs)
	}
}

// TestOpenReadOnly: a reader never waits for a writer that holds a write
// transaction, sees only committed data, cannot write, and creates nothing.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.SetMeta("format", "maildir"); err != nil {
		t.Fatal(err)
	}
	// Hold a write transaction open, as a committing backup does.
	tx, err := w.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES('pending','x')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("OpenReadOnly waited %v for the writer", d)
	}
	if v, err := r.Meta("format"); err != nil || v != "maildir" {
		t.Errorf("committed meta = %q, %v", v, err)
	}
	if v, err := r.Meta("pending"); err != nil || v != "" {
		t.Errorf("uncommitted meta visible: %q, %v", v, err)
	}
	if err := r.SetMeta("x", "y"); err == nil {
		t.Error("a write through the read-only catalog succeeded")
	}

	if _, err := OpenReadOnly(filepath.Join(dir, "none.db")); err == nil {
		t.Error("OpenReadOnly of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("OpenReadOnly created a file")
	}
	other := filepath.Join(dir, "other.db")
	os.WriteFile(other, nil, 0o600)
	if _, err := OpenReadOnly(other); err == nil || !strings.Contains(err.Error(), "not a mailkeep catalog") {
		t.Errorf("OpenReadOnly of an empty file: %v", err)
	}
}

// The per-folder queries on the hot path use an index, never a scan of
// every message (2,000 folders made ls and verify take seconds).
func TestFolderQueriesUseIndex(t *testing.T) {
	c := open(t)
	for _, q := range []string{
		`SELECT ` + msgCols + ` FROM messages WHERE folder_id=? ORDER BY id`,
		`SELECT ` + msgCols + ` FROM messages WHERE folder_id=? AND expunged_run IS NULL ORDER BY uidvalidity, uid, id`,
		`SELECT COUNT(*), COUNT(expunged_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`,
		`SELECT ` + msgCols + ` FROM messages WHERE folder_id=? AND uid=? ORDER BY (uidvalidity=?) DESC, id DESC LIMIT 1`, // ByUID (cat)
		`SELECT ` + msgCols + ` FROM messages WHERE folder_id=? AND uidl=?`,                                               // ByUIDL (cat)
		`SELECT ` + msgCols + ` FROM messages WHERE id=?`,                                                                 // MessageByID (restore)
		`SELECT id, deleted_run FROM messages WHERE folder_id=? AND deleted_run IS NOT NULL`,                              // Deleted (export, ls)
		`SELECT COUNT(*), COUNT(expunged_run), COUNT(deleted_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`, // CountStates (ls)
	} {
		rows, err := c.db.Query(`EXPLAIN QUERY PLAN `+q, 1, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "SCAN") || !strings.Contains(p, "USING") {
			t.Errorf("query scans the table:\n%s\nplan: %s", q, p)
		}
	}
}
