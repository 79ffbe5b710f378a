package catalog

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// gmailCatalog is a journaled catalog with an All Mail folder of three
// labelled messages, a former INBOX folder backed up folder by folder
// (two messages of its own) and label views over All Mail.
func gmailCatalog(t *testing.T, dir string) (*Catalog, *Folder) {
	t.Helper()
	c, err := Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachJournal(t.Context(), JournalPath(c.Path())); err != nil {
		t.Fatal(err)
	}
	run, _ := c.BeginRun(t.Context(), "backup", "imaps://a@imap.gmail.com", time.Now())
	all, err := c.EnsureFolder(t.Context(), "[Gmail]/All Mail", '/', `\All`, "mbox/[Gmail]/All Mail.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := c.EnsureFolder(t.Context(), "INBOX", '/', "", "mbox/INBOX.mbox.zst")
	old := []*Message{msg(3, 1), msg(3, 2)}
	for _, m := range old {
		m.File = "mbox/INBOX.mbox.zst"
	}
	if err := c.Commit(t.Context(), inbox.ID, 100, 2, run, old); err != nil {
		t.Fatal(err)
	}
	var ms []*Message
	for i, labels := range [][]string{{`\Inbox`, "Work"}, {"Work", "Work/2014"}, {`\Inbox`}} {
		m := msg(9, uint32(10+i))
		m.File = "mbox/[Gmail]/All Mail.mbox.zst"
		m.GmailMsgID, m.GmailThrID, m.Labels = uint64(1<<63)+uint64(i), 1<<63, labels
		ms = append(ms, m)
	}
	if err := c.Commit(t.Context(), all.ID, 300, 12, run, ms); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFolderStatus(t.Context(), all.ID, 9, 13, 3, 44); err != nil {
		t.Fatal(err)
	}
	views := []View{
		{Name: "INBOX", Delim: '/', Label: `\Inbox`},
		{Name: "Work", Delim: '/', Label: "Work"},
		{Name: "Work/2014", Delim: '/', Label: "Work/2014"},
		{Name: "[Gmail]/Starred", Delim: '/', SpecialUse: `\Flagged`, Label: `\Starred`},
	}
	got, err := c.EnsureViews(t.Context(), all.ID, views)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range got {
		if !f.IsView() || f.Name != views[i].Name || f.Label != views[i].Label || f.ViewOf != all.ID || f.UIDValidity != 9 {
			t.Fatalf("view %d: %+v", i, f)
		}
	}
	// Again: nothing changes, nothing is written.
	before := c.gen.Load()
	if _, err := c.EnsureViews(t.Context(), all.ID, views); err != nil || c.gen.Load() != before {
		t.Fatalf("second EnsureViews wrote (%v)", err)
	}
	return c, all
}

// checkViews asserts what the readers see of the views and the frozen
// former INBOX.
func checkViews(t *testing.T, c *Catalog) {
	t.Helper()
	ctx := t.Context()
	uids := func(name string) []uint32 {
		f, err := c.Folder(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint32
		err = c.Each(ctx, f.ID, func(m *Message) error {
			out = append(out, m.UID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		live, err := c.Live(ctx, f.ID)
		if err != nil || len(live) != len(out) {
			t.Fatalf("%s: Live %d, Each %d, %v", name, len(live), len(out), err)
		}
		n, err := c.CountStates(ctx, f.ID)
		if err != nil || n.Total != len(out) {
			t.Fatalf("%s: CountStates %+v, %v", name, n, err)
		}
		return out
	}
	for name, want := range map[string][]uint32{
		"INBOX": {10, 12}, "Work": {10, 11}, "Work/2014": {11}, "[Gmail]/Starred": nil,
		"[Gmail]/All Mail": {10, 11, 12}, FrozenName("INBOX", '/'): {1, 2},
	} {
		if got := uids(name); !slices.Equal(got, want) {
			t.Errorf("%s: uids %v, want %v", name, got, want)
		}
	}
	work, _ := c.Folder(ctx, "Work")
	m, err := c.ByUID(ctx, work, 11)
	if err != nil || m.File != "mbox/[Gmail]/All Mail.mbox.zst" || m.UIDValidity != 9 {
		t.Fatalf("ByUID in a view: %+v %v", m, err)
	}
	if _, err := c.ByUID(ctx, work, 12); err == nil {
		t.Errorf("ByUID found a message without the label")
	}
	frozen, _ := c.Folder(ctx, FrozenName("INBOX", '/'))
	if !frozen.IsFrozen() || frozen.IsView() || frozen.Path != "mbox/INBOX.mbox.zst" || frozen.Label != `\Inbox` {
		t.Errorf("frozen INBOX: %+v", frozen)
	}
	// Counted once: the folders with messages of their own hold five.
	var total int
	fs, _ := c.Folders(ctx)
	for _, f := range fs {
		if f.IsView() {
			continue
		}
		n, _, _, _ := c.Counts(ctx, f.ID)
		total += n
	}
	if total != 5 {
		t.Errorf("messages outside views: %d, want 5", total)
	}
}

// Label folders are views over All Mail: the readers' queries answer with
// All Mail's messages carrying the label; a former folder with messages of
// its own keeps them under its frozen name; the journal rebuilds views and
// labels when the catalog is lost; a reading open sees the same.
func TestViews(t *testing.T) {
	dir := t.TempDir()
	c, all := gmailCatalog(t, dir)
	checkViews(t, c)
	// A label change shows up in the views.
	ms, _ := c.All(t.Context(), all.ID)
	if err := c.SetGmail(t.Context(), []GmailMeta{{ID: ms[2].ID, MsgID: ms[2].GmailMsgID, Labels: []string{"Work"}}}); err != nil {
		t.Fatal(err)
	}
	work, _ := c.Folder(t.Context(), "Work")
	if got, _ := c.Live(t.Context(), work.ID); len(got) != 3 {
		t.Fatalf("Work after relabel: %d messages", len(got))
	}
	if err := c.SetGmail(t.Context(), []GmailMeta{{ID: ms[2].ID, MsgID: ms[2].GmailMsgID, Labels: []string{`\Inbox`}}}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, c)
	c.Close()

	ro, err := OpenReadOnly(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	checkViews(t, ro)
	ro.Close()

	fresh, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, _, err := fresh.Replay(t.Context(), JournalPath(filepath.Join(dir, "catalog.db")), 0); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, fresh); got != want {
		t.Fatalf("replayed catalog differs:\n got %s\nwant %s", got, want)
	}
	checkViews(t, fresh)
}

// A message that left All Mail and came back is revived under its new UID
// and found by its X-GM-MSGID.
func TestReviveByGmailID(t *testing.T) {
	c, all := gmailCatalog(t, t.TempDir())
	defer c.Close()
	ms, _ := c.All(t.Context(), all.ID)
	run, _ := c.BeginRun(t.Context(), "backup", "x", time.Now())
	if err := c.MarkExpunged(t.Context(), run, []int64{ms[1].ID}); err != nil {
		t.Fatal(err)
	}
	if miss, err := c.GmailMissing(t.Context(), all.ID, 9, 0); err != nil || miss {
		t.Fatalf("GmailMissing %v %v", miss, err)
	}
	got, err := c.ByGmailMsgIDs(t.Context(), all.ID, []uint64{ms[1].GmailMsgID, 77})
	if err != nil || len(got) != 1 || got[ms[1].GmailMsgID].ID != ms[1].ID {
		t.Fatalf("ByGmailMsgIDs: %v %v", got, err)
	}
	if err := c.ReviveMessages(t.Context(), run, []Revive{{ID: ms[1].ID, UIDValidity: 9, UID: 40, Labels: []string{"Work"}}}); err != nil {
		t.Fatal(err)
	}
	work, _ := c.Folder(t.Context(), "Work")
	m, err := c.ByUID(t.Context(), work, 40)
	if err != nil || m.ExpungedRun != 0 || m.ID != ms[1].ID {
		t.Fatalf("revived: %+v %v", m, err)
	}
}

// The queries of Gmail mode and of the views use an index.
func TestViewQueriesUseIndex(t *testing.T) {
	c := open(t)
	fill(t, c, 3, 50)
	v := viewInfo{of: 1, label: "Work"}
	viewed := func(q string, n int) string {
		out, _ := viewQuery(q, v, make([]any, n))
		return out
	}
	for _, q := range []struct {
		use, q string
		sortOK bool
	}{
		{"view: Live", viewed(`SELECT `+msgCols5+liveFrom, 1), true},
		{"view: All", viewed(`SELECT `+msgCols5+allFrom, 1), false},
		{"view: ByUID", viewed(`SELECT `+msgCols5+byUIDFrom, 3), false},
		{"view: Counts", viewed(`SELECT COUNT(*), COUNT(expunged_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`, 1), false},
		{"view: folder", `SELECT COALESCE(view_of,0), COALESCE(label,'') FROM folders WHERE id=?`, false},
		{"gmail: ByGmailMsgIDs", `SELECT ` + msgCols5 + ` FROM messages WHERE gm_msgid IN (?,?) AND folder_id=? ORDER BY id`, true},
		{"gmail: GmailMissing", `SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_uid WHERE folder_id=? AND uidvalidity=? AND uid>0 AND uid>? AND expunged_run IS NULL AND gm_msgid IS NULL)`, false},
	} {
		plan := queryPlan(t, c, q.use, q.q)
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && step != "SCAN CONSTANT ROW" && !strings.HasPrefix(step, "SCAN (subquery") {
				t.Errorf("%s: scans a table: %s", q.use, strings.Join(plan, "; "))
			}
			if strings.Contains(step, "TEMP B-TREE") && !q.sortOK {
				t.Errorf("%s: sorts: %s", q.use, strings.Join(plan, "; "))
			}
		}
	}
}
