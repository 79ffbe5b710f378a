package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWrite: the metrics file of 50 accounts, encoded and written
// durably (temporary file, fsync, rename, directory fsync).
func BenchmarkWrite(b *testing.B) {
	accts := make([]Account, 50)
	for i := range accts {
		accts[i] = Account{Name: fmt.Sprintf("acct%02d", i), LastRun: now, LastSuccess: now, Outcome: "ok",
			Fetched: i, Bytes: int64(i) << 20, Duration: time.Second, ArchiveBytes: 1 << 30, Messages: 100000}
	}
	path := filepath.Join(b.TempDir(), "m.prom")
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(path, accts, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirSize: the size of a Maildir-like archive of 20,000 files
// (what --metrics-file costs per account at the end of a run).
func BenchmarkDirSize(b *testing.B) {
	dir := b.TempDir()
	for f := 0; f < 20; f++ {
		cur := filepath.Join(dir, "maildir", fmt.Sprintf(".F%d", f), "cur")
		os.MkdirAll(cur, 0o755)
		for i := 0; i < 1000; i++ {
			os.WriteFile(filepath.Join(cur, fmt.Sprintf("%d.M1U%d.mailkeep:2,S", 1700000000+i, i)), []byte("x"), 0o644)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if n, err := DirSize(dir); err != nil || n != 20000 {
			b.Fatal(n, err)
		}
	}
}
