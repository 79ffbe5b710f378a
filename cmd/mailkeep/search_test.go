package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
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
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// searchCorpus is textindex's test mail: several charsets, QP and
// base64, HTML only, attachments with non-ASCII names, a malformed MIME
// message, a forwarded message.
func searchCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join("..", "..", "archive", "textindex", "testdata", "mail")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// backupCorpus appends the corpus to a Dovecot account (odd files in
// INBOX, even ones in "Archiv/Größe") and backs it up; it returns the
// archive and the (folder, uid) of each file.
func backupCorpus(t *testing.T) (string, map[string][2]string) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	imaptest.Create(t, c, "Archiv/Größe")
	where := map[string][2]string{}
	corpus := searchCorpus(t)
	names := make([]string, 0, len(corpus))
	for n := range corpus {
		names = append(names, n)
	}
	sortStrings(names)
	for i, n := range names {
		folder := "INBOX"
		if i%2 == 1 {
			folder = "Archiv/Größe"
		}
		flags := []string{`\Seen`}
		if strings.HasPrefix(n, "06-") {
			flags = append(flags, `\Flagged`)
		}
		if strings.HasPrefix(n, "02-") {
			flags = nil
		}
		uid := imaptest.Append(t, c, folder, flags, time.Date(2014+i, 3, 1, 12, 0, 0, 0, time.UTC), corpus[n])
		where[n] = [2]string{folder, fmt.Sprint(uid)}
	}
	dir := filepath.Join(t.TempDir(), "arch")
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet")
	if r.code != 0 {
		t.Fatalf("backup: %d %s", r.code, r.stderr)
	}
	return dir, where
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestSearchShow(t *testing.T) {
	dir, where := backupCorpus(t)

	r := mailkeep(t, nil, "search", "--archive", dir, "kettle")
	if r.code != 1 || !strings.Contains(r.stderr, "no search index") {
		t.Errorf("search before index: %d %q", r.code, r.stderr)
	}
	r = mailkeep(t, nil, "index", "--archive", dir, "--json")
	var sum indexSummary
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Indexed != 7 || sum.Problems != 1 {
		t.Fatalf("index: %d %q %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("index %d bytes, mail %d bytes", sum.IndexBytes, sum.ArchiveBytes)

	id := func(file string) string { return where[file][0] + " " + where[file][1] }
	for _, tt := range []struct {
		q    []string
		want []string // files, newest first
	}{
		{[]string{"lieferung"}, []string{"01-latin1-qp.eml"}},
		{[]string{"grosse"}, []string{"01-latin1-qp.eml"}}, // "Grösse" in the body; "Größe" alone would not be found
		{[]string{"kettle"}, []string{"04-attachments.eml", "03-html-only.eml"}},
		{[]string{"kettle", "-has:attachment"}, []string{"03-html-only.eml"}},
		{[]string{"filename:ärger"}, []string{"04-attachments.eml"}},
		{[]string{"is:flagged"}, []string{"06-alternative-cp1252.eml"}},
		{[]string{"is:unread"}, []string{"02-koi8r-base64.eml"}},
		{[]string{"folder:Archiv/Größe", "счёт"}, []string{"02-koi8r-base64.eml"}},
		{[]string{"zebra", "OR", "wombat"}, []string{"07-iso2022jp-forward.eml", "05-malformed.eml"}},
		{[]string{"before:2016/01/01", "-from:иван"}, []string{"01-latin1-qp.eml"}},
		{[]string{`"creme brulee"`}, []string{"01-latin1-qp.eml"}},
		{[]string{"nothing-like-this"}, nil},
	} {
		r := mailkeep(t, nil, append([]string{"search", "--archive", dir}, tt.q...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
		if r.code != 0 || len(got) != len(tt.want) {
			t.Errorf("search %q: %d\n%s%s", tt.q, r.code, r.stdout, r.stderr)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], shellWord(where[w][0])+" "+where[w][1]+" ") {
				t.Errorf("search %q hit %d: %q, want %s", tt.q, i, got[i], id(w))
			}
		}
	}
	// --json and --limit, and a flag after the query.
	r = mailkeep(t, nil, "search", "--archive", dir, "kettle", "--json", "--limit", "1")
	var h searchHit
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &h) != nil ||
		h.Folder != where["04-attachments.eml"][0] || h.ID != where["04-attachments.eml"][1] || h.Subject != "Receipts" || h.Attachments != 3 {
		t.Errorf("search --json: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = mailkeep(t, nil, "search", "--archive", dir, "from:")
	if r.code != 2 {
		t.Errorf("bad query: exit %d %q", r.code, r.stderr)
	}

	// show: golden files.
	for file, w := range where {
		r := mailkeep(t, nil, "show", "--archive", dir, w[0], w[1])
		if r.code != 0 {
			t.Errorf("show %s: %d %s", file, r.code, r.stderr)
			continue
		}
		golden := filepath.Join("testdata", "show", strings.TrimSuffix(file, ".eml")+".golden")
		if *updateGolden {
			os.WriteFile(golden, []byte(r.stdout), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil || string(want) != r.stdout {
			t.Errorf("show %s differs from %s (%v):\n%s", file, golden, err, r.stdout)
		}
		if strings.HasPrefix(file, "05-") != (r.stderr != "") {
			t.Errorf("show %s: stderr %q", file, r.stderr)
		}
		// --raw is cat.
		raw := mailkeep(t, nil, "show", "--raw", "--archive", dir, w[0], w[1])
		cat := mailkeep(t, nil, "cat", "--archive", dir, w[0], w[1])
		if raw.code != 0 || raw.stdout != cat.stdout || !bytes.Equal([]byte(raw.stdout), searchCorpus(t)[file]) {
			t.Errorf("show --raw %s differs from cat", file)
		}
	}

	// --attachments: safe names, never outside DIR, never through a symlink.
	save := filepath.Join(t.TempDir(), "save")
	os.Mkdir(save, 0o700)
	outside := filepath.Join(t.TempDir(), "outside.sh")
	if err := os.Symlink(outside, filepath.Join(save, "evil.sh")); err != nil {
		t.Fatal(err)
	}
	w := where["04-attachments.eml"]
	r = mailkeep(t, nil, "show", "--archive", dir, "--attachments", save, w[0], w[1])
	if r.code != 0 {
		t.Fatalf("show --attachments: %d %s", r.code, r.stderr)
	}
	if _, err := os.Lstat(outside); !os.IsNotExist(err) {
		t.Errorf("written through the planted symlink: %v", err)
	}
	for name, size := range map[string]int64{"Quittung_Ärger.pdf": 3016, "фото.jpg": 2048, "evil (2).sh": 21} {
		fi, err := os.Lstat(filepath.Join(save, name))
		if err != nil || fi.Size() != size || fi.Mode() != 0o600 {
			t.Errorf("saved %s: %v %v", name, fi, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(save))
	if len(ents) != 1 {
		t.Errorf("files outside DIR: %v", ents)
	}
	if !strings.Contains(r.stdout, "saved as "+filepath.Join(save, "evil (2).sh")) {
		t.Errorf("show --attachments output:\n%s", r.stdout)
	}
	// A DIR that is a file is refused, and nothing is written.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	r = mailkeep(t, nil, "show", "--archive", dir, "--attachments", file, w[0], w[1])
	if r.code != 1 || !strings.Contains(r.stderr, "--attachments") {
		t.Errorf("show --attachments FILE: %d %q", r.code, r.stderr)
	}
	r = mailkeep(t, nil, "show", "--archive", dir, w[0], "99999")
	if r.code != 1 || !strings.Contains(r.stderr, "99999") {
		t.Errorf("show of a missing uid: %d %q", r.code, r.stderr)
	}
}

func docsOf(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, textindex.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT folder, uid, sha256, sender, subject, attachments, (SELECT count(*) FROM fts WHERE fts MATCH 'lorem') FROM docs ORDER BY folder, uid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var f, sha, from, subj string
		var uid, att, n int
		rows.Scan(&f, &uid, &sha, &from, &subj, &att, &n)
		fmt.Fprintf(&b, "%s %d %s %s %s %d %d\n", f, uid, sha, from, subj, att, n)
	}
	return b.String()
}

// TestIndexKilled: an index run killed with SIGKILL after its first
// commit, then run again, gives the index an uninterrupted run gives.
func TestIndexKilled(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	corpus := imaptest.Corpus()
	for i := 0; i < 1200; i++ {
		m := corpus[i%len(corpus)].Body
		body := append([]byte(fmt.Sprintf("X-Seq: %d\r\n", i)), m...)
		imaptest.Append(t, c, "INBOX", nil, time.Date(2015, 1, 1, 0, 0, i, 0, time.UTC), body)
	}
	dir := filepath.Join(t.TempDir(), "arch")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatalf("backup: %s", r.stderr)
	}
	whole := filepath.Join(t.TempDir(), "whole")
	copyArchive(t, dir, whole)
	if r := mailkeep(t, nil, "index", "--archive", whole); r.code != 0 {
		t.Fatalf("index: %s", r.stderr)
	}

	cmd := exec.Command(bin, "index", "--archive", dir, "--verbose")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=indexed") {
			break // the first batch is committed
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	partial := strings.Count(docsOf(t, dir), "\n")
	if partial == 0 || partial >= 1200 {
		t.Fatalf("killed run left %d indexed messages", partial)
	}
	r := mailkeep(t, nil, "index", "--archive", dir, "--json")
	var sum indexSummary
	json.Unmarshal([]byte(r.stdout), &sum)
	if r.code != 0 || sum.Indexed != 1200-partial || sum.Total != 1200 {
		t.Fatalf("index after kill: %d %+v %s", r.code, sum, r.stderr)
	}
	if a, b := docsOf(t, dir), docsOf(t, whole); a != b {
		t.Errorf("resumed index differs from an uninterrupted one")
	}
	t.Logf("killed after %d of 1200; index %d bytes for %d bytes of mail (%.0f%%)", partial, sum.IndexBytes, sum.ArchiveBytes, pct(sum.IndexBytes, sum.ArchiveBytes))
}

func copyArchive(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestBackupIndexes: backup --index indexes what it stores, and later
// backups keep an existing index up to date without the flag.
func TestBackupIndexes(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	corpus := searchCorpus(t)
	imaptest.Append(t, c, "INBOX", nil, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), corpus["04-attachments.eml"])
	dir := filepath.Join(t.TempDir(), "arch")
	url := "imap://" + user + "@" + dv.IMAPAddr
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--index"); r.code != 0 {
		t.Fatalf("backup --index: %s", r.stderr)
	}
	if r := mailkeep(t, nil, "search", "--archive", dir, "kettle"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Errorf("search after backup --index: %d %q %q", r.code, r.stdout, r.stderr)
	}
	imaptest.Append(t, c, "INBOX", nil, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), corpus["05-malformed.eml"])
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"); r.code != 0 || r.stderr != "" {
		t.Fatalf("backup: %d %s", r.code, r.stderr)
	}
	if r := mailkeep(t, nil, "search", "--archive", dir, "zebra"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Errorf("search after a second backup: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The index is the archive's own file: verify does not call it a stray.
	if r := mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
		t.Errorf("verify of an indexed archive: %d %s", r.code, r.stderr)
	}
	// Configured accounts: NAMEs select archives, the rest is the query;
	// no NAME searches every account.
	cfg := filepath.Join(t.TempDir(), "config.toml")
	toml := fmt.Sprintf("[[account]]\nname = \"me\"\nimap = \"%s\"\ntls = \"none\"\narchive = %q\npassword_env = \"X\"\n"+
		"[[account]]\nname = \"other\"\nimap = \"%s\"\ntls = \"none\"\narchive = %q\npassword_env = \"X\"\n", url, dir, url, dir)
	os.WriteFile(cfg, []byte(toml), 0o600)
	if r := mailkeep(t, nil, "search", "--config", cfg, "me", "zebra"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || strings.Contains(r.stdout, "me ") {
		t.Errorf("search me zebra: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := mailkeep(t, nil, "search", "--config", cfg, "zebra", "--json"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 ||
		!strings.Contains(r.stdout, `"account":"me"`) || !strings.Contains(r.stdout, `"account":"other"`) {
		t.Errorf("search zebra over all accounts: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := mailkeep(t, nil, "index", "--config", cfg, "me", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"indexed":0`) {
		t.Errorf("index me: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// After reindex (a new catalog that keeps the journal's row ids), the
	// index still finds everything and index has nothing to do.
	if r := mailkeep(t, nil, "reindex", "--archive", dir, "--quiet"); r.code != 0 {
		t.Fatalf("reindex: %d %s", r.code, r.stderr)
	}
	if r := mailkeep(t, nil, "search", "--archive", dir, "zebra"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Errorf("search after reindex: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := mailkeep(t, nil, "index", "--archive", dir, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"indexed":0,"relinked":0`) {
		t.Errorf("index after reindex: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// Without an index and without --index, a backup makes none.
	dir2 := filepath.Join(t.TempDir(), "arch2")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir2, "--quiet"); r.code != 0 {
		t.Fatalf("backup: %s", r.stderr)
	}
	if _, err := os.Lstat(filepath.Join(dir2, textindex.FileName)); !os.IsNotExist(err) {
		t.Errorf("backup without --index made an index: %v", err)
	}
}
