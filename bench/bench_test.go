package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/latency"
)

const benchUser, benchPass = "alice", "secret"

type env struct {
	dv     *dovecottest.Server
	bin    string
	tmp    string
	corpus Stats
}

var (
	once   sync.Once
	shared *env
	errEnv error
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeScale()
	if shared != nil {
		shared.dv.Close()
		os.RemoveAll(shared.tmp)
	}
	os.Exit(code)
}

func setup(b *testing.B) *env {
	b.Helper()
	once.Do(func() { shared, errEnv = newEnv() })
	if errEnv != nil {
		b.Fatal(errEnv)
	}
	return shared
}

func newEnv() (*env, error) {
	count := 5000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		count, _ = strconv.Atoi(s)
	}
	dv, err := dovecottest.New(nil)
	if err != nil {
		return nil, err
	}
	e := &env{dv: dv}
	// Every account up front: Dovecot notices passwd-file changes by mtime,
	// which misses several changes within one second.
	for _, u := range []string{benchUser, "big", "rest0", "wan0", "restprev", "many"} {
		if err := dv.CreateUser(u, benchPass); err != nil {
			return nil, err
		}
	}
	if e.corpus, err = Generate(dv.Maildir(benchUser), count, 1); err != nil {
		return nil, err
	}
	if err := chownForDovecot(dv.Maildir(benchUser)); err != nil {
		return nil, err
	}
	if out, err := dv.RunDoveadm("index", "-u", benchUser, "*"); err != nil {
		return nil, fmt.Errorf("doveadm index: %v %s", err, out)
	}
	if e.tmp, err = os.MkdirTemp("", "mailkeep-bench"); err != nil {
		return nil, err
	}
	os.Chmod(e.tmp, 0o755)
	e.bin = filepath.Join(e.tmp, "mailkeep")
	if out, err := exec.Command("go", "build", "-o", e.bin, "../cmd/mailkeep").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building mailkeep: %v %s", err, out)
	}
	fmt.Printf("corpus: %d messages, %.1f MB, %d folders (INBOX %d messages)\n", e.corpus.Messages, float64(e.corpus.Bytes)/1e6, len(Folders), e.corpus.Inbox)
	return e, nil
}

func chownForDovecot(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("dovecot")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// result is one timed run of a command.
type result struct {
	secs  float64
	rssMB float64
	cpu   float64 // user + system seconds (GNU time)
	out   string
}

// run times a command; peak RSS comes from GNU time (%M, KiB) when it is
// installed, else from the child's rusage.
func run(b *testing.B, env []string, name string, args ...string) result {
	b.Helper()
	// Start every timed run with no dirty pages left by the one before
	// (the previous build's Maildir durability used syncfs, which would
	// otherwise pay for them).
	syscall.Sync()
	timeOut := ""
	if gt, err := exec.LookPath("/usr/bin/time"); err == nil {
		f, _ := os.CreateTemp("", "rss")
		f.Close()
		timeOut = f.Name()
		defer os.Remove(timeOut)
		args = append([]string{"-f", "%M %U %S", "-o", timeOut, name}, args...)
		name = gt
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{secs: time.Since(start).Seconds(), out: out.String()}
	if timeOut != "" {
		kb, _ := os.ReadFile(timeOut)
		if f := strings.Fields(string(kb)); len(f) == 3 {
			v, _ := strconv.Atoi(f[0])
			r.rssMB = float64(v) / 1024
			u, _ := strconv.ParseFloat(f[1], 64)
			sy, _ := strconv.ParseFloat(f[2], 64)
			r.cpu = u + sy
		}
	} else if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rssMB = float64(ru.Maxrss) / 1024
		}
	}
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return r
}

func (e *env) mailkeep(b *testing.B, args ...string) result {
	return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, e.bin, args...)
}

// report prints one measured case and records it as a sub-benchmark of
// b named after the case, so that each metric in `go test -bench` output
// (and benchstat) belongs to the case it describes; ns/op is the case's
// wall time.
func report(b *testing.B, name string, r result, msgs int, bytes int64, ref float64, refName string) {
	b.Run(caseName(name), func(b *testing.B) {
		b.ReportMetric(r.secs*1e9, "ns/op")
		b.ReportMetric(r.secs, "s")
		if msgs > 0 {
			b.ReportMetric(float64(msgs)/r.secs, "msgs/s")
		}
		if bytes > 0 {
			b.ReportMetric(float64(bytes)/1e6/r.secs, "MB/s")
		}
		b.ReportMetric(r.rssMB, "peak-RSS-MB")
		if r.cpu > 0 {
			b.ReportMetric(r.cpu, "cpu-s")
		}
		if ref > 0 {
			b.ReportMetric(r.secs/ref, "x-"+refName)
		}
	})
	ratio := ""
	if ref > 0 {
		ratio = fmt.Sprintf("%.2fx %s", r.secs/ref, refName)
	}
	fmt.Printf("%-34s %7.2f s %8.0f msg/s %7.1f MB/s  RSS %6.1f MB  CPU %5.2f s  %s\n", name, r.secs, float64(msgs)/r.secs, float64(bytes)/1e6/r.secs, r.rssMB, r.cpu, ratio)
}

// metric records one figure as a sub-benchmark of its own.
func metric(b *testing.B, name string, v float64, unit string) {
	b.Run(caseName(name), func(b *testing.B) { b.ReportMetric(v, unit) })
}

// caseName turns a case description into a sub-benchmark name: no spaces
// (they would split the benchmark line) and no slashes.
func caseName(s string) string {
	return strings.NewReplacer(" ", "_", "/", "_", "->", "to", ",", "").Replace(s)
}

// rawFetch is the floor of a full IMAP backup: one connection, one
// UID FETCH 1:* BODY.PEEK[] per folder, bytes discarded.
func rawFetch(b *testing.B, addr string) result {
	b.Helper()
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 1<<20)
	n := 0
	cmd := func(line string) []string {
		n++
		tag := fmt.Sprintf("t%d", n)
		fmt.Fprintf(c, "%s %s\r\n", tag, line)
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			for strings.HasSuffix(l, "}\r\n") { // skip a literal
				i := strings.LastIndexByte(l, '{')
				size, _ := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-3], "+"))
				io.CopyN(io.Discard, br, int64(size))
				rest, _ := br.ReadString('\n')
				l = l[:i] + rest
			}
			if strings.HasPrefix(l, tag+" ") {
				return lines
			}
			lines = append(lines, l)
		}
	}
	br.ReadString('\n')
	cmd("LOGIN " + benchUser + " " + benchPass)
	var boxes []string
	for _, l := range cmd(`LIST "" "*"`) {
		if i := strings.LastIndex(l, ` "/" `); i >= 0 {
			boxes = append(boxes, strings.TrimSpace(l[i+5:]))
		}
	}
	for _, box := range boxes {
		cmd("SELECT " + box)
		cmd("UID FETCH 1:* (BODY.PEEK[])")
	}
	cmd("LOGOUT")
	return result{secs: time.Since(start).Seconds()}
}

// BenchmarkIMAP: full backup and no-op run, per format, against the floor
// and mbsync.
func BenchmarkIMAP(b *testing.B) {
	e := setup(b)
	for i := 0; i < b.N; i++ {
		floor := rawFetch(b, e.dv.IMAPAddr)
		report(b, "raw fetch floor", floor, e.corpus.Messages, e.corpus.Bytes, 0, "")
		mb := e.mbsync(b, e.dv.IMAPAddr)
		for _, format := range []string{"mbox.zst", "maildir", "mbox"} {
			dir := filepath.Join(e.tmp, "imap-"+format)
			os.RemoveAll(dir)
			url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
			full := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--quiet")
			report(b, "mailkeep full -> "+format, full, e.corpus.Messages, e.corpus.Bytes, floor.secs, "floor")
			size := treeBytes(dir)
			fmt.Printf("%-34s archive %.1f MB: %.1f%% of the mail\n", "", float64(size)/1e6, 100*float64(size)/float64(e.corpus.Bytes))
			metric(b, "archive size "+format, 100*float64(size)/float64(e.corpus.Bytes), "%-of-mail")
			if mb.full.secs > 0 {
				fmt.Printf("%-34s %.2fx mbsync full\n", "", full.secs/mb.full.secs)
			}
			noop := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
			report(b, "mailkeep no-op "+format, noop, 0, 0, mb.noop.secs, "mbsync-noop")
			if prev := os.Getenv("MAILKEEP_BENCH_PREV"); prev != "" {
				// The same work by another build (the previous release),
				// right after, for a ratio that the machine's noise
				// affects least.
				pdir := dir + "-prev"
				os.RemoveAll(pdir)
				pf := run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, prev, "backup", "--imap", url, "--tls", "none", "--archive", pdir, "--format", format, "--quiet")
				report(b, "previous build full -> "+format, pf, e.corpus.Messages, e.corpus.Bytes, full.secs, "this-build")
				psize := treeBytes(pdir)
				fmt.Printf("%-34s archive %.1f MB: %.1f%% of the mail\n", "", float64(psize)/1e6, 100*float64(psize)/float64(e.corpus.Bytes))
				metric(b, "previous build archive size "+format, 100*float64(psize)/float64(e.corpus.Bytes), "%-of-mail")
				pn := run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, prev, "backup", "--imap", url, "--tls", "none", "--archive", pdir, "--quiet")
				report(b, "previous build no-op "+format, pn, 0, 0, noop.secs, "this-build")
			}
		}
	}
}

type peer struct{ full, noop result }

// asBench runs a peer tool as user "bench" when we are root (mbsync and
// mpop misbehave as root).
func asBench(b *testing.B, dir string, name string, args ...string) result {
	if os.Geteuid() != 0 {
		return run(b, nil, name, args...)
	}
	if _, err := user.Lookup("bench"); err != nil {
		if out, err := exec.Command("useradd", "-m", "bench").CombinedOutput(); err != nil {
			b.Fatalf("useradd bench: %v %s", err, out)
		}
	}
	exec.Command("chown", "-R", "bench", dir).Run()
	return run(b, nil, "runuser", append([]string{"-u", "bench", "--", name}, args...)...)
}

func (e *env) mbsync(b *testing.B, addr string) peer {
	if _, err := exec.LookPath("mbsync"); err != nil {
		fmt.Println("mbsync not installed (apt-get install isync): no peer figures")
		return peer{}
	}
	host, port, _ := net.SplitHostPort(addr)
	dir := filepath.Join(e.tmp, "mbsync")
	os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "mail"), 0o755)
	rc := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(rc, []byte(mbsyncStores(host, port, benchUser, dir+"/mail/", dir+"/mail/INBOX")+`SubFolders Verbatim

Channel c
Far :r:
Near :l:
Patterns *
Create Near
Sync Pull
SyncState *
`), 0o600)
	var p peer
	p.full = asBench(b, dir, "mbsync", "-q", "-c", rc, "-a")
	report(b, "mbsync full -> Maildir", p.full, e.corpus.Messages, e.corpus.Bytes, 0, "")
	p.noop = asBench(b, dir, "mbsync", "-q", "-c", rc, "-a")
	report(b, "mbsync no-op", p.noop, 0, 0, 0, "")
	return p
}

// BenchmarkPOP3: full and no-op POP3 backup of INBOX against mpop.
func BenchmarkPOP3(b *testing.B) {
	e := setup(b)
	for i := 0; i < b.N; i++ {
		var mp peer
		if _, err := exec.LookPath("mpop"); err == nil {
			host, port, _ := net.SplitHostPort(e.dv.POP3Addr)
			dir := filepath.Join(e.tmp, "mpop")
			os.RemoveAll(dir)
			os.MkdirAll(dir, 0o755)
			rc := filepath.Join(dir, "mpoprc")
			os.WriteFile(rc, []byte(fmt.Sprintf("defaults\ntls off\nauth user\naccount a\nhost %s\nport %s\nuser %s\npassword %s\nkeep on\nonly_new on\nuidls_file %s/uidls\ndelivery mbox %s/inbox.mbox\naccount default : a\n", host, port, benchUser, benchPass, dir, dir)), 0o600)
			mp.full = asBench(b, dir, "mpop", "-C", rc, "-q")
			report(b, "mpop full INBOX -> mbox", mp.full, e.corpus.Inbox, 0, 0, "")
			mp.noop = asBench(b, dir, "mpop", "-C", rc, "-q")
			report(b, "mpop no-op", mp.noop, 0, 0, 0, "")
		} else {
			fmt.Println("mpop not installed (apt-get install mpop): no peer figures")
		}
		dir := filepath.Join(e.tmp, "pop3")
		os.RemoveAll(dir)
		url := "pop3://" + benchUser + "@" + e.dv.POP3Addr
		full := e.mailkeep(b, "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--quiet")
		report(b, "mailkeep POP3 full -> mbox.zst", full, e.corpus.Inbox, 0, mp.full.secs, "mpop")
		noop := e.mailkeep(b, "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--quiet")
		report(b, "mailkeep POP3 no-op", noop, 0, 0, mp.noop.secs, "mpop-noop")
	}
}

// BenchmarkWAN: the same through a 20 ms RTT proxy.
func BenchmarkWAN(b *testing.B) {
	e := setup(b)
	for i := 0; i < b.N; i++ {
		addr := latency.Proxy(b, e.dv.IMAPAddr, 20*time.Millisecond)
		floor := rawFetch(b, addr)
		report(b, "raw fetch floor @20ms", floor, e.corpus.Messages, e.corpus.Bytes, 0, "")
		dir := filepath.Join(e.tmp, "wan")
		os.RemoveAll(dir)
		url := "imap://" + benchUser + "@" + addr
		full := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		report(b, "mailkeep full @20ms", full, e.corpus.Messages, e.corpus.Bytes, floor.secs, "floor")
		noop := e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		report(b, "mailkeep no-op @20ms", noop, 0, 0, 0, "")
		e.restore(b, "restore @20ms", filepath.Join(e.tmp, "imap-mbox.zst"), addr, fmt.Sprintf("wan%d", i))
	}
}

func (e *env) restore(b *testing.B, name, dir, addr, dst string) result {
	if _, err := os.Stat(dir); err != nil {
		e.mailkeep(b, "backup", "--imap", "imap://"+benchUser+"@"+e.dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet")
	}
	r := e.mailkeep(b, "restore", "--archive", dir, "--imap", "imap://"+dst+"@"+addr, "--tls", "none", "--quiet")
	report(b, name, r, e.corpus.Messages, e.corpus.Bytes, 0, "")
	return r
}

// BenchmarkRestore: the mbox.zst archive into an empty account.
func BenchmarkRestore(b *testing.B) {
	e := setup(b)
	for i := 0; i < b.N; i++ {
		r := e.restore(b, "mailkeep restore (loopback)", filepath.Join(e.tmp, "imap-mbox.zst"), e.dv.IMAPAddr, fmt.Sprintf("rest%d", i))
		prevDir := filepath.Join(e.tmp, "imap-mbox.zst-prev") // written by BenchmarkIMAP's previous build
		if prev := os.Getenv("MAILKEEP_BENCH_PREV"); prev != "" && i == 0 {
			if _, err := os.Stat(prevDir); err == nil {
				pr := run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, prev, "restore", "--archive", prevDir, "--imap", "imap://restprev@"+e.dv.IMAPAddr, "--tls", "none", "--quiet")
				report(b, "previous build restore (loopback)", pr, e.corpus.Messages, e.corpus.Bytes, r.secs, "this-build")
			}
		}
	}
}

// BenchmarkBigMessage: peak RSS backing up one 100 MB message.
func BenchmarkBigMessage(b *testing.B) {
	e := setup(b)
	const size = 100 << 20
	u := "big"
	c := imaptest.Dial(b, e.dv.IMAPAddr, u, benchPass)
	imaptest.AppendReader(b, c, "INBOX", nil, time.Now(), imaptest.BigMessage(size), size)
	for i := 0; i < b.N; i++ {
		for _, format := range []string{"mbox.zst", "maildir"} {
			dir := filepath.Join(e.tmp, "big-"+format)
			os.RemoveAll(dir)
			r := e.mailkeep(b, "backup", "--imap", "imap://"+u+"@"+e.dv.IMAPAddr, "--tls", "none", "--archive", dir, "--format", format, "--quiet")
			report(b, "one 100 MB message -> "+format, r, 1, size, 0, "")
		}
	}
}

// BenchmarkVerifyExport: mailkeep verify of the mbox.zst and maildir
// archives of the corpus, and export of the mbox.zst archive to each
// format, as the binary runs them (time and peak RSS).
func BenchmarkVerifyExport(b *testing.B) {
	e := setup(b)
	url := "imap://" + benchUser + "@" + e.dv.IMAPAddr
	for i := 0; i < b.N; i++ {
		for _, format := range []string{"mbox.zst", "maildir"} {
			dir := filepath.Join(e.tmp, "imap-"+format)
			if _, err := os.Stat(dir); err != nil {
				e.mailkeep(b, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--quiet")
			}
			r := e.mailkeep(b, "verify", "--archive", dir, "--quiet")
			report(b, "mailkeep verify "+format, r, e.corpus.Messages, e.corpus.Bytes, 0, "")
		}
		src := filepath.Join(e.tmp, "imap-mbox.zst")
		for _, format := range []string{"mbox", "maildir", "eml"} {
			to := filepath.Join(e.tmp, "export-"+format)
			os.RemoveAll(to)
			r := e.mailkeep(b, "export", "--archive", src, "--to", to, "--format", format, "--quiet")
			report(b, "mailkeep export mbox.zst -> "+format, r, e.corpus.Messages, e.corpus.Bytes, 0, "")
			os.RemoveAll(to)
		}
	}
}

// mbsyncStores is the start of an mbsyncrc: the IMAP account and store
// (plaintext, loopback) and the Maildir store at path with its INBOX.
func mbsyncStores(host, port, user, path, inbox string) string {
	return fmt.Sprintf(`FSync no
IMAPAccount a
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN
PipelineDepth 50

IMAPStore r
Account a

MaildirStore l
Path %s
Inbox %s
`, host, port, user, benchPass, path, inbox)
}
