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
	c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fill(b, c, 1, count)
	f, err := c.Folder(b.Context(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
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
	c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fill(b, c, 1, count)
	f, err := c.Folder(b.Context(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
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
