package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fill commits n messages per folder into folders folders of c, like a
// backup of an IMAP account to mbox.zst: \Seen on most, a few flagged.
func fill(tb testing.TB, c *Catalog, folders, n int) {
	tb.Helper()
	// The run starts now, as a real one does before it stores messages
	// (stored_at counts from it since schema 4).
	run, err := c.BeginRun(tb.Context(), "backup", "imaps://alice@mail.example.com", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	for fi := range folders {
		name := fmt.Sprintf("Archive/%d", 2000+fi)
		if fi == 0 {
			name = "INBOX"
		}
		f, err := c.EnsureFolder(tb.Context(), name, '/', "", "mbox/"+name+".mbox.zst")
		if err != nil {
			tb.Fatal(err)
		}
		var batch []*Message
		for i := 1; i <= n; i++ {
			flags := []string{`\Seen`}
			switch i % 20 {
			case 0:
				flags = append(flags, `\Flagged`)
			case 1:
				flags = nil
			case 2:
				flags = append(flags, `\Answered`)
			}
			batch = append(batch, &Message{UIDValidity: 1_700_000_000, UID: uint32(i), Flags: flags, Size: int64(2000 + i*37%50000),
				SHA256:       fmt.Sprintf("%064x", uint64(fi)<<32|uint64(i)*0x9e3779b97f4a7c15),
				InternalDate: time.Unix(1_500_000_000+int64(i)*3600, 0).In(time.FixedZone("", 3600)),
				MessageID:    fmt.Sprintf("<%d.%x@mail.example.org>", i, uint64(i)*0x51ed27),
				Sender:       fmt.Sprintf("User %d <user%d@example.org>", i%300, i%300),
				Subject:      fmt.Sprintf("Quarterly report %d, meeting notes", i%1000),
				File:         f.Path, FrameOffset: int64(i/400) * 1_500_000, FramePos: int64(i%400) * 10_000})
			if len(batch) == 2000 || i == n {
				if err := c.Commit(tb.Context(), f.ID, int64(i)*4000, uint32(i), run, batch); err != nil {
					tb.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	if err := c.EndRun(tb.Context(), Run{ID: run, Outcome: "ok", Ended: time.Now()}); err != nil {
		tb.Fatal(err)
	}
}

// catalogBytes is the catalog's size once its WAL is checkpointed.
func catalogBytes(tb testing.TB, c *Catalog) int64 {
	if _, err := c.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
	var pages, size, free int64
	c.db.QueryRow(`PRAGMA page_count`).Scan(&pages)
	c.db.QueryRow(`PRAGMA page_size`).Scan(&size)
	c.db.QueryRow(`PRAGMA freelist_count`).Scan(&free)
	return (pages - free) * size
}

// BenchmarkCatalogSize: bytes of catalog per message for 200,000 messages
// in 20 folders (MAILKEEP_BENCH_COUNT overrides the count).
func BenchmarkCatalogSize(b *testing.B) {
	count := 200_000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &count)
	}
	for range b.N {
		c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
		if err != nil {
			b.Fatal(err)
		}
		fill(b, c, 20, count/20)
		b.ReportMetric(float64(catalogBytes(b, c))/float64(count), "bytes/msg")
		c.Close()
	}
}

// BenchmarkManyFolders: 2,000 folders of 5 messages: what ls (Folders and
// per-folder counts), verify and export (every folder's rows) and a no-op
// backup's plan (EnsureFolder of unchanged folders) cost in the catalog.
func BenchmarkManyFolders(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fill(b, c, 2000, 5)
	fs, err := c.Folders(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ls", func(b *testing.B) {
		for range b.N {
			fs, _ := c.Folders(b.Context())
			for _, f := range fs {
				if _, err := c.CountStates(b.Context(), f.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("all-rows", func(b *testing.B) {
		for range b.N {
			for _, f := range fs {
				if ms, err := c.All(b.Context(), f.ID); err != nil || len(ms) != 5 {
					b.Fatal(len(ms), err)
				}
			}
		}
	})
	b.Run("noop-plan", func(b *testing.B) {
		for range b.N {
			for _, f := range fs {
				if _, err := c.EnsureFolder(b.Context(), f.Name, '/', "", f.Path); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
