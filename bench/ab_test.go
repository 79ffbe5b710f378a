package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// BenchmarkABZstd alternates full backups to mbox.zst by this build and by
// MAILKEEP_BENCH_PREV, MAILKEEP_BENCH_AB times each (default 5), with a
// raw fetch floor before each pair, and reports the medians: on a machine
// shared with other work, alternating and taking medians gives a ratio
// that one run of each cannot.
func BenchmarkABZstd(b *testing.B) {
	prev := os.Getenv("MAILKEEP_BENCH_PREV")
	if prev == "" {
		b.Skip("set MAILKEEP_BENCH_PREV=BINARY")
	}
	rounds := 5
	if s := os.Getenv("MAILKEEP_BENCH_AB"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	e := setup(b)
	url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
	for i := 0; i < b.N; i++ {
		var floor, cur, old, curCPU, oldCPU []float64
		for r := 0; r < rounds; r++ {
			floor = append(floor, rawFetch(b, e.dv.IMAPAddr).secs)
			for _, bin := range []string{e.bin, prev} {
				dir := filepath.Join(e.tmp, "ab")
				os.RemoveAll(dir)
				res := run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", "mbox.zst", "--quiet")
				if bin == e.bin {
					cur, curCPU = append(cur, res.secs), append(curCPU, res.cpu)
				} else {
					old, oldCPU = append(old, res.secs), append(oldCPU, res.cpu)
				}
			}
		}
		med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
		mb := float64(e.corpus.Bytes) / 1e6
		fmt.Printf("A/B mbox.zst, median of %d: floor %.2f s; this build %.2f s (%.2fx floor, %.1f CPU-ms/MB); previous %.2f s (%.2fx floor, %.1f CPU-ms/MB); this/previous %.2f\n",
			rounds, med(floor), med(cur), med(cur)/med(floor), 1000*med(curCPU)/mb, med(old), med(old)/med(floor), 1000*med(oldCPU)/mb, med(cur)/med(old))
		metric(b, "A/B this build / floor", med(cur)/med(floor), "x")
		metric(b, "A/B previous / floor", med(old)/med(floor), "x")
		metric(b, "A/B this build CPU per MB", 1000*med(curCPU)/mb, "ms")
		metric(b, "A/B previous CPU per MB", 1000*med(oldCPU)/mb, "ms")
	}
}
