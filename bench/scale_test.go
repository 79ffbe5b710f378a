package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
)

// The scale cases run only with MAILKEEP_BENCH_SCALE=1 (they take many
// minutes): one folder of 10k / 50k / 200k messages (full, no-op, +100
// new, 1,000 flag changes), 100,000 mostly empty folders (full, no-op,
// ls, verify) and 1,000,000 small messages over 100 folders (full, no-op,
// ls, verify). Each case prints wall, CPU and peak RSS, and the growth
// ratio from one size to the next. With MAILKEEP_BENCH_PREV the previous
// build runs each case too, right before this one, on the same server
// state. The mail is written straight into the private Dovecot's Maildirs
// and indexed with doveadm, not APPENDed.
//
//	MAILKEEP_BENCH_SCALE_SIZES    messages per folder sizes (10000,50000,200000)
//	MAILKEEP_BENCH_SCALE_FOLDERS  folder count (100000; 0 skips)
//	MAILKEEP_BENCH_SCALE_MILLION  messages over 100 folders (1000000; 0 skips)

// The scale cases have a Dovecot of their own that does not fsync
// (mail_fsync = never): filling and indexing 100,000 folders would
// otherwise take most of an hour, and mailkeep's figures are what is
// measured. Its accounts are created up front (Dovecot notices
// passwd-file changes by mtime only).
var (
	scaleOnce  sync.Once
	scaleDV    *dovecottest.Server
	scaleErr   error
	scaleUsers = []string{"scale0", "scale1", "scale2", "scale3", "scale4", "folders", "million"}
)

// The scale cases' server directory is MAILKEEP_BENCH_SCALE_SERVERDIR
// (default /dev/shm when it exists).

// scaleOn skips the case unless MAILKEEP_BENCH_SCALE is set, and returns
// the bench environment with the scale Dovecot in place of the shared one.
func scaleOn(b *testing.B) *env {
	b.Helper()
	if os.Getenv("MAILKEEP_BENCH_SCALE") == "" {
		b.Skip("scale cases: set MAILKEEP_BENCH_SCALE=1")
	}
	e := setup(b)
	scaleOnce.Do(func() {
		// The server's mail lives in memory where it can (tmpfs): it stands
		// for a server with a warm page cache, and filling 100,000 folders
		// takes seconds instead of many minutes. The archives stay on disk.
		if dir := cmp.Or(os.Getenv("MAILKEEP_BENCH_SCALE_SERVERDIR"), "/dev/shm"); isDir(dir) {
			old, had := os.LookupEnv("TMPDIR")
			os.Setenv("TMPDIR", dir)
			defer func() {
				if had {
					os.Setenv("TMPDIR", old)
				} else {
					os.Unsetenv("TMPDIR")
				}
			}()
		}
		scaleDV, scaleErr = dovecottest.New(&dovecottest.Options{ExtraConfig: "mail_fsync = never"})
		for _, u := range scaleUsers {
			if scaleErr == nil {
				scaleErr = scaleDV.CreateUser(u, benchPass)
			}
		}
	})
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	se := *e
	se.dv = scaleDV
	return &se
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func closeScale() {
	if scaleDV != nil {
		scaleDV.Close()
	}
}

func envInts(name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}

// smallMessage is a ~400-byte text message, different for every i.
func smallMessage(i int, date int64) []byte {
	return fmt.Appendf(nil, "From: user%d@example.com\nTo: alice@example.com\nSubject: scale message %d\nDate: %s\nMessage-ID: <scale.%d@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nThis is message %d of the scale benchmark.\nIt is small on purpose: the case measures per-message costs.\n",
		i%300, i, time.Unix(date, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 +0000"), i, i)
}

// fillMaildir writes n small messages into the Maildir folder dir (its
// cur/ or new/), numbered from first, with the info flags given.
func fillMaildir(dir, sub string, first, n int, flags string) error {
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
			return err
		}
	}
	for i := first; i < first+n; i++ {
		date := int64(1_700_000_000 - i*60)
		data := smallMessage(i, date)
		name := fmt.Sprintf("%d.M%dP1.scale,S=%d", date, i, len(data))
		if sub == "cur" {
			name += ":2," + flags
		}
		p := filepath.Join(dir, sub, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		t := time.Unix(date, 0)
		os.Chtimes(p, t, t)
	}
	return nil
}

type build struct{ name, bin string }

func builds(e *env) []build {
	out := []build{{"mailkeep", e.bin}}
	if prev := os.Getenv("MAILKEEP_BENCH_PREV"); prev != "" {
		out = append([]build{{"previous", prev}}, out...)
	}
	return out
}

func (e *env) doveadm(b *testing.B, args ...string) {
	b.Helper()
	start := time.Now()
	if out, err := e.dv.RunDoveadm(args...); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	fmt.Printf("%-34s %7.2f s (setup: doveadm %s)\n", "", time.Since(start).Seconds(), strings.Join(args, " "))
}

// growth prints how each case's wall time grew from one size to the next.
func growth(label string, sizes []int, cases []string, wall map[string][]float64) {
	for _, c := range cases {
		w := wall[c]
		var parts []string
		for i := 1; i < len(w) && i < len(sizes); i++ {
			parts = append(parts, fmt.Sprintf("%d->%d: %.2fx (size %.1fx)", sizes[i-1], sizes[i], w[i]/w[i-1], float64(sizes[i])/float64(sizes[i-1])))
		}
		if len(parts) > 0 {
			fmt.Printf("growth %-8s %-26s %s\n", label, c, strings.Join(parts, ", "))
		}
	}
}

// BenchmarkScaleFolder: one folder of 10k / 50k / 200k messages.
func BenchmarkScaleFolder(b *testing.B) {
	e := scaleOn(b)
	sizes := envInts("MAILKEEP_BENCH_SCALE_SIZES", []int{10000, 50000, 200000})
	if len(sizes) > 5 {
		b.Fatal("at most 5 sizes")
	}
	cases := []string{"full", "no-op", "+100 new", "1000 flag changes"}
	wall := map[string]map[string][]float64{}
	for _, bu := range builds(e) {
		wall[bu.name] = map[string][]float64{}
	}
	for si, n := range sizes {
		u := fmt.Sprintf("scale%d", si)
		md := e.dv.Maildir(u)
		start := time.Now()
		if err := fillMaildir(md, "cur", 0, n, "S"); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("%-34s %7.2f s (setup: %d messages written)\n", "", time.Since(start).Seconds(), n)
		e.doveadm(b, "index", "-u", u, "INBOX")
		url := "imap://" + u + "@" + e.dv.IMAPAddr
		mk := func(bu build, dir string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		}
		dirs := map[string]string{}
		step := func(c string, msgs int) {
			for _, bu := range builds(e) {
				r := mk(bu, dirs[bu.name])
				report(b, fmt.Sprintf("%s %s, %d msgs", bu.name, c, n), r, msgs, 0, 0, "")
				wall[bu.name][c] = append(wall[bu.name][c], r.secs)
			}
		}
		for _, bu := range builds(e) {
			dirs[bu.name] = filepath.Join(e.tmp, fmt.Sprintf("scale%d-%s", si, bu.name))
			os.RemoveAll(dirs[bu.name])
		}
		step("full", n)
		step("no-op", 0)
		if err := fillMaildir(md, "new", n, 100, ""); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		e.doveadm(b, "force-resync", "-u", u, "INBOX")
		step("+100 new", 100)
		e.doveadm(b, "flags", "add", "-u", u, `\Flagged`, "mailbox", "INBOX", "uid", fmt.Sprintf("%d:%d", n/2, n/2+999))
		step("1000 flag changes", 0)
		os.RemoveAll(md) // the next size starts from an empty account
		for _, bu := range builds(e) {
			os.RemoveAll(dirs[bu.name])
		}
	}
	for _, bu := range builds(e) {
		growth(bu.name, sizes, cases, wall[bu.name])
	}
}

// BenchmarkScaleFolders: 100,000 folders, one in a hundred holding 3
// messages, the rest empty.
func BenchmarkScaleFolders(b *testing.B) {
	e := scaleOn(b)
	n := envInts("MAILKEEP_BENCH_SCALE_FOLDERS", []int{100000})[0]
	if n == 0 {
		b.Skip("MAILKEEP_BENCH_SCALE_FOLDERS=0")
	}
	md := e.dv.Maildir("folders")
	start := time.Now()
	msgs := 0
	for fi := 1; fi <= n; fi++ {
		dir := filepath.Join(md, fmt.Sprintf(".F%06d", fi))
		k := 0
		if fi%100 == 0 {
			k = 3
		}
		if err := fillMaildir(dir, "cur", fi*10, k, "S"); err != nil {
			b.Fatal(err)
		}
		msgs += k
		os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
	}
	if err := chownForDovecot(md); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("%-34s %7.2f s (setup: %d folders, %d messages written)\n", "", time.Since(start).Seconds(), n, msgs)
	e.doveadm(b, "index", "-u", "folders", "*")
	url := "imap://folders@" + e.dv.IMAPAddr
	// The server's share: one LIST with STATUS of every folder, the
	// floor of a no-op backup.
	report(b, fmt.Sprintf("floor LIST-STATUS, %d folders", n), rawListStatus(b, e.dv.IMAPAddr, "folders"), 0, 0, 0, "")
	for _, bu := range builds(e) {
		dir := filepath.Join(e.tmp, "folders-"+bu.name)
		os.RemoveAll(dir)
		mk := func(args ...string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, args...)
		}
		label := fmt.Sprintf("%d folders", n)
		// Dovecot answers a LIST of 100,000 Maildir++ folders after minutes
		// of silence: more than mailkeep's default I/O timeout.
		report(b, bu.name+" full, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--timeout", "20m"), msgs, 0, 0, "")
		report(b, bu.name+" no-op, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--timeout", "20m"), 0, 0, 0, "")
		ls := mk("ls", "--archive", dir)
		report(b, bu.name+" ls, "+label, ls, 0, 0, 0, "")
		fmt.Printf("%-34s ls: %d lines\n", "", bytes.Count([]byte(ls.out), []byte("\n")))
		report(b, bu.name+" verify, "+label, mk("verify", "--archive", dir, "--quiet"), msgs, 0, 0, "")
		files := 0
		filepath.WalkDir(filepath.Join(dir, "mbox"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
			}
			return nil
		})
		fmt.Printf("%-34s archive: %d folder files\n", "", files)
		os.RemoveAll(dir)
	}
}

// BenchmarkScaleMillion: 1,000,000 small messages over 100 folders.
func BenchmarkScaleMillion(b *testing.B) {
	e := scaleOn(b)
	total := envInts("MAILKEEP_BENCH_SCALE_MILLION", []int{1000000})[0]
	if total == 0 {
		b.Skip("MAILKEEP_BENCH_SCALE_MILLION=0")
	}
	md := e.dv.Maildir("million")
	per := total / 100
	start := time.Now()
	for fi := range 100 {
		dir := md
		if fi > 0 {
			dir = filepath.Join(md, fmt.Sprintf(".M%03d", fi))
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
		}
		if err := fillMaildir(dir, "cur", fi*per, per, "S"); err != nil {
			b.Fatal(err)
		}
	}
	if err := chownForDovecot(md); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("%-34s %7.2f s (setup: %d messages written)\n", "", time.Since(start).Seconds(), per*100)
	e.doveadm(b, "index", "-u", "million", "*")
	url := "imap://million@" + e.dv.IMAPAddr
	for _, bu := range builds(e) {
		dir := filepath.Join(e.tmp, "million-"+bu.name)
		os.RemoveAll(dir)
		mk := func(args ...string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, args...)
		}
		label := fmt.Sprintf("%d msgs/100 folders", per*100)
		report(b, bu.name+" full, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"), per*100, 0, 0, "")
		report(b, bu.name+" no-op, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"), 0, 0, 0, "")
		report(b, bu.name+" ls, "+label, mk("ls", "--archive", dir), 0, 0, 0, "")
		report(b, bu.name+" verify, "+label, mk("verify", "--archive", dir, "--quiet"), per*100, 0, 0, "")
		os.RemoveAll(dir)
	}
}

// rawListStatus times one LIST "" "*" RETURN (STATUS ...) on its own
// connection, the answer read and discarded.
func rawListStatus(b *testing.B, addr, user string) result {
	b.Helper()
	start := time.Now()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, benchPass).Wait(); err != nil {
		b.Fatal(err)
	}
	cmd := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}})
	n := 0
	for cmd.Next() != nil {
		n++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	c.Logout().Wait()
	return result{secs: time.Since(start).Seconds()}
}
