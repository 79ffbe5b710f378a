package export_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// benchMessages is about 21 MB: the corpus 40 times (one 300 kB message
// each time) and 2,000 messages of 4 kB, in 4 folders.
func benchMessages() ([]src, int64) {
	var out []src
	var total int64
	d := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	uid := uint32(0)
	add := func(folder string, body []byte, flags []string) {
		uid++
		out = append(out, src{folder, uid, body, flags, d.Add(time.Duration(uid) * time.Minute)})
		total += int64(len(body))
	}
	for i := range 40 {
		for _, m := range imaptest.Corpus() {
			add([]string{"INBOX", "Archive/2021"}[i%2], m.Body, m.Flags)
		}
	}
	line := []byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n")
	for i := range 2000 {
		body := fmt.Appendf(nil, "From: a%d@example.org\r\nSubject: small %d\r\nMessage-ID: <%d@bench>\r\n\r\n", i, i, i)
		for len(body) < 4000 {
			body = append(body, line...)
		}
		add([]string{"Sent", "Work/Projects"}[i%2], body, []string{`\Seen`})
	}
	return out, total
}

// BenchmarkExport exports an mbox.zst archive (4 MiB frames, as backups
// write them) to each format; MB/s counts the archived message bytes.
func BenchmarkExport(b *testing.B) {
	msgs, total := benchMessages()
	dir := filepath.Join(b.TempDir(), "archive")
	buildFrames(b, dir, archive.MboxZstd, 4<<20, msgs)
	for _, f := range []export.Format{export.Mbox, export.Maildir, export.EML} {
		b.Run(string(f), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			tmp := b.TempDir()
			for i := 0; b.Loop(); i++ {
				to := filepath.Join(tmp, fmt.Sprint(i))
				st, err := runExport(b, dir, to, export.Options{Format: f})
				if err != nil || st.Messages != len(msgs) {
					b.Fatalf("%+v %v", st, err)
				}
				b.StopTimer()
				os.RemoveAll(to)
				b.StartTimer()
			}
		})
	}
}
