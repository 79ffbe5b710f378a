package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailkeep-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "mailkeep")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mailkeep: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const user, pass = "alice", "s3cret-Pa55"

type result struct {
	code           int
	stdout, stderr string
}

func mailkeep(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := result{code, so.String(), se.String()}
	if strings.Contains(r.stdout+r.stderr, pass) {
		t.Fatalf("password leaked in output: %q %q", r.stdout, r.stderr)
	}
	return r
}

func pwEnv() []string { return []string{"MAILKEEP_PASSWORD=" + pass} }

func startDovecot(t *testing.T) *dovecottest.Server {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	return dv
}

func TestBackupCLI(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i, m := range imaptest.Corpus() {
		imaptest.Append(t, c, []string{"INBOX", "Work/Größe & \"more\""}[i%2], []string{`\Seen`}, time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC), m.Body)
	}
	dir := filepath.Join(t.TempDir(), "arch")
	url := "imap://" + user + "@" + dv.IMAPAddr

	r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--json")
	if r.code != 0 {
		t.Fatalf("backup exit %d: %s", r.code, r.stderr)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if sum["outcome"] != "ok" || int(sum["fetched"].(float64)) != len(imaptest.Corpus()) {
		t.Errorf("summary: %v", sum)
	}
	if !strings.Contains(r.stderr, "new messages") {
		t.Errorf("no summary line on stderr: %q", r.stderr)
	}
	archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)

	// --quiet: nothing at all on success.
	r = mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("quiet no-op run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// ls and cat give back what the server has.
	r = mailkeep(t, nil, "ls", "--archive", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "Work/Größe & \"more\"") || !strings.Contains(r.stdout, "INBOX") {
		t.Errorf("ls: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = mailkeep(t, nil, "ls", "--archive", dir, "--folder", "INBOX")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1+(len(imaptest.Corpus())+1)/2 {
		t.Errorf("ls --folder INBOX: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	snap := imaptest.Snapshot(t, c, false)
	for _, m := range snap["INBOX"] {
		r = mailkeep(t, nil, "cat", "--archive", dir, "INBOX", fmt.Sprint(m.UID))
		sum := sha256.Sum256([]byte(r.stdout))
		if r.code != 0 || hex.EncodeToString(sum[:]) != m.SHA256 {
			t.Errorf("cat INBOX %d: exit %d, sha %x, want %s (%s)", m.UID, r.code, sum, m.SHA256, r.stderr)
		}
	}
	r = mailkeep(t, nil, "cat", "--archive", dir, "INBOX", "99999")
	if r.code != 1 || !strings.Contains(r.stderr, "99999") {
		t.Errorf("cat of a missing uid: exit %d %q", r.code, r.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	dv := startDovecot(t)
	url := "imap://" + user + "@" + dv.IMAPAddr
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, nil, 2, "Usage"},
		{"unknown command", nil, []string{"frobnicate"}, 2, "unknown command"},
		{"no archive", pwEnv(), []string{"backup", "--imap", url, "--tls", "none"}, 2, "--archive"},
		{"bad scheme", pwEnv(), []string{"backup", "--imap", "http://a@b", "--archive", dir}, 2, "scheme"},
		{"password in url", pwEnv(), []string{"backup", "--imap", "imap://a:pw@b", "--archive", dir}, 2, "no password in the URL"},
		{"no password", []string{"MAILKEEP_PASSWORD="}, []string{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--password-file", "/nonexistent"}, 2, "password-file"},
		{"bad format", pwEnv(), []string{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", "zip"}, 2, "format"},
		{"wrong password", []string{"MAILKEEP_PASSWORD=wrong"}, []string{"backup", "--imap", url, "--tls", "none", "--archive", dir}, 1, "login"},
		{"starttls not offered", pwEnv(), []string{"backup", "--imap", "imap://" + user + "@" + dv.POP3Addr, "--archive", dir}, 1, "STARTTLS"},
		{"untrusted cert", pwEnv(), []string{"backup", "--imap", "imaps://" + user + "@" + dv.IMAPSAddr, "--archive", dir}, 1, "certificate"},
		{"pop3 flag on imap", pwEnv(), []string{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--delete"}, 2, "POP3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i, a := range tt.args {
				if a == dir {
					tt.args[i] = t.TempDir()
				}
			}
			r := mailkeep(t, tt.env, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tt.code, r.stderr, tt.msg)
			}
		})
	}
	// With the CA file, implicit TLS works.
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imaps://"+user+"@"+dv.IMAPSAddr, "--ca-file", dv.CACertFile, "--archive", t.TempDir(), "--quiet")
	if r.code != 0 {
		t.Errorf("imaps with --ca-file: exit %d: %s", r.code, r.stderr)
	}
	r = mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--ca-file", dv.CACertFile, "--archive", t.TempDir(), "--quiet")
	if r.code != 0 {
		t.Errorf("STARTTLS with --ca-file: exit %d: %s", r.code, r.stderr)
	}
}

// TestConcurrentRuns: a second run on a locked archive exits 11 at once.
func TestConcurrentRuns(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: x\r\n\r\nx\r\n"))
	dir := t.TempDir()
	url := "imap://" + user + "@" + dv.IMAPAddr
	// Hold the lock as a running backup would.
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir)
	if r.code != 11 || !strings.Contains(r.stderr, "locked") || time.Since(start) > 5*time.Second {
		t.Errorf("locked archive: exit %d after %v: %s", r.code, time.Since(start), r.stderr)
	}
	lf.Close()
	// Two real runs at once: one wins, the other exits 11 or finds nothing to do.
	cmds := []*exec.Cmd{}
	for i := 0; i < 2; i++ {
		cmd := exec.Command(bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		cmd.Env = append(os.Environ(), pwEnv()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	codes := []int{}
	for _, cmd := range cmds {
		cmd.Wait()
		codes = append(codes, cmd.ProcessState.ExitCode())
	}
	for _, code := range codes {
		if code != 0 && code != 11 {
			t.Errorf("concurrent runs: exit codes %v", codes)
		}
	}
	archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)
}

// TestKilledRunsResume kills backups at random instants, many times, then
// lets one finish: every message is archived exactly once with the right
// bytes, and every file is readable by other tools.
func TestKilledRunsResume(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 240; i++ {
		size := 2000 + rng.IntN(4000)
		if i%10 == 0 {
			size = 300_000 + rng.IntN(400_000)
		}
		body := fmt.Sprintf("Subject: kill %d\r\nMessage-ID: <k%d@t>\r\n\r\n%s\r\nFrom the end\r\n", i, i, strings.Repeat(fmt.Sprintf("line %d of message %d\r\n", i, i), size/24))
		imaptest.Append(t, c, []string{"INBOX", "A", "B/C", "D"}[i%4], nil, time.Date(2021, 1, 1, 0, 0, i, 0, time.UTC), []byte(body))
	}
	snap := imaptest.Snapshot(t, c, false)
	url := "imap://" + user + "@" + dv.IMAPAddr
	kills := 12
	if testing.Short() {
		kills = 4
	}
	for _, format := range []string{"mbox.zst", "maildir", "mbox.gz"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			for i := 0; i < kills; i++ {
				cmd := exec.Command(bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--quiet", "--connections", "2")
				cmd.Env = append(os.Environ(), pwEnv()...)
				ready := readyPipe(t, cmd)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if i%3 == 2 {
					// Past process start-up, where SIGINT still kills: wait
					// until mailkeep says its handler is installed.
					ready()
				}
				time.Sleep(time.Duration(20+rng.IntN(250)) * time.Millisecond) // a random instant of the run
				if i%3 == 2 {                                                  // Ctrl-C: a clean stop with exit 130 (or 0 if it had finished)
					cmd.Process.Signal(os.Interrupt)
					cmd.Wait()
					if code := cmd.ProcessState.ExitCode(); code != 130 && code != 0 {
						t.Errorf("interrupted backup exited %d, want 130", code)
					}
					continue
				}
				cmd.Process.Kill()
				cmd.Wait()
			}
			r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--json")
			if r.code != 0 {
				t.Fatalf("final run: exit %d: %s", r.code, r.stderr)
			}
			archivetest.Compare(t, snap, dir)
			archivetest.IndependentRead(t, dir)
		})
	}
}

// readyPipe gives cmd a pipe on which mailkeep reports that its signal
// handler is installed (see ready.go); the returned function, called after
// cmd.Start, waits for that line. cmd.Env must be set.
func readyPipe(t *testing.T, cmd *exec.Cmd) func() {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", readyFDEnv, 2+len(cmd.ExtraFiles)))
	return func() {
		t.Helper()
		w.Close() // the child has its copy: EOF when it exits
		buf := make([]byte, 16)
		n, _ := io.ReadFull(r, buf[:6])
		if string(buf[:n]) != "ready\n" {
			t.Fatalf("mailkeep did not report its signal handler installed (read %q)", buf[:n])
		}
	}
}

// TestInterruptRightAfterStart: SIGINT as soon as mailkeep can take it
// (its ready line) stops the run cleanly, exit 130 (or 0 when it was done).
func TestInterruptRightAfterStart(t *testing.T) {
	srv := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, srv.Addr, user, pass)
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: hi\r\n\r\nhello\r\n"))
	c.Logout().Wait()
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		cmd := exec.Command(bin, "backup", "--imap", "imap://"+user+"@"+srv.Addr, "--tls", "none", "--archive", dir, "--quiet")
		cmd.Env = append(os.Environ(), pwEnv()...)
		ready := readyPipe(t, cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted && code != exitOK {
			t.Fatalf("SIGINT right after start-up: exit %d (%v), want 130", code, cmd.ProcessState)
		}
	}
}
