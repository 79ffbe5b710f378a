package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/textindex"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestBackupIndexLive: the index backup --index builds while it fetches
// (messages parsed as they are stored) is the index "mailkeep index"
// builds afterwards, and finds the same messages.
func TestBackupIndexLive(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	imaptest.Create(t, c, "Archiv/Größe")
	corpus := searchCorpus(t)
	i := 0
	for _, n := range sortedKeys(corpus) {
		folder := "INBOX"
		if i%2 == 1 {
			folder = "Archiv/Größe"
		}
		imaptest.Append(t, c, folder, []string{`\Seen`}, time.Date(2014+i, 3, 1, 12, 0, 0, 0, time.UTC), corpus[n])
		i++
	}
	for j, m := range imaptest.Corpus() {
		imaptest.Append(t, c, "INBOX", nil, time.Date(2016, 1, 1, 0, 0, j, 0, time.UTC), m.Body)
	}
	dir := filepath.Join(t.TempDir(), "arch")
	url := "imap://" + user + "@" + dv.IMAPAddr
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--index"); r.code != 0 {
		t.Fatalf("backup --index: %s", r.stderr)
	}
	after := filepath.Join(t.TempDir(), "after")
	copyArchive(t, dir, after)
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(after, textindex.FileName+s))
	}
	if r := mailkeep(t, nil, "index", "--archive", after, "--quiet"); r.code != 0 {
		t.Fatalf("index: %s", r.stderr)
	}
	if a, b := docsOf(t, dir), docsOf(t, after); a != b || a == "" {
		t.Errorf("index built during the backup:\n%s\ndiffers from one built after it:\n%s", a, b)
	}
	for _, q := range []string{"kettle", "größe", "from:иван", "has:attachment", "filename:quittung", "zebra OR wombat", "is:unread", "after:2016/01/01"} {
		a := mailkeep(t, nil, "search", "--archive", dir, "--json", q)
		b := mailkeep(t, nil, "search", "--archive", after, "--json", q)
		if a.code != 0 || strings.ReplaceAll(a.stdout, dir, after) != b.stdout || a.stdout == "" {
			t.Errorf("search %s: %d %q, index built after the backup: %q", q, a.code, a.stdout, b.stdout)
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// TestBackupIndexKilled: a backup --index killed (SIGKILL) while it
// fetches and indexes leaves an index that searches, and the next backup
// completes it into the index of an uninterrupted run.
func TestBackupIndexKilled(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	folders := []string{"INBOX", "A", "B"}
	for _, f := range folders[1:] {
		imaptest.Create(t, c, f)
	}
	corpus := imaptest.Corpus()
	for i := 0; i < 900; i++ {
		m := corpus[i%len(corpus)].Body
		body := append([]byte(fmt.Sprintf("X-Seq: %d\r\n", i)), m...)
		imaptest.Append(t, c, folders[i%3], nil, time.Date(2015, 1, 1, 0, 0, i, 0, time.UTC), body)
	}
	url := "imap://" + user + "@" + dv.IMAPAddr
	whole := filepath.Join(t.TempDir(), "whole")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", whole, "--quiet", "--index"); r.code != 0 {
		t.Fatalf("backup --index: %s", r.stderr)
	}

	dir := filepath.Join(t.TempDir(), "arch")
	cmd := exec.Command(bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--index", "--verbose", "--connections", "1")
	cmd.Env = append(os.Environ(), pwEnv()...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=indexed") {
			break // the first folder's commit is indexed
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	r := mailkeep(t, nil, "search", "--archive", dir, "--json", "--limit", "0", "after:2014/01/01")
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n == 0 || n >= 900 {
		t.Errorf("search after a killed backup --index: %d, %d hits, %s", r.code, n, r.stderr)
	} else {
		t.Logf("killed backup --index: %d messages findable", n)
	}
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatalf("backup after kill: %s", r.stderr)
	}
	if a, b := docsOf(t, dir), docsOf(t, whole); a != b || strings.Count(a, "\n") != 900 {
		t.Errorf("index after a killed backup --index and a second backup differs from an uninterrupted one (%d lines, want 900)", strings.Count(a, "\n"))
	}
}

// TestBackupIndexPOP3: a POP3 backup --index indexes what it stores too
// (UIDL-keyed messages, parsed as they are stored), and the index is the
// one "mailkeep index" builds afterwards.
func TestBackupIndexPOP3(t *testing.T) {
	var msgs [][]byte
	for i := 0; i < 5; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Subject: pop %d\r\nDate: Mon, 2 Mar 2026 10:%02d:00 +0000\r\n\r\nwallaby%d body\r\n", i, i, i)))
	}
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	dir := filepath.Join(t.TempDir(), "pop")
	if r := mailkeep(t, pwEnv(), "backup", "--pop3", "pop3://"+user+"@"+srv.Addr, "--tls", "none", "--archive", dir, "--quiet", "--index"); r.code != 0 {
		t.Fatalf("backup --index: %d %s", r.code, r.stderr)
	}
	if r := mailkeep(t, nil, "search", "--archive", dir, "wallaby3"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "pop 3") {
		t.Errorf("search wallaby3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	after := filepath.Join(t.TempDir(), "after")
	copyArchive(t, dir, after)
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(after, textindex.FileName+s))
	}
	if r := mailkeep(t, nil, "index", "--archive", after, "--quiet"); r.code != 0 {
		t.Fatalf("index: %s", r.stderr)
	}
	if a, b := docsOf(t, dir), docsOf(t, after); a != b || strings.Count(a, "\n") != 5 {
		t.Errorf("index built during the POP3 backup:\n%s\ndiffers from one built after it:\n%s", a, b)
	}
}
