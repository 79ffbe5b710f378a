package bench

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
)

// BenchmarkFolderWriter stores the in-memory bench corpus (2,000 messages,
// MAILKEEP_BENCH_COUNT overrides) into one mbox.zst folder through
// archive.FolderWriter, the backup's whole store path without a server:
// header sniffing, SHA-256, mboxrd quoting, zstd, the commits (fsync, then
// the catalog) every 16 MB and the last one at Close. It reports MB/s of
// wall time and CPU-ms per MB: the in-process share of a backup.
func BenchmarkFolderWriter(b *testing.B) {
	count := 2000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &count)
	}
	msgs := compressionCorpora(count)["corpus"]
	var total int64
	for _, m := range msgs {
		total += int64(len(m))
	}
	b.SetBytes(total)
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		a, err := archive.Open(dir, archive.Options{Format: archive.MboxZstd})
		if err != nil {
			b.Fatal(err)
		}
		run, err := a.Cat.BeginRun(b.Context(), "backup", "bench", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		f, err := a.Folder(b.Context(), "INBOX", '/', "")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cpuTime()
		w, err := a.NewWriter(b.Context(), f, run)
		if err != nil {
			b.Fatal(err)
		}
		for j, m := range msgs {
			if _, err := w.Add(&archive.Incoming{UIDValidity: 1, UID: uint32(j + 1), InternalDate: time.Unix(1_700_000_000, 0)}, bytes.NewReader(m)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		b.StopTimer()
		a.Close()
		b.StartTimer()
	}
	b.ReportMetric(1000*cpu.Seconds()/(float64(total)*float64(b.N)/1e6), "cpu-ms/MB")
}
