package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func treeBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// BenchmarkIndex: a full backup to mbox.zst without and with --index (the
// search index built at the end of the run), the index's size against the
// compressed mail, and a no-op backup of an indexed archive.
func BenchmarkIndex(b *testing.B) {
	e := setup(b)
	url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
	for i := 0; i < b.N; i++ {
		plain := filepath.Join(e.tmp, "idx-plain")
		indexed := filepath.Join(e.tmp, "idx-indexed")
		os.RemoveAll(plain)
		os.RemoveAll(indexed)
		base := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", plain, "--quiet")
		report(b, "backup -> mbox.zst", base, e.corpus.Messages, e.corpus.Bytes, 0, "")
		withIdx := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", indexed, "--quiet", "--index")
		report(b, "backup --index -> mbox.zst", withIdx, e.corpus.Messages, e.corpus.Bytes, base.secs, "no-index")
		idx := filepath.Join(indexed, "index.db")
		fi, err := os.Stat(idx)
		if err != nil {
			b.Fatal(err)
		}
		mail := treeBytes(filepath.Join(indexed, "mbox"))
		fmt.Printf("%-34s index %.1f MB, mbox.zst %.1f MB: %.1f%%\n", "", float64(fi.Size())/1e6, float64(mail)/1e6, 100*float64(fi.Size())/float64(mail))
		metric(b, "index size", 100*float64(fi.Size())/float64(mail), "index-%-of-mail")
		noop := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", indexed, "--quiet")
		report(b, "no-op backup, indexed archive", noop, 0, 0, 0, "")
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(idx + s)
		}
		reidx := e.mailkeep(b, "index", "--archive", indexed, "--quiet")
		report(b, "mailkeep index (whole archive)", reidx, e.corpus.Messages, e.corpus.Bytes, 0, "")
	}
}

// BenchmarkIndexAB (needs MAILKEEP_BENCH_PREV=BINARY) alternates full
// backups to mbox.zst without and with --index by this build and by that
// one, MAILKEEP_BENCH_AB rounds (default 5), and reports the medians of
// the wall time, CPU time and peak RSS of each and the ratio --index/plain
// of each build, for a ratio a busy machine does not spoil.
// MAILKEEP_BENCH_PROFILE=DIR writes a CPU profile of each run of this
// build there (plain-N.pprof, index-N.pprof).
func BenchmarkIndexAB(b *testing.B) {
	prev := os.Getenv("MAILKEEP_BENCH_PREV")
	if prev == "" {
		b.Skip("set MAILKEEP_BENCH_PREV=BINARY")
	}
	rounds := 5
	if s := os.Getenv("MAILKEEP_BENCH_AB"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	prof := os.Getenv("MAILKEEP_BENCH_PROFILE")
	e := setup(b)
	url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
	type series struct{ wall, cpu, rss, size []float64 }
	s := map[string]*series{}
	for _, k := range []string{"this plain", "this index", "prev plain", "prev index"} {
		s[k] = &series{}
	}
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for _, bin := range []string{e.bin, prev} {
				name := "this"
				if bin != e.bin {
					name = "prev"
				}
				for _, idx := range []bool{false, true} {
					dir := filepath.Join(e.tmp, "idxab")
					os.RemoveAll(dir)
					args := []string{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", "mbox.zst", "--quiet"}
					k := name + " plain"
					env := []string{"MAILKEEP_PASSWORD=" + benchPass}
					if idx {
						args = append(args, "--index")
						k = name + " index"
					}
					if prof != "" && bin == e.bin {
						env = append(env, "MAILKEEP_CPUPROFILE="+filepath.Join(prof, fmt.Sprintf("%s-%d.pprof", strings.Fields(k)[1], r)))
					}
					res := run(b, env, bin, args...)
					x := s[k]
					x.wall, x.cpu, x.rss = append(x.wall, res.secs), append(x.cpu, res.cpu), append(x.rss, res.rssMB)
					if idx {
						fi, err := os.Stat(filepath.Join(dir, "index.db"))
						if err != nil {
							b.Fatal(err)
						}
						x.size = append(x.size, 100*float64(fi.Size())/float64(treeBytes(filepath.Join(dir, "mbox"))))
					}
					fmt.Printf("round %d %-10s %6.2f s  CPU %5.2f s  RSS %6.1f MB\n", r, k, res.secs, res.cpu, res.rssMB)
				}
			}
		}
		med := func(v []float64) float64 {
			if len(v) == 0 {
				return 0
			}
			v = slices.Clone(v)
			slices.Sort(v)
			return v[len(v)/2]
		}
		for _, name := range []string{"this", "prev"} {
			p, x := s[name+" plain"], s[name+" index"]
			// The ratio of each round (its two runs were back to back), then the median.
			var ratio []float64
			for j := range p.wall {
				ratio = append(ratio, x.wall[j]/p.wall[j])
			}
			fmt.Printf("A/B %s build, median of %d: plain %.2f s (CPU %.2f s, RSS %.1f MB); --index %.2f s (CPU %.2f s, RSS %.1f MB); --index/plain %.2fx (ratio of medians %.2fx); index %.1f%% of mbox.zst\n",
				name, rounds, med(p.wall), med(p.cpu), med(p.rss), med(x.wall), med(x.cpu), med(x.rss), med(ratio), med(x.wall)/med(p.wall), med(x.size))
			metric(b, "A/B "+name+" --index/plain", med(ratio), "x")
			metric(b, "A/B "+name+" --index CPU", med(x.cpu), "cpu-s")
			metric(b, "A/B "+name+" plain CPU", med(p.cpu), "cpu-s")
		}
	}
}
