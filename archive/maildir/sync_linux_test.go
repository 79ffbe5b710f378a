package maildir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSync: a batch of 200 deliveries of 10 KB made durable by
// Sync (an fsync per file, in parallel, and one per directory) against
// the syncfs(2) it replaced, on a quiet file system and on one where
// another writer left 64 MB of dirty pages (which syncfs must flush too).
func BenchmarkSync(b *testing.B) {
	msg := bytes.Repeat([]byte("0123456789abcdef\r\n"), 10<<10/18)
	for _, busy := range []bool{false, true} {
		for _, mode := range []string{"fsync", "syncfs"} {
			name := fmt.Sprintf("%s/quiet", mode)
			if busy {
				name = fmt.Sprintf("%s/busy", mode)
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				f, err := OpenFolder(filepath.Join(dir, "f"), false)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				noise := bytes.Repeat([]byte{1}, 64<<20)
				var synced time.Duration
				n := 0
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					if busy {
						os.WriteFile(filepath.Join(dir, "noise"), noise, 0o600)
					}
					b.StartTimer()
					for range 200 {
						n++
						if _, _, err := f.Deliver(fmt.Sprintf("%d.M1U%d.mailkeep", n, n), nil, time.Unix(1e9, 0), bytes.NewReader(msg)); err != nil {
							b.Fatal(err)
						}
					}
					t0 := time.Now()
					if mode == "fsync" {
						err = f.Sync()
					} else {
						for _, t := range f.unsynced {
							t.Close()
						}
						f.unsynced = nil
						err = unix.Syncfs(f.subs["cur"].Fd())
					}
					if err != nil {
						b.Fatal(err)
					}
					synced += time.Since(t0)
				}
				b.ReportMetric(float64(synced.Milliseconds())/float64(b.N), "sync-ms/batch")
			})
		}
	}
}
