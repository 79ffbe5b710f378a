package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
)

// BenchmarkRestoreScale restores a foreign Maildir of N small messages
// (about 1 KB) into one empty Dovecot folder (INBOX) with `mailkeep
// restore --from-maildir`, for each N of MAILKEEP_BENCH_RESTORE_SCALE
// (comma-separated, e.g. 5000,50000; skipped without it, so that the
// default `make bench` stays short). It prints wall and CPU time (mailkeep
// and Dovecot, as the children's rusage of the test process), peak RSS
// and the growth against the first size: linear growth is the goal
// (issue 16: 50,000 within 12x the time of 5,000). Where mbsync is
// installed it pushes the same Maildir into another account, for
// comparison.
func BenchmarkRestoreScale(b *testing.B) {
	spec := os.Getenv("MAILKEEP_BENCH_RESTORE_SCALE")
	if spec == "" {
		b.Skip("set MAILKEEP_BENCH_RESTORE_SCALE=5000,50000")
	}
	var sizes []int
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("MAILKEEP_BENCH_RESTORE_SCALE: %q", s)
		}
		sizes = append(sizes, n)
	}
	dv, err := dovecottest.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dv.Close()
	// mbsync pushes one APPEND per message: quadratic on Dovecot's
	// Maildir, half an hour for 50,000. Up to MAILKEEP_BENCH_MBSYNC_MAX
	// messages (default 20,000) only.
	_, mbsyncErr := exec.LookPath("mbsync")
	mbsyncMax := 20000
	if s := os.Getenv("MAILKEEP_BENCH_MBSYNC_MAX"); s != "" {
		mbsyncMax, _ = strconv.Atoi(s)
	}
	users := make([]string, len(sizes))
	for i := range sizes {
		users[i] = fmt.Sprintf("scale%d", i)
		for _, u := range []string{users[i], "mbsync" + users[i]} {
			if err := dv.CreateUser(u, benchPass); err != nil {
				b.Fatal(err)
			}
		}
	}
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "mailkeep")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/mailkeep").CombinedOutput(); err != nil {
		b.Fatalf("building mailkeep: %v %s", err, out)
	}
	var first float64
	for i, n := range sizes {
		dir := filepath.Join(tmp, fmt.Sprintf("maildir%d", n))
		if err := smallMaildir(dir, n); err != nil {
			b.Fatal(err)
		}
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
		dvBefore := dovecotCPU(dv)
		r := run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bin, "restore", "--from-maildir", dir, "--folder", "INBOX",
			"--imap", "imap://"+users[i]+"@"+dv.IMAPAddr, "--tls", "none", "--quiet")
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
		cpu := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
		dvCPU := dovecotCPU(dv) - dvBefore
		if i == 0 {
			first = r.secs
		}
		growth := r.secs / first
		fmt.Printf("restore %6d msgs into one folder %8.2f s %7.0f msg/s  CPU mailkeep %6.2f s, Dovecot %6.2f s  RSS %6.1f MB  %5.1fx the time of %d for %5.1fx the messages\n",
			n, r.secs, float64(n)/r.secs, cpu, dvCPU, r.rssMB, growth, sizes[0], float64(n)/float64(sizes[0]))
		if mbsyncErr == nil && n <= mbsyncMax {
			m := mbsyncPush(b, dir, dv.IMAPAddr, "mbsync"+users[i])
			fmt.Printf("mbsync push %6d msgs into one folder %8.2f s %7.0f msg/s  mailkeep %.2fx mbsync\n", n, m.secs, float64(n)/m.secs, r.secs/m.secs)
			b.ReportMetric(r.secs/m.secs, fmt.Sprintf("x-mbsync-%d", n))
		}
		b.ReportMetric(r.secs, fmt.Sprintf("s-%d", n))
		b.ReportMetric(growth, fmt.Sprintf("growth-%d", n))
	}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// smallMaildir writes a Maildir of n small messages, a tenth of them
// flagged and with a keyword-free flag set, in cur/.
func smallMaildir(dir string, n int) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	line := strings.Repeat("x", 70) + "\r\n"
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: m %d\r\nMessage-ID: <%d.scale@example.org>\r\nDate: %s\r\n\r\n%s",
			i, i, date.Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), strings.Repeat(line, 12))
		flags := "S"
		if i%10 == 0 {
			flags = "FS"
		}
		name := filepath.Join(dir, "cur", fmt.Sprintf("%d.%d.scale:2,%s", 1600000000+i, i, flags))
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			return err
		}
		t := date.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(name, t, t); err != nil {
			return err
		}
	}
	return nil
}

// mbsyncPush pushes a copy of the Maildir dir (mbsync renames its files
// and keeps its state there) into user's INBOX with mbsync, and times it.
func mbsyncPush(b *testing.B, dir, addr, user string) result {
	host, port, _ := net.SplitHostPort(addr)
	top, err := os.MkdirTemp("", "mailkeep-mbsync")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755) // mbsync runs as user bench
	work := filepath.Join(top, "Maildir")
	if out, err := exec.Command("cp", "-r", dir, work).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	rc := filepath.Join(work, "mbsyncrc")
	os.WriteFile(rc, []byte(mbsyncStores(host, port, user, work+"/", work)+`
Channel c
Far :r:INBOX
Near :l:INBOX
Sync Push
SyncState *
`), 0o600)
	return asBench(b, work, "mbsync", "-q", "-c", rc, "c")
}

// dovecotCPU is the CPU time, in seconds, of the Dovecot processes that
// have ended (the master's reaped children: imap, auth, ...), from
// /proc/PID/stat's cutime and cstime; it waits until the figure holds for
// a moment, so that the imap process of a run just ended is counted. 0
// where /proc or the master's pid file cannot be read.
func dovecotCPU(dv *dovecottest.Server) float64 {
	b, err := os.ReadFile(filepath.Join(dv.Dir, "run", "master.pid"))
	if err != nil {
		return 0
	}
	pid := strings.TrimSpace(string(b))
	read := func() float64 {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return 0
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 {
			return 0
		}
		cu, _ := strconv.ParseFloat(f[13], 64) // field 16, cutime
		cs, _ := strconv.ParseFloat(f[14], 64) // field 17, cstime
		return (cu + cs) / 100                 // USER_HZ
	}
	v := read()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 25; i++ {
		<-tick.C
		w := read()
		if w == v {
			break
		}
		v = w
	}
	return v
}
