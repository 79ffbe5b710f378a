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
	run, err := c.BeginRun(t.Context(), "backup", "imaps://a@h:993", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.EnsureFolder(t.Context(), "Work/Größe", '/', `\Archive`, "mbox/Work/Größe.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(t.Context(), f.ID, 4096, 3, run, []*Message{msg(7, 1, `\Seen`), msg(7, 3, `\Flagged`, `$Work`)}); err != nil {
		t.Fatal(err)
	}
	f, _ = c.Folder(t.Context(), "Work/Größe")
	if f.CommittedSize != 4096 || f.LastUID != 3 || f.Delim != '/' || f.SpecialUse != `\Archive` {
		t.Fatalf("folder after commit: %+v", f)
	}
	live, err := c.Live(t.Context(), f.ID)
	if err != nil || len(live) != 2 {
		t.Fatalf("live = %d, %v", len(live), err)
	}
	m := live[1]
	if m.UID != 3 || !slices.Equal(m.Flags, []string{"$Work", `\Flagged`}) || m.InternalDate.Format(time.RFC3339) != "2020-01-02T03:04:05+01:00" {
		t.Fatalf("message round trip: %+v", m)
	}
	// The same UID under the same UIDVALIDITY cannot be stored twice.
	if err := c.Commit(t.Context(), f.ID, 5000, 3, run, []*Message{msg(7, 3)}); err == nil {
		t.Fatal("duplicate uid accepted")
	}
	f2, _ := c.Folder(t.Context(), "Work/Größe")
	if f2.CommittedSize != 4096 {
		t.Fatalf("failed commit changed committed size to %d", f2.CommittedSize)
	}
	got, err := c.ByUID(t.Context(), f, 3)
	if err != nil || got.SHA256 != m.SHA256 {
		t.Fatalf("ByUID: %+v %v", got, err)
	}
}

func TestFlagsHistoryAndExpunge(t *testing.T) {
	c := open(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r1, _ := c.BeginRun(t.Context(), "backup", "s", t0)
	f, _ := c.EnsureFolder(t.Context(), "INBOX", '/', "", "mbox/INBOX.mbox.zst")
	m := msg(1, 1, `\Seen`)
	if err := c.Commit(t.Context(), f.ID, 1, 1, r1, []*Message{m}); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.BeginRun(t.Context(), "backup", "s", t0.Add(48*time.Hour))
	if err := c.SetFlags(t.Context(), r2, []FlagChange{{ID: m.ID, Flags: []string{`\Seen`, `\Answered`}}}); err != nil {
		t.Fatal(err)
	}
	r3, _ := c.BeginRun(t.Context(), "backup", "s", t0.Add(96*time.Hour))
	if err := c.MarkExpunged(t.Context(), r3, []int64{m.ID}); err != nil {
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
		fl, ok, err := c.FlagsAsOf(t.Context(), m.ID, tt.at)
		if err != nil || ok != tt.ok || JoinFlags(fl) != tt.want {
			t.Errorf("FlagsAsOf(%v) = %q %v %v, want %q %v", tt.at, fl, ok, err, tt.want, tt.ok)
		}
	}
	live, _ := c.Live(t.Context(), f.ID)
	if len(live) != 0 {
		t.Fatalf("expunged message still live")
	}
	all, _ := c.All(t.Context(), f.ID)
	if len(all) != 1 || all[0].ExpungedRun != r3 {
		t.Fatalf("expunged message: %+v", all)
	}
}

func TestResetValidity(t *testing.T) {
	c := open(t)
	r1, _ := c.BeginRun(t.Context(), "backup", "s", time.Now())
	f, _ := c.EnsureFolder(t.Context(), "INBOX", '/', "", "p")
	a, b := msg(1, 1), msg(1, 2)
	if err := c.Commit(t.Context(), f.ID, 1, 2, r1, []*Message{a, b}); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.BeginRun(t.Context(), "backup", "s", time.Now())
	if err := c.ResetValidity(t.Context(), f.ID, r2, 9, []Rekey{{ID: a.ID, UID: 40, Flags: []string{`\Seen`}}}); err != nil {
		t.Fatal(err)
	}
	all, _ := c.All(t.Context(), f.ID)
	if all[0].UIDValidity != 9 || all[0].UID != 40 || all[0].ExpungedRun != 0 || JoinFlags(all[0].Flags) != `\Seen` {
		t.Errorf("rekeyed: %+v", all[0])
	}
	if all[1].UIDValidity != 1 || all[1].ExpungedRun != r2 {
		t.Errorf("unrecognised message should be marked expunged: %+v", all[1])
	}
	f, _ = c.Folder(t.Context(), "INBOX")
	if f.UIDValidity != 9 || f.LastUID != 0 {
		t.Errorf("folder: %+v", f)
	}
}

func TestRestoredAndRuns(t *testing.T) {
	c := open(t)
	r, _ := c.BeginRun(t.Context(), "restore", "s", time.Now())
	if ok, _ := c.IsRestored(t.Context(), "h:993", "bob", "k1"); ok {
		t.Fatal("restored before marking")
	}
	if err := c.MarkRestored(t.Context(), "h:993", "bob", "k1", "INBOX", 5, 6, r); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.IsRestored(t.Context(), "h:993", "bob", "k1"); !ok {
		t.Fatal("not restored after marking")
	}
	if ok, _ := c.IsRestored(t.Context(), "other:993", "bob", "k1"); ok {
		t.Fatal("restored to another destination")
	}
	if err := c.EndRun(t.Context(), Run{ID: r, Ended: time.Now(), Outcome: "ok", Fetched: 3}); err != nil {
		t.Fatal(err)
	}
	runs, _ := c.Runs(t.Context())
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
	if err := w.SetMeta(t.Context(), "format", "maildir"); err != nil {
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
	if v, err := r.Meta(t.Context(), "format"); err != nil || v != "maildir" {
		t.Errorf("committed meta = %q, %v", v, err)
	}
	if v, err := r.Meta(t.Context(), "pending"); err != nil || v != "" {
		t.Errorf("uncommitted meta visible: %q, %v", v, err)
	}
	if err := r.SetMeta(t.Context(), "x", "y"); err == nil {
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

// Every query of the hot paths reads through an index (a primary key or
// one of messages_*), never a scan of the messages, their history or the
// senders: backup's plan and sync, ls, cat, verify, export and restore's
// selection. Only listing every folder walks folders (in name order, by its
// index), and verify's check for an unfinished backup reads runs (one row
// per run). Queries built in the code are taken from its constants; the
// others are copies of the code's text.
func TestHotQueriesUseIndex(t *testing.T) {
	c := open(t)
	fill(t, c, 3, 50) // no ANALYZE: mailkeep never runs it, so these are the plans it gets
	for _, q := range []struct {
		use, q string
		scanOK string // a table this query may walk
		sortOK bool   // may sort (a temp b-tree): not a streaming listing
	}{
		{"backup plan: Folder", `SELECT ` + folderCols5 + ` FROM folders WHERE name=?`, "", false},
		{"backup plan: EnsureFolder", `SELECT id, delim, special_use, gone_run FROM folders WHERE name=?`, "", false},
		{"backup plan: EnsureFolder (reindexed)", `SELECT id FROM folders WHERE path=? AND uidvalidity=0 AND last_uid=0`, "", false},
		{"backup plan: SetFolderStatus", `UPDATE folders SET uidvalidity=?, uidnext=?, messages=?, highestmodseq=? WHERE id=? AND (uidvalidity<>? OR uidnext<>? OR messages<>? OR highestmodseq<>?)`, "", false},
		{"backup sync: Live", `SELECT ` + msgCols5 + liveFrom, "", true},
		{"backup sync: All", `SELECT ` + msgCols5 + allFrom, "", false},
		{"backup sync: Counts", `SELECT COUNT(*), COUNT(expunged_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`, "", false},
		{"backup sync: ByUIDL", `SELECT ` + msgCols5 + byUIDLFrom, "", false},
		{"backup sync: Commit folder", `SELECT path FROM folders WHERE id=?`, "", false},
		{"backup sync: Commit sender", `SELECT id FROM senders WHERE sender=?`, "", false},
		{"backup sync: Commit folder update", `UPDATE folders SET committed_size=?, last_uid=MAX(last_uid,?) WHERE id=?`, "", false},
		{"backup sync: SetFlags", `UPDATE messages SET flags=?, modseq=? WHERE id=?`, "", false},
		{"backup sync: historyBase", `SELECT stored_run FROM messages WHERE id=? AND NOT EXISTS (SELECT 1 FROM flag_history WHERE message=?)`, "", false},
		{"backup sync: MarkExpunged", `UPDATE messages SET expunged_run=? WHERE id=? AND expunged_run IS NULL`, "", false},
		{"backup sync: MarkDeleted", `UPDATE messages SET deleted_run=? WHERE id=? AND deleted_run IS NULL AND expunged_run IS NULL`, "", false},
		{"backup sync: ResetValidity", `SELECT id FROM messages WHERE folder_id=? AND expunged_run IS NULL AND uidvalidity<>?`, "", false},
		{"backup sync: MarkFolderGone", `UPDATE messages SET expunged_run=? WHERE folder_id=? AND expunged_run IS NULL`, "", false},
		{"backup sync: SyncState", syncStateQuery, "", false},
		{"backup sync: ByUIDs", byUIDsQuery(msgCols5, 3), "u", false},
		{"backup sync: LiveUIDs", liveUIDsQuery, "", false},
		{"journal: rows", `SELECT * FROM messages WHERE id IN (?,?,?) ORDER BY id`, "", false},
		{"journal: history", `SELECT * FROM flag_history WHERE message=? AND run=?`, "", false},
		{"ls: Folders", `SELECT ` + folderCols5 + ` FROM folders ORDER BY name`, "folders", false},
		{"ls: CountStates", `SELECT COUNT(*), COUNT(expunged_run), COUNT(deleted_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`, "", false},
		{"ls, export: Each", `SELECT ` + msgCols5 + allFrom, "", false},
		{"ls, export: Deleted", `SELECT id, deleted_run FROM messages WHERE folder_id=? AND deleted_run IS NOT NULL`, "", false},
		{"cat: ByUID", `SELECT ` + msgCols5 + byUIDFrom, "", false},
		{"cat: ByUID, older UIDVALIDITY", `SELECT ` + msgCols5 + byUIDAnyFrom, "", false},
		{"verify: EachInFileOrder", (&Catalog{v4: true}).fileOrderQuery(), "", true},
		{"verify: MessageFile", messageFileQuery, "", false},
		{"verify: BackupPending", backupPendingQuery, "runs", false},
		{"restore: MessageByID", `SELECT ` + msgCols5 + byIDFrom, "", false},
		{"restore: FlagsAsOf", flagsAsOfQuery, "", true},
		{"restore: IsRestored", `SELECT COUNT(*) FROM restored WHERE server=? AND user=? AND key=?`, "", false},
		{"restore: RestoredIn", `SELECT key, folder, uidvalidity, uid FROM restored WHERE server=? AND user=? AND folder=?`, "", false},
	} {
		plan := queryPlan(t, c, q.use, q.q)
		p := strings.Join(plan, "; ")
		for _, step := range plan {
			benign := step == "SCAN CONSTANT ROW" || strings.HasPrefix(step, "SCAN (subquery") || strings.HasSuffix(step, " CONSTANT ROWS")
			if strings.HasPrefix(step, "SCAN ") && !benign && (q.scanOK == "" || !strings.HasPrefix(step, "SCAN "+q.scanOK)) {
				t.Errorf("%s: scans a table:\n%s\nplan: %s", q.use, q.q, p)
			}
			if strings.Contains(step, "TEMP B-TREE") && !q.sortOK {
				t.Errorf("%s: sorts before its first row:\n%s\nplan: %s", q.use, q.q, p)
			}
		}
		// What an incremental backup asks of a changed folder must not
		// read the folder's rows: these follow the change.
		if q.use == "backup sync: SyncState" || q.use == "backup sync: ByUIDs" {
			if strings.Contains(p, "messages_folder") || strings.Contains(p, "USING INDEX messages_uid (folder_id=? AND uidvalidity=? AND uid>?)") {
				t.Errorf("%s: reads the folder:\n%s\nplan: %s", q.use, q.q, p)
			}
		}
		if testing.Verbose() {
			t.Logf("%-40s %s", q.use, p)
		}
	}
}

// queryPlan is SQLite's plan for q (EXPLAIN QUERY PLAN), its parameters
// bound to 1, 2, 3...: one line per step.
func queryPlan(t *testing.T, c *Catalog, what, q string) []string {
	t.Helper()
	args := make([]any, strings.Count(q, "?"))
	for i := range args {
		args[i] = i + 1
	}
	rows, err := c.db.Query(`EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
