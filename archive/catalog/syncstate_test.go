package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSyncState: what a backup's look at a changed folder of 200,000
// messages (MAILKEEP_BENCH_COUNT overrides) costs in the catalog.
func BenchmarkSyncState(b *testing.B) {
	count := 200_000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &count)
	}
	c, f := filledInbox(b, count)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		st, err := c.SyncState(b.Context(), f.ID, 1_700_000_000)
		if err != nil || st.Live != count || st.Stale {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkByUIDs: looking a batch of 500 listed UIDs up in a folder of
// 200,000 messages, as an incremental backup compares a listing.
func BenchmarkByUIDs(b *testing.B) {
	count := 200_000
	c, f := filledInbox(b, count)
	uids := make([]uint32, MaxUIDBatch)
	for i := range uids {
		uids[i] = uint32(count/2 + i*7)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		got, err := c.ByUIDs(b.Context(), f.ID, 1_700_000_000, uids)
		if err != nil || len(got) != len(uids) {
			b.Fatal(len(got), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// filledInbox is a catalog whose INBOX holds count messages.
func filledInbox(b *testing.B, count int) (*Catalog, *Folder) {
	b.Helper()
	c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	fill(b, c, 1, count)
	f, err := c.Folder(b.Context(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	return c, f
}

// inboxRun begins a backup run and makes the folder INBOX.
func inboxRun(t *testing.T, c *Catalog) (int64, *Folder) {
	t.Helper()
	run, err := c.BeginRun(t.Context(), "backup", "imap://a@h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.EnsureFolder(t.Context(), "INBOX", '/', "", "mbox/INBOX.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	return run, f
}

// TestSyncStateFromIndexes: SyncState counts and judges from indexes what
// a pass over the rows would: expunged rows do not count, live rows under
// a lower or higher UIDVALIDITY and live rows without UID or UIDL make the
// folder stale, expunged ones and POP3 rows (UIDL, no UID) do not.
func TestSyncStateFromIndexes(t *testing.T) {
	c := open(t)
	run, f := inboxRun(t, c)
	commit := func(ms ...*Message) {
		t.Helper()
		if err := c.Commit(t.Context(), f.ID, 1, 0, run, ms); err != nil {
			t.Fatal(err)
		}
	}
	expunge := func(ms ...*Message) {
		t.Helper()
		var ids []int64
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		if err := c.MarkExpunged(t.Context(), run, ids); err != nil {
			t.Fatal(err)
		}
	}
	want := func(step string, live int, stale bool) {
		t.Helper()
		st, err := c.SyncState(t.Context(), f.ID, 7)
		if err != nil || st.Live != live || st.Stale != stale {
			t.Errorf("%s: SyncState(7) = %+v, %v; want live %d stale %v", step, st, err, live, stale)
		}
	}
	var cur []*Message
	for uid := uint32(1); uid <= 5; uid++ {
		cur = append(cur, msg(7, uid))
	}
	commit(cur...)
	expunge(cur[1])
	want("five, one expunged", 4, false)

	old := []*Message{msg(6, 1), msg(6, 2)}
	commit(old...)
	want("live under a lower UIDVALIDITY", 4, true)
	expunge(old...)
	want("those expunged", 4, false)

	newer := msg(9, 1)
	commit(newer)
	want("live under a higher UIDVALIDITY", 4, true)
	expunge(newer)
	want("that expunged", 4, false)

	pop := msg(0, 0)
	pop.UIDL, pop.SHA256 = "pop-1", "hpop"
	commit(pop)
	want("a POP3 row", 4, false)

	bare := msg(0, 0)
	bare.SHA256 = "hbare"
	commit(bare)
	want("a row without UID or UIDL", 4, true)
	expunge(bare)
	want("that expunged", 4, false)
}
