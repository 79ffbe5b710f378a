package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkManyFolders: an account of 2,000 folders of 5 messages each
// (MAILKEEP_BENCH_FOLDERS overrides the count): full backup, no-op, ls and
// verify, and with MAILKEEP_BENCH_PREV the same by that build, each as its
// own case with its CPU time.
func BenchmarkManyFolders(b *testing.B) {
	e := setup(b)
	folders := 2000
	if s := os.Getenv("MAILKEEP_BENCH_FOLDERS"); s != "" {
		fmt.Sscan(s, &folders)
	}
	md := e.dv.Maildir("many")
	if _, err := os.Stat(filepath.Join(md, ".F0001")); err != nil {
		r := rand.New(rand.NewPCG(7, 7))
		for fi := range folders {
			dir := filepath.Join(md, fmt.Sprintf(".F%04d", fi))
			if fi == 0 {
				dir = md
			}
			for _, s := range []string{"cur", "new", "tmp"} {
				if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
					b.Fatal(err)
				}
			}
			if fi > 0 {
				os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
			}
			for i := range 5 {
				date := int64(1_700_000_000 - r.IntN(86400*365))
				data := message(r, fi*5+i, date)
				p := filepath.Join(dir, "cur", fmt.Sprintf("%d.M%dP%d.bench,S=%d:2,S", date, fi*5+i, fi, len(data)))
				if err := os.WriteFile(p, data, 0o600); err != nil {
					b.Fatal(err)
				}
				os.Chtimes(p, time.Unix(date, 0), time.Unix(date, 0))
			}
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		// Dovecot indexes each folder at its first access: done here, so
		// that the first build timed does not pay for it.
		if out, err := e.dv.RunDoveadm("index", "-u", "many", "*"); err != nil {
			b.Fatalf("doveadm index: %v %s", err, out)
		}
	}
	url := "imap://many@" + e.dv.IMAPAddr
	builds := []struct{ name, bin string }{{"mailkeep", e.bin}}
	if prev := os.Getenv("MAILKEEP_BENCH_PREV"); prev != "" {
		builds = append([]struct{ name, bin string }{{"previous", prev}}, builds...)
	}
	for i := 0; i < b.N; i++ {
		for _, bu := range builds {
			dir := filepath.Join(e.tmp, "many-"+bu.name)
			os.RemoveAll(dir)
			mk := func(args ...string) result {
				return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, args...)
			}
			full := mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
			report(b, bu.name+" full, 2000 folders", full, folders*5, 0, 0, "")
			noop := mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
			report(b, bu.name+" no-op, 2000 folders", noop, 0, 0, 0, "")
			ls := mk("ls", "--archive", dir)
			report(b, bu.name+" ls, 2000 folders", ls, 0, 0, 0, "")
			if n := len(ls.out); n > 0 {
				fmt.Printf("%-34s ls: %d lines, last: %s\n", "", bytes.Count([]byte(ls.out), []byte("\n")), lastLine(ls.out))
			}
			ver := mk("verify", "--archive", dir, "--quiet")
			report(b, bu.name+" verify, 2000 folders", ver, folders*5, 0, 0, "")
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
