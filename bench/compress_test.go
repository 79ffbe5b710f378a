package bench

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/mboxfile"
)

// compressionCorpora are the mail streams BenchmarkCompression writes: the
// bench corpus (generated in memory, no Dovecot needed) and attachment-heavy
// mail (base64 of random bytes, as a JPEG or a ZIP looks, and of text).
func compressionCorpora(count int) map[string][][]byte {
	r := rand.New(rand.NewPCG(1, 1^0x5eed))
	var mixed [][]byte
	for i := range count {
		mixed = append(mixed, message(r, i, 1_780_000_000-int64(r.IntN(10*365*86400))))
	}
	var att [][]byte
	for i := range 8 {
		raw := make([]byte, 4<<20)
		if i%2 == 0 {
			for j := range raw {
				raw[j] = byte(r.Uint32())
			}
		} else {
			copy(raw, bodyText(r, len(raw)))
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		var b strings.Builder
		fmt.Fprintf(&b, "From: a@example.com\nSubject: attachment %d\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n", i)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\n--m--\n")
		att = append(att, []byte(b.String()))
	}
	return map[string][][]byte{"corpus": mixed, "attachments": att}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompression writes each corpus through mboxfile.Writer (the
// archive's code path) at each zstd setting: ratio (% of the mail size),
// MB/s of wall time and MB/s per CPU-second (per core). Level 0 is
// SpeedFastest with raw literals, 1 SpeedFastest with entropy-coded
// literals, 3 SpeedDefault, 19 SpeedBestCompression.
func BenchmarkCompression(b *testing.B) {
	count := 2000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &count)
	}
	corpora := compressionCorpora(count)
	for _, name := range []string{"corpus", "attachments"} {
		msgs := corpora[name]
		var total int64
		for _, m := range msgs {
			total += int64(len(m)) + int64(len("From x\n\n"))
		}
		for _, level := range []int{0, 1, 3, 19} {
			b.Run(fmt.Sprintf("%s/level=%d", name, level), func(b *testing.B) {
				dir := b.TempDir()
				b.SetBytes(total)
				var size int64
				var cpu time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := filepath.Join(dir, fmt.Sprint(i, ".mbox.zst"))
					c0 := cpuTime()
					w, err := mboxfile.OpenAppend(p, 0, mboxfile.Options{Codec: mboxfile.CodecZstd, Level: level})
					if err != nil {
						b.Fatal(err)
					}
					for _, m := range msgs {
						w.Write([]byte("From x\n"))
						w.Write(m)
						if _, err := w.Write([]byte("\n")); err != nil {
							b.Fatal(err)
						}
					}
					n, err := w.Sync()
					if err != nil {
						b.Fatal(err)
					}
					w.Close()
					cpu += cpuTime() - c0
					size = n
					os.Remove(p)
				}
				b.StopTimer()
				b.ReportMetric(100*float64(size)/float64(total), "%-of-mail")
				b.ReportMetric(float64(total)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			})
		}
	}
}
