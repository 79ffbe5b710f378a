package catalog

import (
	"os"
	"path/filepath"
	"testing"
)

// frozenFixture is an All Mail of n messages and a frozen folder of nf
// whose even UIDs are twins (same size and digest) of All Mail messages;
// All Mail's UID 2 is expunged, so its twin has no live one.
func frozenFixture(tb testing.TB, n, nf int) (c *Catalog, all, frozen *Folder) {
	tb.Helper()
	c, err := Open(filepath.Join(tb.TempDir(), "catalog.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	all = bulkFill(tb, c, "[Gmail]/All Mail", n)
	frozen = bulkFill(tb, c, "[before Gmail mode]/INBOX", nf)
	if _, err := c.db.Exec(`UPDATE messages SET sha256=(SELECT sha256 FROM messages a WHERE a.folder_id=? AND a.uid=messages.uid), size=(SELECT size FROM messages a WHERE a.folder_id=? AND a.uid=messages.uid) WHERE folder_id=? AND uid%2=0`, all.ID, all.ID, frozen.ID); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.db.Exec(`UPDATE messages SET expunged_run=stored_run WHERE folder_id=? AND uid=2`, all.ID); err != nil {
		tb.Fatal(err)
	}
	return c, all, frozen
}

// joinTwins is the alternative to SHA256Set: one correlated lookup per
// frozen message on (folder_id, size, sha256); without an index on sha256
// each walks the whole folder's index range.
func joinTwins(tb testing.TB, c *Catalog, all, frozen *Folder) int {
	var n int
	if err := c.db.QueryRowContext(tb.Context(), `SELECT COUNT(*) FROM messages f WHERE f.folder_id=? AND EXISTS (SELECT 1 FROM messages a INDEXED BY messages_folder WHERE a.folder_id=? AND a.size=f.size AND a.sha256=f.sha256 AND a.expunged_run IS NULL)`, frozen.ID, all.ID).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestSHA256Set: the digests of All Mail hold every live message and no
// expunged one, and find the same twins as the per-message join.
func TestSHA256Set(t *testing.T) {
	const n, nf = 2000, 100
	c, all, frozen := frozenFixture(t, n, nf)
	set, err := c.SHA256Set(t.Context(), []int64{all.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != n-1 {
		t.Fatalf("set of %d digests, want %d (live ones)", len(set), n-1)
	}
	fm, err := c.All(t.Context(), frozen.ID)
	if err != nil {
		t.Fatal(err)
	}
	twins := 0
	for _, m := range fm {
		if set.HasHex(m.SHA256) {
			twins++
		}
	}
	if twins != nf/2-1 { // uid 2's twin is expunged
		t.Errorf("%d frozen messages with a live twin, want %d", twins, nf/2-1)
	}
	if joined := joinTwins(t, c, all, frozen); joined != twins {
		t.Errorf("join found %d twins, the set %d", joined, twins)
	}
}

// BenchmarkSHA256Set times the digest set of an All Mail of 20,000
// messages (100,000 with MAILKEEP_SCALE=1) against reading the folder's
// rows (catalog.All, which restore and export read anyway) and against the
// per-message join for the frozen folder. Measured at 100,000 (load
// 10.5-13.5, 2 cores shared): set 96-262 ms, All 1.28-4.5 s, the join for
// 1,000 frozen messages 156-896x the set; the set holds 52-64 bytes a
// message.
func BenchmarkSHA256Set(b *testing.B) {
	n, nf := 20_000, 100
	if os.Getenv("MAILKEEP_SCALE") != "" {
		n, nf = 100_000, 1000
	}
	c, all, frozen := frozenFixture(b, n, nf)
	ctx := b.Context()
	for _, bc := range []struct {
		name string
		run  func()
	}{
		{"set", func() {
			if _, err := c.SHA256Set(ctx, []int64{all.ID}, false); err != nil {
				b.Fatal(err)
			}
		}},
		{"catalog.All", func() {
			if _, err := c.All(ctx, all.ID); err != nil {
				b.Fatal(err)
			}
		}},
		{"join", func() { joinTwins(b, c, all, frozen) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs() // the set's B/op over n: what it holds a message
			for b.Loop() {
				bc.run()
			}
		})
	}
}
