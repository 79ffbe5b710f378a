package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// exportArchive writes the corpus into a new Maildir archive (INBOX and
// Work/Sub) with the archive's own writer and returns its directory.
func exportArchive(t *testing.T) (string, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "arch")
	a, err := archive.Open(dir, archive.Options{Format: archive.Maildir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "imap://alice@mail.example.org:143", time.Now().Add(-time.Minute))
	n := 0
	for i, name := range []string{"INBOX", "Work/Sub"} {
		f, err := a.Folder(t.Context(), name, '/', "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(t.Context(), f, run)
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range imaptest.Corpus() {
			if (i+j)%2 == 0 {
				continue
			}
			if _, err := w.Add(&archive.Incoming{UIDValidity: 1, UID: uint32(j + 1), InternalDate: m.Date, Flags: m.Flags}, bytes.NewReader(m.Body)); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a.Cat.SetMeta(t.Context(), "source", "imap://alice@mail.example.org:143")
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	return dir, n
}

func runCLI(args ...string) result {
	var so, se bytes.Buffer
	code := run(args, &so, &se)
	return result{code, so.String(), se.String()}
}

// pyCount counts the messages Python's mailbox module finds in an mbox file.
func pyCount(t *testing.T, path string) int {
	t.Helper()
	py := archivetest.Need(t, "python3")
	out, err := exec.Command(py, "-c", "import mailbox, sys; print(len(mailbox.mbox(sys.argv[1], create=False)))", path).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var n int
	json.Unmarshal(bytes.TrimSpace(out), &n)
	return n
}

// TestExportCLI runs "mailkeep export" end to end: by --archive and by
// account name, --json, --quiet, a refused target, a damaged message.
func TestExportCLI(t *testing.T) {
	dir, n := exportArchive(t)
	base := t.TempDir()

	to := filepath.Join(base, "mbox")
	r := runCLI("export", "--archive", dir, "--to", to, "--format", "mbox", "--json")
	if r.code != 0 {
		t.Fatalf("export: exit %d: %s", r.code, r.stderr)
	}
	var sum exportSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if sum.Outcome != "ok" || sum.Folders != 2 || sum.Messages != n || sum.Skipped != 0 || sum.Bytes == 0 ||
		sum.Account != "imap://alice@mail.example.org:143" || sum.Format != "mbox" || sum.To != to || len(sum.Failures) != 0 {
		t.Errorf("summary %+v, want ok, 2 folders, %d messages", sum, n)
	}
	if !strings.Contains(r.stderr, "mailkeep export to") {
		t.Errorf("no summary line on stderr: %q", r.stderr)
	}
	if got := pyCount(t, filepath.Join(to, "INBOX.mbox")) + pyCount(t, filepath.Join(to, "Work", "Sub.mbox")); got != n {
		t.Errorf("python reads %d messages, want %d", got, n)
	}

	// By account name from the config file, flags after the name; --quiet.
	cfg := filepath.Join(base, "config.toml")
	os.WriteFile(cfg, []byte("[[account]]\nname = \"alice\"\nimap = \"imap://alice@mail.example.org\"\npassword_env = \"NO_SUCH_PW\"\narchive = \""+dir+"\"\n"), 0o600)
	to = filepath.Join(base, "eml")
	r = runCLI("export", "--config", cfg, "alice", "--to", to, "--format", "eml", "--folder", "Work/*", "--quiet")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("quiet export by name: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(to, "Work", "Sub")); len(ents) == 0 {
		t.Errorf("--folder Work/* exported nothing into Work/Sub")
	}
	if _, err := os.Stat(filepath.Join(to, "INBOX")); err == nil {
		t.Errorf("--folder Work/* exported INBOX")
	}

	// Usage errors: exit 2, nothing written.
	for _, args := range [][]string{
		{"export", "--archive", dir, "--to", to, "--format", "mbox"}, // not empty
		{"export", "--archive", dir, "--to", filepath.Join(base, "x"), "--format", "pst"},
		{"export", "--archive", dir, "--format", "mbox"},
		{"export", "--archive", dir, "--to", filepath.Join(base, "x"), "--format", "mbox", "--as-of", "yesterday"},
		{"export", "--archive", dir, "--config", cfg, "alice", "--to", filepath.Join(base, "x"), "--format", "mbox"},
		{"export", "--config", cfg, "bob", "--to", filepath.Join(base, "x"), "--format", "mbox"},
	} {
		if r := runCLI(args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "x")); err == nil {
		t.Errorf("a refused export created its target")
	}

	// A damaged message: exit 3, named on stderr, the rest exported.
	files, _ := filepath.Glob(filepath.Join(dir, "maildir", ".Work.Sub", "cur", "*"))
	b, _ := os.ReadFile(files[1])
	b[len(b)-2] ^= 0x20
	os.WriteFile(files[1], b, 0o600)
	to = filepath.Join(base, "maildir")
	r = runCLI("export", "--archive", dir, "--to", to, "--format", "maildir", "--json")
	if r.code != exitPartial || !strings.Contains(r.stderr, `account imap://alice@mail.example.org:143: folder "Work/Sub" uid `) || !strings.Contains(r.stderr, "SHA-256") {
		t.Errorf("damaged: exit %d, stderr %q", r.code, r.stderr)
	}
	sum = exportSummary{}
	json.Unmarshal([]byte(r.stdout), &sum)
	if sum.Outcome != "partial" || sum.Skipped != 1 || sum.Messages != n-1 || len(sum.Failures) != 1 {
		t.Errorf("damaged: summary %+v", sum)
	}
	got, _ := filepath.Glob(filepath.Join(to, ".Work.Sub", "cur", "*"))
	if len(got) != len(files)-1 {
		t.Errorf("damaged: %d files exported in Work/Sub, want %d", len(got), len(files)-1)
	}
}

// TestExportRelativeToNamespace: an archive of a server whose personal
// namespace is "INBOX." (Cyrus, Courier) exports "INBOX.Sent" as Sent,
// the names restore gives the same folders.
func TestExportRelativeToNamespace(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.CyrusLike())
	dv.AddUser(t, user, pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i, folder := range []string{"INBOX", "INBOX.Sent", "INBOX.Work.Projects"} {
		imaptest.Append(t, c, folder, nil, time.Date(2014, 1, 1, 0, 0, i, 0, time.UTC), []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	}
	dir := filepath.Join(t.TempDir(), "arch")
	if r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--archive", dir); r.code != 0 {
		t.Fatalf("backup: %d %s", r.code, r.stderr)
	}
	to := filepath.Join(t.TempDir(), "out")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "mbox", "--quiet"); r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	var got []string
	filepath.WalkDir(to, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(to, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	if want := []string{"INBOX.mbox", "Sent.mbox", "Work/Projects.mbox"}; !slices.Equal(got, want) {
		t.Fatalf("exported files %q, want %q", got, want)
	}
}
