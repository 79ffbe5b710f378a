package catalog

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"
)

// TestSHA256SetScale: the digests of an All Mail of 100,000 messages
// (MAILKEEP_SCALE=1; 20,000 otherwise) are read in one pass by
// messages_folder, hold every live message and no expunged one, and cost
// a fraction of reading the folder's rows (catalog.All, which a restore or
// export reads anyway). The alternative, one correlated lookup per frozen
// message on (folder_id, size, sha256), is timed once beside it for the
// frozen folder: without an index on sha256 each lookup walks the whole
// folder's index range. Measured (load 10.5-13.5, 2 cores shared):
// 100,000 messages, set 262 ms / 96 ms, All 4.5 s / 1.28 s, the join for
// 1,000 frozen messages 40.9 s / 85.8 s (156x / 896x the set), in two
// runs; the set holds 52-64 bytes a message.
func TestSHA256SetScale(t *testing.T) {
	n, nf := 20_000, 100
	if os.Getenv("MAILKEEP_SCALE") != "" {
		n, nf = 100_000, 1000
	}
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	all := bulkFill(t, c, "[Gmail]/All Mail", n)
	frozen := bulkFill(t, c, "[before Gmail mode]/INBOX", nf)
	// Half the frozen copies are twins of All Mail messages.
	if _, err := c.db.Exec(`UPDATE messages SET sha256=(SELECT sha256 FROM messages a WHERE a.folder_id=? AND a.uid=messages.uid), size=(SELECT size FROM messages a WHERE a.folder_id=? AND a.uid=messages.uid) WHERE folder_id=? AND uid%2=0`, all.ID, all.ID, frozen.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.db.Exec(`UPDATE messages SET expunged_run=stored_run WHERE folder_id=? AND uid=2`, all.ID); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	median := func(f func()) time.Duration {
		var ds []time.Duration
		for range 3 {
			t0 := time.Now()
			f()
			ds = append(ds, time.Since(t0))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[1]
	}
	var set SHASet
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	tSet := median(func() {
		if set, err = c.SHA256Set(ctx, []int64{all.ID}, false); err != nil {
			t.Fatal(err)
		}
	})
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	if len(set) != n-1 {
		t.Fatalf("set of %d digests, want %d (live ones)", len(set), n-1)
	}
	twins := 0
	fm, err := c.All(ctx, frozen.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fm {
		if set.HasHex(m.SHA256) {
			twins++
		}
	}
	if twins != nf/2-1 { // uid 2's twin is expunged
		t.Errorf("%d frozen messages with a live twin, want %d", twins, nf/2-1)
	}
	tAll := median(func() {
		if _, err := c.All(ctx, all.ID); err != nil {
			t.Fatal(err)
		}
	})
	var joined int
	t0 := time.Now()
	func() {
		if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages f WHERE f.folder_id=? AND EXISTS (SELECT 1 FROM messages a INDEXED BY messages_folder WHERE a.folder_id=? AND a.size=f.size AND a.sha256=f.sha256 AND a.expunged_run IS NULL)`, frozen.ID, all.ID).Scan(&joined); err != nil {
			t.Fatal(err)
		}
	}()
	tJoin := time.Since(t0)
	if joined != twins {
		t.Errorf("join found %d twins, the set %d", joined, twins)
	}
	t.Logf("%d All Mail messages: SHA256Set %v (%.0f bytes/msg held), catalog.All %v (set/All %.2f); per-message join for %d frozen %v (join/set %.1f)",
		n, tSet, float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(n), tAll, float64(tSet)/float64(tAll), nf, tJoin, float64(tJoin)/float64(tSet))
	runtime.KeepAlive(set)
	if tSet > tAll {
		t.Errorf("the digest set (%v) costs more than reading the folder's rows (%v)", tSet, tAll)
	}
}
