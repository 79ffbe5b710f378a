package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/journal"
)

// dump lists every journaled row of a catalog, ids included.
func dump(t *testing.T, c *Catalog) string {
	t.Helper()
	var out []string
	for _, tb := range []string{"meta", "runs", "folders", "senders", "messages", "flag_history"} {
		rows, err := c.db.Query(`SELECT * FROM ` + tb)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := scanMaps(rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if tb == "meta" && m["key"] == metaJournalOffset {
				continue
			}
			out = append(out, tb+fmt.Sprint(m))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// populate makes a catalog with a journal and some history.
func populate(t *testing.T, dir string) *Catalog {
	t.Helper()
	c, err := Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachJournal(t.Context(), JournalPath(c.Path())); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMeta(t.Context(), "format", "mbox.zst"); err != nil {
		t.Fatal(err)
	}
	run, _ := c.BeginRun(t.Context(), "backup", "imap:a@h", time.Now())
	f, _ := c.EnsureFolder(t.Context(), "INBOX", '/', "", "mbox/INBOX.mbox.zst")
	var ms []*Message
	for i := uint32(1); i <= 1200; i++ { // more than one journal line
		ms = append(ms, msg(7, i, `\Seen`))
	}
	if err := c.Commit(t.Context(), f.ID, 4096, 1200, run, ms); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFlags(t.Context(), run, []FlagChange{{ID: ms[0].ID, Flags: []string{`\Flagged`, "$Work"}, ModSeq: 9}}); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetValidity(t.Context(), f.ID, run, 8, []Rekey{{ID: ms[1].ID, UID: 1, Flags: []string{"Junk"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkExpunged(t.Context(), run, []int64{ms[2].ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetGmail(t.Context(), []GmailMeta{{ID: ms[3].ID, MsgID: 1 << 63, ThrID: 5, Labels: []string{`\Inbox`, "Work/2014"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.EndRun(t.Context(), Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	return c
}

// A full replay of the journal into an empty catalog gives back every row.
func TestJournalReplayRebuilds(t *testing.T) {
	dir := t.TempDir()
	c := populate(t, dir)
	want := dump(t, c)
	c.Close()
	fresh, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	n, st, err := fresh.Replay(t.Context(), filepath.Join(dir, "catalog.journal"), 0)
	if err != nil || st.Damaged != 0 {
		t.Fatal(n, st, err)
	}
	if got := dump(t, fresh); got != want {
		t.Fatalf("replayed catalog differs:\n got %s\nwant %s", got, want)
	}
}

// A catalog that lost its last commits (an old copy, a lost -wal) is
// brought forward when the journal is attached; a transaction whose last
// line is missing (torn by a crash) is not applied.
func TestJournalCatchesUp(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "catalog.db")
	c, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachJournal(t.Context(), JournalPath(db)); err != nil {
		t.Fatal(err)
	}
	c.SetMeta(t.Context(), "format", "mbox")
	c.Close()
	old, _ := os.ReadFile(db)
	c2 := populate(t, dir)
	want := dump(t, c2)
	c2.Close()
	j := JournalPath(db)
	for _, s := range []string{"-wal", "-shm"} {
		os.Remove(db + s)
	}
	os.WriteFile(db, old, 0o600)
	f, _ := os.OpenFile(j, os.O_WRONLY|os.O_APPEND, 0)
	// A transaction torn by a crash: a good first line, no last line.
	f.Write(journal.Encode([][]byte{[]byte(`{"more":true,"meta":{"format":"maildir"}}`)}))
	f.Close()
	c3, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	st, err := c3.AttachJournal(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replayed == 0 {
		t.Fatalf("nothing replayed: %+v", st)
	}
	if got := dump(t, c3); got != want {
		t.Fatalf("caught-up catalog differs:\n got %s\nwant %s", got, want)
	}
}

// A lost journal is written anew from the catalog, so that a later loss of
// the catalog is still recoverable.
func TestJournalSnapshot(t *testing.T) {
	dir := t.TempDir()
	c := populate(t, dir)
	want := dump(t, c)
	c.Close()
	j := filepath.Join(dir, "catalog.journal")
	os.Remove(j)
	c2, err := Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c2.AttachJournal(t.Context(), j)
	if err != nil || !st.Snapshot {
		t.Fatal(st, err)
	}
	c2.Close()
	fresh, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, _, err := fresh.Replay(t.Context(), j, 0); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, fresh); got != want {
		t.Fatalf("snapshot replay differs:\n got %s\nwant %s", got, want)
	}
	var n int
	if err := fresh.db.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != 1200 {
		t.Fatal(n, err)
	}
}
