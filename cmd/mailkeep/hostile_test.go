package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/hostile"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// hostileTimeout is the --timeout of the hostile-server tests.
const hostileTimeout = 500 * time.Millisecond

// maxRSS is the memory bound against endless lines.
const maxRSS = 300 << 20

// measured is one run of the binary: exit code, wall time, peak RSS.
type measured struct {
	result
	elapsed time.Duration
	rss     int64 // bytes
	killed  bool  // still running at the deadline (or over the RSS cap)
}

// runMeasured runs bin with args, killing it after limit or when its RSS
// passes 2 GB (so that the unchanged code can be measured too).
func runMeasured(t *testing.T, bin string, limit time.Duration, env []string, args ...string) measured {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	killed := false
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(limit)
		for {
			select {
			case <-done:
				return
			case <-deadline:
				killed = true
				cmd.Process.Kill()
				return
			case <-tick.C:
				if rssNow(cmd.Process.Pid) > 2<<30 {
					killed = true
					cmd.Process.Kill()
					return
				}
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	m := measured{elapsed: time.Since(start), killed: killed}
	m.stdout, m.stderr = so.String(), se.String()
	if ee, ok := err.(*exec.ExitError); ok {
		m.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rss = ru.Maxrss << 10 // KB on Linux
	}
	return m
}

// rssNow reads a process's current RSS from /proc (0 if unknown).
func rssNow(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize())
}

// hostileIMAP is an IMAP account behind a hostile proxy: INBOX (3
// messages), Good (2), and BadNul, BadUtf7 (1 each, renamed by the
// BadNames proxy).
func hostileIMAP(t *testing.T, f hostile.Fault) (*hostile.Proxy, int) {
	mem := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, mem.Addr, user, pass)
	n := 0
	add := func(folder string, k int) {
		for i := 0; i < k; i++ {
			body := fmt.Sprintf("Subject: %s %d\r\nMessage-ID: <%s.%d@t>\r\n\r\n%s\r\n", folder, i, folder, i, strings.Repeat("body line\r\n", 2000))
			imaptest.Append(t, c, folder, nil, time.Now().Add(-time.Duration(i)*time.Hour), []byte(body))
			n++
		}
	}
	add("INBOX", 3)
	for _, f := range []string{"Good", "BadNul", "BadUtf7"} {
		imaptest.Create(t, c, f)
	}
	add("Good", 2)
	add("BadNul", 1)
	add("BadUtf7", 1)
	c.Logout().Wait()
	return hostile.Start(t, mem.Addr, f), n
}

type hostileCase struct {
	name string
	imap hostile.Fault
	pop3 pop3test.Options
	// want: exit code and what stderr must name.
	code int
	msg  []string
	// delete: POP3 --delete
	delete bool
}

var hostileCases = []hostileCase{
	{name: "imap silent after greeting", imap: hostile.SilentAfterGreeting, code: 1, msg: []string{"did not answer", user + "@"}},
	{name: "imap silent after LOGIN", imap: hostile.SilentAfterLogin, code: 1, msg: []string{"did not answer", user + "@"}},
	{name: "imap stall between commands", imap: hostile.SilentAfterList, code: 3, msg: []string{"did not answer", "folder"}},
	{name: "imap stall inside a literal", imap: hostile.StallInLiteral, code: 3, msg: []string{"did not answer", "inside a literal", "folder"}},
	{name: "imap endless LIST line", imap: hostile.EndlessList, code: 1, msg: []string{"over-long line", user + "@"}},
	{name: "imap endless FETCH item", imap: hostile.EndlessFetch, code: 3, msg: []string{"over-long line", "folder"}},
	{name: "imap NUL and bad mUTF-7 folder names", imap: hostile.BadNames, code: 3, msg: []string{`Bad\x00Nul`, `Bad&Jjo`, "unusable mailbox name"}},
	{name: "pop3 silent after PASS", pop3: pop3test.Options{SilentAfterPass: true}, code: 1, msg: []string{"did not answer", "bob@"}, delete: true},
	{name: "pop3 stall inside RETR", pop3: pop3test.Options{StallInRetr: true}, code: 1, msg: []string{"did not answer", "INBOX"}, delete: true},
	{name: "pop3 endless LIST line", pop3: pop3test.Options{EndlessList: true}, code: 1, msg: []string{"over the limit", "bob@"}, delete: true},
	{name: "pop3 endless status line", pop3: pop3test.Options{EndlessStatus: true}, code: 1, msg: []string{"over the limit", "bob@"}, delete: true},
	{name: "pop3 endless message", pop3: pop3test.Options{EndlessRetr: true}, code: 1, msg: []string{"past twice the size", "uidl \"uid-0001\""}, delete: true},
	{name: "pop3 short RETR, full size announced", pop3: pop3test.Options{ShortRetr: true}, code: 3, msg: []string{"uid-0001", "never deleted", "LIST announced"}, delete: true},
}

func popMessages() [][]byte {
	var msgs [][]byte
	for i := 0; i < 4; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Subject: pop %d\r\n\r\n%s", i, strings.Repeat("pop body line\r\n", 500))))
	}
	return msgs
}

// hostileRun runs one case with bin: the hostile run, then (with heal) a
// run against the healed server on the same archive. It returns the
// hostile run's measurement and the messages archived by both runs.
func hostileRun(t *testing.T, bin string, tc hostileCase, limit time.Duration, timeoutFlag bool) (measured, int, int, []string) {
	dir := filepath.Join(t.TempDir(), "arch")
	var args []string
	var heal func()
	var total int
	var deleted func() []string
	if tc.pop3 != (pop3test.Options{}) {
		msgs := popMessages()
		srv := pop3test.Start(t, "bob", pass, msgs, tc.pop3)
		args = []string{"backup", "--pop3", "pop3://bob@" + srv.Addr, "--tls", "none", "--archive", dir, "--json"}
		if tc.delete {
			args = append(args, "--delete")
		}
		heal = func() { srv.SetOptions(pop3test.Options{}) }
		total = len(msgs)
		deleted = srv.Deleted
	} else {
		p, n := hostileIMAP(t, tc.imap)
		args = []string{"backup", "--imap", "imap://" + user + "@" + p.Addr, "--tls", "none", "--archive", dir, "--json", "--connections", "2"}
		heal = func() { p.SetFault(hostile.None) }
		total = n
		deleted = func() []string { return nil }
	}
	if timeoutFlag {
		args = append(args, "--timeout", hostileTimeout.String())
	}
	m := runMeasured(t, bin, limit, pwEnv(), args...)
	fetched := summaryFetched(m.stdout)
	heal()
	// The lock is released: a second run opens the archive and gets the
	// rest; together nothing is missing.
	again := runMeasured(t, bin, limit, pwEnv(), slicesWithout(args, "--delete")...)
	if !m.killed && again.code != 0 {
		t.Errorf("%s: run after the hostile one: exit %d: %s", tc.name, again.code, again.stderr)
	}
	return m, fetched + summaryFetched(again.stdout), total, deleted()
}

func slicesWithout(a []string, x string) []string {
	var out []string
	for _, s := range a {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}

func summaryFetched(stdout string) int {
	var s struct {
		Fetched int `json:"fetched"`
	}
	json.Unmarshal([]byte(stdout), &s)
	return s.Fetched
}

// TestHostileServers runs mailkeep backup against servers that go silent,
// stall inside a literal, send endless lines, announce more than they
// send or list unusable folder names. Every run ends within a few
// timeouts, non-zero, under the memory bound, naming what failed; the
// lock is released (the next run against the healed server succeeds) and
// no message is lost or deleted.
func TestHostileServers(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			m, archived, total, deleted := hostileRun(t, bin, tc, 60*time.Second, true)
			if m.killed {
				t.Fatalf("still running after 60 s (rss %d MB)", m.rss>>20)
			}
			if m.code != tc.code {
				t.Errorf("exit %d, want %d: %s", m.code, tc.code, m.stderr)
			}
			for _, s := range tc.msg {
				if !strings.Contains(m.stderr, s) {
					t.Errorf("stderr does not name %q: %s", s, m.stderr)
				}
			}
			// A few timeouts (one per folder on a fresh connection at
			// worst) plus start-up.
			if m.elapsed > 10*time.Second {
				t.Errorf("took %s with --timeout %s", m.elapsed, hostileTimeout)
			}
			if m.rss > maxRSS {
				t.Errorf("peak RSS %d MB > %d MB", m.rss>>20, maxRSS>>20)
			}
			if tc.imap == hostile.BadNames {
				// The folders with unusable names fail, the others are
				// archived; healed, the next run gets those two too.
				if got := summaryFetched(m.stdout); got != total-2 {
					t.Errorf("hostile run archived %d messages, want %d", got, total-2)
				}
			}
			if archived != total {
				t.Errorf("archived %d of %d messages over both runs", archived, total)
			}
			if len(deleted) != 0 {
				t.Errorf("server deleted %v", deleted)
			}
			t.Logf("exit %d in %s, peak RSS %d MB: %s", m.code, m.elapsed.Round(time.Millisecond), m.rss>>20, m.stderr)
		})
	}
}

// TestHostileReport measures the hostile cases with another build of
// mailkeep (MAILKEEP_BEFORE=/path/to/binary, without --timeout, which it
// may not know) and prints the figures; it is how the "before" column of
// the figures in the report was made, and is skipped without the variable.
func TestHostileReport(t *testing.T) {
	before := os.Getenv("MAILKEEP_BEFORE")
	if before == "" {
		t.Skip("set MAILKEEP_BEFORE to a mailkeep binary to measure it")
	}
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			m, archived, total, deleted := hostileRun(t, before, tc, 60*time.Second, false)
			state := fmt.Sprintf("exit %d", m.code)
			if m.killed {
				state = "killed (still running)"
			}
			fmt.Printf("REPORT | %s | %s, %.1f s, %d MB RSS, deleted %d, archived %d/%d\n", tc.name, state, m.elapsed.Seconds(), m.rss>>20, len(deleted), archived, total)
		})
	}
}

// TestTinyTimeoutHealthyRun: a healthy server with a 100 ms timeout: the
// connections that wait for nothing while others work, or that are not
// read while a big body goes to disk, are not ended: backup and restore
// succeed. (internal/imapconn's TestIdleSurvives holds a connection idle
// for several timeouts.)
func TestTinyTimeoutHealthyRun(t *testing.T) {
	mem := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, mem.Addr, user, pass)
	imaptest.Create(t, c, "Big")
	for i := 0; i < 3; i++ {
		imaptest.Append(t, c, "Big", nil, time.Now(), []byte(fmt.Sprintf("Subject: big %d\r\n\r\n%s", i, strings.Repeat("0123456789abcdef0123456789abcdef\r\n", 300000))))
	}
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: small\r\n\r\nx\r\n"))
	c.Logout().Wait()
	dir := filepath.Join(t.TempDir(), "arch")
	// 100 ms: compressing 30 MB (zstd) takes longer than that, while the
	// main connection sits idle after its LIST and the worker's
	// connection is not read while the body goes to disk.
	m := runMeasured(t, bin, 60*time.Second, pwEnv(), "backup", "--imap", "imap://"+user+"@"+mem.Addr, "--tls", "none", "--archive", dir, "--json", "--connections", "2", "--timeout", "100ms")
	if m.code != 0 || summaryFetched(m.stdout) != 4 {
		t.Fatalf("exit %d, fetched %d in %s: %s", m.code, summaryFetched(m.stdout), m.elapsed, m.stderr)
	}
	dst := memimap.Start(t, user, pass)
	m = runMeasured(t, bin, 60*time.Second, pwEnv(), "restore", "--imap", "imap://"+user+"@"+dst.Addr, "--tls", "none", "--archive", dir, "--timeout", "100ms")
	if m.code != 0 {
		t.Fatalf("restore: exit %d in %s: %s", m.code, m.elapsed, m.stderr)
	}
}

// TestCertificateErrorAdvisesCAFile: an untrusted certificate, on implicit
// TLS and after STARTTLS, points at --ca-file, never at plaintext.
func TestCertificateErrorAdvisesCAFile(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	for _, url := range []string{"imaps://" + user + "@" + dv.IMAPSAddr, "imap://" + user + "@" + dv.IMAPAddr} {
		r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--archive", t.TempDir())
		if r.code != 1 || !strings.Contains(r.stderr, "--ca-file") || strings.Contains(r.stderr, "--tls none") {
			t.Errorf("%s: exit %d, stderr %q: want advice to use --ca-file and none to use --tls none", url, r.code, r.stderr)
		}
	}
}

// TestTimeoutFlag: --timeout is checked, and given with --config it
// overrides the file's timeout.
func TestTimeoutFlag(t *testing.T) {
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://a@127.0.0.1:1", "--tls", "none", "--archive", t.TempDir(), "--timeout", "1ns")
	if r.code != 2 || !strings.Contains(r.stderr, "--timeout") {
		t.Errorf("--timeout 1ns: exit %d %q", r.code, r.stderr)
	}
	p, _ := hostileIMAP(t, hostile.SilentAfterLogin)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[[account]]\nname = \"h\"\nimap = \"imap://%s@%s\"\ntls = \"none\"\npassword_env = \"MAILKEEP_PASSWORD\"\narchive = %q\ntimeout = \"1h\"\n", user, p.Addr, t.TempDir())), 0o600)
	m := runMeasured(t, bin, 60*time.Second, pwEnv(), "backup", "--config", cfg, "--timeout", "300ms")
	if m.code == 0 || m.elapsed > 10*time.Second || !strings.Contains(m.stderr, "300ms") {
		t.Errorf("config timeout 1h, --timeout 300ms: exit %d after %s: %s", m.code, m.elapsed, m.stderr)
	}
	os.WriteFile(cfg, []byte("[[account]]\nname = \"h\"\nimap = \"imaps://a@b\"\npassword_env = \"X\"\ntimeout = \"soon\"\n"), 0o600)
	r = mailkeep(t, nil, "check", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stderr, "timeout") {
		t.Errorf("timeout = \"soon\": exit %d %q", r.code, r.stderr)
	}
}

// TestTimeoutEveryCommand: check, verify --server and restore take
// --timeout too, and end against a server gone silent after LOGIN.
func TestTimeoutEveryCommand(t *testing.T) {
	p, _ := hostileIMAP(t, hostile.None)
	url := "imap://" + user + "@" + p.Addr
	dir := filepath.Join(t.TempDir(), "arch")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
	}
	p.SetFault(hostile.SilentAfterLogin)
	for _, args := range [][]string{
		{"check", "--imap", url, "--archive", dir},
		{"verify", "--archive", dir, "--server", "--imap", url},
		{"restore", "--imap", url, "--archive", dir, "--folder", "Good"},
	} {
		args = append(args, "--tls", "none", "--timeout", hostileTimeout.String())
		m := runMeasured(t, bin, 60*time.Second, pwEnv(), args...)
		if m.killed || m.code == 0 || m.elapsed > 10*time.Second || !strings.Contains(m.stderr, "did not answer") {
			t.Errorf("%s: exit %d after %s (killed %v): %s", args[0], m.code, m.elapsed, m.killed, m.stderr)
		}
	}
}
