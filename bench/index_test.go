package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
