package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// runIn runs mailkeep in-process.
func runIn(args ...string) result {
	var so, se bytes.Buffer
	code := run(args, &so, &se)
	return result{code, so.String(), se.String()}
}

// writeArchive stores n messages in each folder with the archive writer
// (small frames, so a folder spans many) and returns the directory.
func writeArchive(t *testing.T, format archive.Format, folders []string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "arch")
	a, err := archive.Open(dir, archive.Options{Format: format, FrameSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range folders {
		f, err := a.Folder(t.Context(), name, '/', "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(t.Context(), f, run)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			body := fmt.Sprintf("Subject: %s %d\r\nMessage-ID: <%d@%s>\r\n\r\n%s", name, i, i, name, strings.Repeat(fmt.Sprintf("line %d of %s\r\nFrom here\r\n", i, name), 40+i*13))
			in := &archive.Incoming{UIDValidity: 7, UID: uint32(i), InternalDate: time.Date(2025, 3, 1, 0, 0, i, 0, time.UTC)}
			if _, err := w.Add(in, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// catalogued returns a folder's messages by UID.
func catalogued(t *testing.T, dir, folder string) map[uint32]*catalog.Message {
	out := map[uint32]*catalog.Message{}
	for _, m := range archivetest.Messages(t, dir, folder) {
		out[m.UID] = m
	}
	return out
}

func TestVerifyCLI(t *testing.T) {
	dir := writeArchive(t, archive.MboxZstd, []string{"INBOX", "Work/Projects"}, 30)

	// A clean archive: exit 0, one summary line; --quiet: nothing at all.
	r := runIn("verify", "--archive", dir)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "ok, 2 folders, 60 messages") {
		t.Fatalf("clean: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runIn("verify", "--quiet", "--archive", dir)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("clean --quiet: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	// Flip a byte in the middle of a zstd frame of Work/Projects and add a
	// stray file.
	msgs := catalogued(t, dir, "Work/Projects")
	victim := msgs[15]
	path := filepath.Join(dir, victim.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(len(b))
	for _, m := range msgs {
		if m.FrameOffset > victim.FrameOffset && m.FrameOffset < next {
			next = m.FrameOffset
		}
	}
	b[(victim.FrameOffset+next)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mbox", "Old.mbox.zst"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	r = runIn("verify", "--quiet", "--archive", dir)
	if r.code != 3 {
		t.Fatalf("damaged: exit %d, want 3: %s", r.code, r.stderr)
	}
	t.Logf("stderr:\n%s", r.stderr)
	if !strings.Contains(r.stderr, fmt.Sprintf(`problem: folder "Work/Projects" uid %d `, victim.UID)) &&
		!strings.Contains(r.stderr, fmt.Sprintf(`problem: folder "Work/Projects" uid %d `, victim.UID-1)) {
		t.Errorf("uid %d (or the one running into its frame) not named:\n%s", victim.UID, r.stderr)
	}
	if !strings.Contains(r.stderr, "mbox/Old.mbox.zst stray") {
		t.Errorf("stray file not named:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, `folder "INBOX" uid`) {
		t.Errorf("the intact folder was reported:\n%s", r.stderr)
	}

	// --json: the same, machine-readable; --folder INBOX alone is clean.
	r = runIn("verify", "--json", "--archive", dir)
	var sum verifySummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if r.code != 3 || sum.Outcome != "problems" || sum.Problems == 0 || len(sum.Problem) != sum.Problems || sum.Messages != 60 || sum.Format != "mbox.zst" {
		t.Errorf("--json summary: exit %d %+v", r.code, sum)
	}
	r = runIn("verify", "--archive", dir, "--folder", "INBOX")
	if r.code != 0 || !strings.Contains(r.stderr, "1 folders, 30 messages") {
		t.Errorf("--folder INBOX: exit %d %s", r.code, r.stderr)
	}
}

func TestVerifyCLIMaildir(t *testing.T) {
	dir := writeArchive(t, archive.Maildir, []string{"INBOX", "Sent"}, 10)
	gone := catalogued(t, dir, "Sent")[4]
	if err := os.Remove(filepath.Join(dir, gone.File)); err != nil {
		t.Fatal(err)
	}
	r := runIn("verify", "--archive", dir)
	want := fmt.Sprintf(`mailkeep verify: problem: folder "Sent" uid 4 (uidvalidity 7) in %s missing`, gone.File)
	if r.code != 3 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "problems, 2 folders, 20 messages") {
		t.Errorf("exit %d, want 3 and %q in:\n%s", r.code, want, r.stderr)
	}
}

func TestVerifyCLIErrors(t *testing.T) {
	dir := writeArchive(t, archive.Mbox, []string{"INBOX"}, 2)
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no config", []string{"verify", "--config", filepath.Join(t.TempDir(), "missing.toml")}, 2, "missing.toml"},
		{"both", []string{"verify", "--archive", dir, "alice"}, 2, "not both"},
		{"server without url", []string{"verify", "--archive", dir, "--server"}, 2, "--imap URL"},
		{"url without server", []string{"verify", "--archive", dir, "--imap", "imap://a@127.0.0.1:1"}, 2, "--server"},
		{"no archive", []string{"verify", "--archive", filepath.Join(t.TempDir(), "none")}, 1, "no mailkeep archive"},
		{"unknown account", []string{"verify", "--config", filepath.Join(t.TempDir(), "none.toml"), "alice"}, 2, "none.toml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tt.code, r.stderr, tt.msg)
			}
		})
	}
}

// TestVerifyServer backs up a Dovecot account, then expunges one message
// on the server and appends another: verify --server names both, by
// folder and UID, with --archive DIR and with the account's NAME.
func TestVerifyServer(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	var uids []uint32
	for i := 0; i < 6; i++ {
		uids = append(uids, imaptest.Append(t, c, "INBOX", nil, time.Date(2024, 5, 1, 0, 0, i, 0, time.UTC), []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))))
		imaptest.Append(t, c, "Lists/Go", nil, time.Date(2024, 5, 1, 0, 0, i, 0, time.UTC), []byte(fmt.Sprintf("Subject: go %d\r\n\r\nbody\r\n", i)))
	}
	imaptest.Append(t, c, "Junk", nil, time.Now(), []byte("Subject: spam\r\n\r\nspam\r\n")) // never backed up
	tmp := t.TempDir()
	pwFile := filepath.Join(tmp, "pw")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "arch")
	url := "imap://" + user + "@" + dv.IMAPAddr
	conn := []string{"--imap", url, "--tls", "none", "--password-file", pwFile, "--exclude", "Junk"}
	if r := runIn(append([]string{"backup", "--quiet", "--archive", dir}, conn...)...); r.code != 0 {
		t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
	}
	r := runIn(append([]string{"verify", "--archive", dir, "--server"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "compared 2 folders") {
		t.Fatalf("verify --server right after the backup: exit %d: %s", r.code, r.stderr)
	}
	// Without the backup's --exclude, the folder it skipped is reported.
	r = runIn(append([]string{"verify", "--archive", dir, "--server"}, conn[:len(conn)-2]...)...)
	if r.code != 3 || !strings.Contains(r.stderr, `problem: folder "Junk" server-only-folder: on the server (1 messages`) {
		t.Errorf("without --exclude: exit %d: %s", r.code, r.stderr)
	}

	// One message expunged on the server, one new.
	expunged := uids[2]
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(imap.UID(expunged)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	added := imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: new\r\n\r\nnew\r\n"))

	config := filepath.Join(tmp, "config.toml")
	cfgText := fmt.Sprintf("[[account]]\nname = \"alice\"\nimap = %q\ntls = \"none\"\npassword_file = %q\narchive = %q\nexclude = [\"Junk\"]\n", url, pwFile, dir)
	if err := os.WriteFile(config, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append([]string{"verify", "--archive", dir, "--server"}, conn...),
		{"verify", "--config", config, "alice", "--server"},
	} {
		r := runIn(args...)
		t.Logf("%v:\n%s", args, r.stderr)
		if r.code != 3 {
			t.Errorf("%v: exit %d, want 3", args, r.code)
		}
		for _, want := range []string{
			fmt.Sprintf(`problem: folder "INBOX" uids %d server-new: 1 messages on the server are not in the archive`, added),
			fmt.Sprintf(`problem: folder "INBOX" uids %d server-gone: 1 archived messages are no longer on the server`, expunged),
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: %q missing", args, want)
			}
		}
		if strings.Contains(r.stderr, `"Lists/Go"`) {
			t.Errorf("the unchanged folder was reported")
		}
	}

	// --json carries the server findings too.
	r = runIn("verify", "--config", config, "alice", "--server", "--json")
	var sum verifySummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range sum.Problem {
		kinds = append(kinds, fmt.Sprintf("%s %s %s", p.Folder, p.Kind, p.UIDs))
	}
	sort.Strings(kinds)
	want := []string{fmt.Sprintf("INBOX server-gone %d", expunged), fmt.Sprintf("INBOX server-new %d", added)}
	if fmt.Sprint(kinds) != fmt.Sprint(want) || sum.Name != "alice" || sum.Compared != 2 {
		t.Errorf("--json: %v (want %v), %+v", kinds, want, sum)
	}
}

// TestVerifyAccounts: without a NAME verify checks every configured
// account, one after the other; one account's problem does not stop the
// others, the exit status is 3 and the account is named.
func TestVerifyAccounts(t *testing.T) {
	good := writeArchive(t, archive.MboxZstd, []string{"INBOX"}, 5)
	bad := writeArchive(t, archive.Maildir, []string{"INBOX", "Sent"}, 5)
	if err := os.WriteFile(filepath.Join(bad, "maildir", "cur", "stray.eml"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[[account]]
name = "good"
imap = "imaps://g@127.0.0.1:1"
password_env = "UNSET_PW"
archive = %q

[[account]]
name = "bad"
imap = "imaps://b@127.0.0.1:1"
password_env = "UNSET_PW"
archive = %q
`, good, bad)), 0o600)
	r := runIn("verify", "--config", cfg, "--json", "--quiet")
	if r.code != exitPartial {
		t.Fatalf("exit %d, want 3:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "mailkeep verify bad: problem: ") || !strings.Contains(r.stderr, "stray.eml") || !strings.Contains(r.stderr, "1 of 2 accounts not ok: [bad (problems)]") {
		t.Errorf("stderr should name the stray file and the account:\n%s", r.stderr)
	}
	var all verifyAllSummary
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if all.Outcome != "problems" || len(all.Accounts) != 2 {
		t.Fatalf("summary: %+v", all)
	}
	byName := map[string]verifySummary{}
	for _, s := range all.Accounts {
		byName[s.Name] = s
	}
	if g := byName["good"]; g.Outcome != "ok" || g.Messages != 5 || g.Problems != 0 {
		t.Errorf("good: %+v", g)
	}
	if b := byName["bad"]; b.Outcome != "problems" || b.Messages != 10 || b.Problems != 1 || b.Problem[0].Kind != "stray" {
		t.Errorf("bad: %+v", b)
	}
	// Naming the good account alone: exit 0, nothing printed under --quiet.
	r = runIn("verify", "--config", cfg, "--quiet", "good")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("verify good: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}
