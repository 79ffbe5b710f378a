package textindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
)

// benchCount is the number of messages of the benchmark archive
// (MAILKEEP_BENCH_INDEX_COUNT, default 100,000).
func benchCount() int {
	if n, err := strconv.Atoi(os.Getenv("MAILKEEP_BENCH_INDEX_COUNT")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// vocabulary: 20,000 words drawn with a Zipf distribution, like text.
func benchWord(i uint64) string {
	const syl = "ba ke ri to mu sa ne lo pi du ga fe hi jo ku ma no pe ru si ta vu we xo yi zu"
	s := strings.Fields(syl)
	var b strings.Builder
	for n := 0; n < 2+int(i%3); n++ {
		b.WriteString(s[i%uint64(len(s))])
		i /= uint64(len(s))
	}
	return b.String()
}

func benchMessage(r *rand.Rand, z *rand.Zipf, i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: User %d <user%d@example.com>\r\nTo: alice@example.org\r\n", r.IntN(500), r.IntN(500))
	b.WriteString("Subject: ")
	for j := 0; j < 5; j++ {
		b.WriteString(benchWord(z.Uint64()) + " ")
	}
	fmt.Fprintf(&b, "\r\nMessage-ID: <%d@example.com>\r\n\r\n", i)
	n := 100 + r.IntN(400) // words
	for j := 0; j < n; j++ {
		b.WriteString(benchWord(z.Uint64()))
		if j%12 == 11 {
			b.WriteString("\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	if i%1000 == 0 {
		b.WriteString("\r\nneedle haystack\r\n")
	}
	return []byte(b.String())
}

// benchArchive builds (once per process) an archive of benchCount()
// generated messages in 10 folders and indexes it.
func benchArchive(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "textindex-bench")
		if err != nil {
			benchErr = err
			return
		}
		benchDir = filepath.Join(dir, "arch")
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(r, 1.1, 1, 20_000)
		count := benchCount()
		a, err := archive.Open(benchDir, archive.Options{})
		if err != nil {
			benchErr = err
			return
		}
		run, _ := a.Cat.BeginRun(b.Context(), "backup", "bench", time.Now())
		start := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
		for f := 0; f < 10; f++ {
			fo, err := a.Folder(b.Context(), fmt.Sprintf("Folder%d", f), '/', "")
			if err != nil {
				benchErr = err
				return
			}
			w, err := a.NewWriter(b.Context(), fo, run)
			if err != nil {
				benchErr = err
				return
			}
			for i := f; i < count; i += 10 {
				flags := []string{`\Seen`}
				if i%50 == 0 {
					flags = append(flags, `\Flagged`)
				}
				if _, err := w.Add(&archive.Incoming{UIDValidity: 1, UID: uint32(i + 1), InternalDate: start.Add(time.Duration(i) * time.Hour), Flags: flags},
					strings.NewReader(string(benchMessage(r, z, i)))); err != nil {
					benchErr = err
					return
				}
			}
			if err := w.Close(); err != nil {
				benchErr = err
				return
			}
		}
		a.Close()
		ra, err := archive.Open(benchDir, archive.Options{ReadOnly: true})
		if err != nil {
			benchErr = err
			return
		}
		defer ra.Close()
		ix, err := Open(benchDir)
		if err != nil {
			benchErr = err
			return
		}
		t0 := time.Now()
		st, err := ix.Update(context.Background(), ra, UpdateOptions{})
		ix.Close()
		if err != nil {
			benchErr = err
			return
		}
		var mail int64
		filepath.Walk(filepath.Join(benchDir, "mbox"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				mail += fi.Size()
			}
			return nil
		})
		fmt.Printf("bench archive: %d messages, %.1f MB read, indexed in %.1fs (%.0f msg/s); index %.1f MB, mbox.zst %.1f MB (%.0f%%)\n",
			st.Indexed, float64(st.Bytes)/1e6, time.Since(t0).Seconds(), float64(st.Indexed)/time.Since(t0).Seconds(),
			float64(Size(benchDir))/1e6, float64(mail)/1e6, 100*float64(Size(benchDir))/float64(mail))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// BenchmarkSearch: queries over the benchmark archive (100,000 messages
// by default). The target is under 100 ms a query.
func BenchmarkSearch(b *testing.B) {
	dir := benchArchive(b)
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	common := benchWord(1)
	for _, q := range []string{
		"needle",
		common,
		common + " " + benchWord(2) + " -" + benchWord(3),
		`"needle haystack"`,
		"from:user42 " + benchWord(5),
		"is:flagged " + common,
		"is:flagged",
		"folder:Folder3 after:2015/01/01 larger:2K",
		benchWord(7) + " OR " + benchWord(400),
		"subject:" + benchWord(9),
	} {
		n, err := ParseQuery(q, now, time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			ix, err := OpenReadOnly(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			var hits int
			for b.Loop() {
				hs, err := ix.Search(context.Background(), filepath.Join(dir, "catalog.db"), n, 50)
				if err != nil {
					b.Fatal(err)
				}
				hits = len(hs)
			}
			b.ReportMetric(float64(hits), "hits")
		})
	}
}
