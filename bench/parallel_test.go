package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkParallelAccounts measures what README's sizing rule for
// containers rests on: peak RSS of `mailkeep backup --config` with P
// accounts backed up at once (--parallel P), P = 1, 2, 4, each with the
// default 4 connections; then one account with 1 and 8 connections. Every
// account is the bench corpus (the same Dovecot user, its own archive), so
// the extra memory per --parallel account, and per connection, is the
// difference between the rows.
func BenchmarkParallelAccounts(b *testing.B) {
	e := setup(b)
	for i := 0; i < b.N; i++ {
		var base float64
		for _, p := range []int{1, 2, 4} {
			dir := filepath.Join(e.tmp, fmt.Sprintf("parallel-%d", p))
			os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				b.Fatal(err)
			}
			var cfg strings.Builder
			fmt.Fprintf(&cfg, "archive_root = %q\nparallel = %d\n", filepath.Join(dir, "archives"), p)
			for a := 0; a < p; a++ {
				fmt.Fprintf(&cfg, "\n[[account]]\nname = \"acct%d\"\nimap = \"imap://%s@%s\"\ntls = \"none\"\npassword_env = \"MAILKEEP_BENCH_PW\"\n", a, benchUser, e.dv.IMAPAddr)
			}
			path := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			r := run(b, []string{"MAILKEEP_BENCH_PW=" + benchPass}, e.bin, "backup", "--config", path, "--quiet")
			report(b, fmt.Sprintf("mailkeep --parallel %d (%d accounts)", p, p), r, p*e.corpus.Messages, int64(p)*e.corpus.Bytes, 0, "")
			if p == 1 {
				base = r.rssMB
			} else {
				fmt.Printf("%-34s %.1f MB more per extra account\n", "", (r.rssMB-base)/float64(p-1))
				metric(b, fmt.Sprintf("RSS per extra account at parallel %d", p), (r.rssMB-base)/float64(p-1), "MB")
			}
		}
		var one float64
		for _, c := range []int{1, 8} {
			dir := filepath.Join(e.tmp, fmt.Sprintf("connections-%d", c))
			os.RemoveAll(dir)
			url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
			r := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--connections", fmt.Sprint(c), "--quiet")
			report(b, fmt.Sprintf("mailkeep --connections %d", c), r, e.corpus.Messages, e.corpus.Bytes, 0, "")
			if c == 1 {
				one = r.rssMB
			} else {
				fmt.Printf("%-34s %.1f MB more per extra connection\n", "", (r.rssMB-one)/float64(c-1))
				metric(b, "RSS per extra connection", (r.rssMB-one)/float64(c-1), "MB")
			}
		}
	}
}
