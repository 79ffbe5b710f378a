package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// src is a message put into a test archive.
type src struct {
	folder string
	uid    uint32
	body   []byte
	flags  []string
	date   time.Time
}

// The test folders: a hierarchy, non-ASCII, quotes, and names that would
// trouble each output layout (a '.' for Maildir++, ".eml" and ".mbox"
// suffixes for the eml and mbox layouts).
var testFolders = []string{"INBOX", "INBOX/Child", "Work", `Work/Größe & "more"`, "v1.2", "notes.eml", "box.mbox"}

// corpusMessages spreads imaptest.Corpus() over the test folders: every
// folder gets some, INBOX all of them.
func corpusMessages() []src {
	var out []src
	uids := map[string]uint32{}
	add := func(folder string, m imaptest.NamedMsg) {
		uids[folder]++
		out = append(out, src{folder: folder, uid: uids[folder] * 3, body: m.Body, flags: m.Flags, date: m.Date})
	}
	for i, m := range imaptest.Corpus() {
		add("INBOX", m)
		add(testFolders[1+i%(len(testFolders)-1)], m)
	}
	return out
}

// build writes msgs into a new archive of the given format with the
// archive's own writer (small frames, so that compressed folders span
// several) and returns its directory. All is stored by one run that
// started an hour ago.
func build(t testing.TB, format archive.Format, msgs []src) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	buildFrames(t, dir, format, 16<<10, msgs)
	return dir
}

func buildFrames(t testing.TB, dir string, format archive.Format, frame int, msgs []src) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{Format: format, FrameSize: frame})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, err := a.Cat.BeginRun(t.Context(), "backup", "imap://test@example.org", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]*archive.FolderWriter{}
	for _, m := range msgs {
		w := writers[m.folder]
		if w == nil {
			f, err := a.Folder(t.Context(), m.folder, '/', "")
			if err != nil {
				t.Fatal(err)
			}
			if w, err = a.NewWriter(t.Context(), f, run); err != nil {
				t.Fatal(err)
			}
			writers[m.folder] = w
		}
		if _, err := w.Add(&archive.Incoming{UIDValidity: 42, UID: m.uid, InternalDate: m.date, Flags: m.flags}, bytes.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range writers {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
}

func runExport(t testing.TB, dir, to string, opt export.Options) (export.Stats, error) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return export.Run(context.Background(), a, to, opt)
}

// got is one message as Python's mailbox module (or a plain file read,
// for eml) reads it from an export.
type got struct {
	Path  string  `json:"path"`  // mbox file, Maildir folder directory or eml file, relative
	SHA   string  `json:"sha"`   // of the bytes read
	Raw   string  `json:"raw"`   // the bytes, for messages under 4 kB (latin-1 decoded)
	Flags string  `json:"flags"` // mbox: Status+X-Status; Maildir: info letters
	Mtime float64 `json:"mtime"` // Maildir, eml
	Name  string  `json:"name"`  // Maildir, eml: file name
}

const pyRead = `
import hashlib, json, mailbox, os, sys
kind, root = sys.argv[1], sys.argv[2]
out = []
def rec(path, b, **kw):
    d = dict(path=os.path.relpath(path, root), sha=hashlib.sha256(b).hexdigest(),
             raw=b.decode("latin-1") if len(b) < 4096 else "", flags="", mtime=0.0, name="")
    d.update(kw)
    out.append(d)
if kind == "mbox":
    for dp, dn, fn in sorted(os.walk(root)):
        for f in sorted(fn):
            p = os.path.join(dp, f)
            box = mailbox.mbox(p, create=False)
            for k in box.keys():
                rec(p, box.get_bytes(k), flags=box.get_message(k).get_flags())
elif kind == "maildir":
    top = mailbox.Maildir(root, factory=None, create=False)
    boxes = [(root, top)] + [(os.path.join(root, "." + n), top.get_folder(n)) for n in top.list_folders()]
    for p, box in boxes:
        for k in box.keys():
            m = box.get_message(k)
            rec(p, box.get_bytes(k), flags=m.get_flags(), mtime=m.get_date(), name=os.path.basename(box._lookup(k)))
else:
    for dp, dn, fn in sorted(os.walk(root)):
        for f in sorted(fn):
            p = os.path.join(dp, f)
            with open(p, "rb") as fh:
                rec(dp, fh.read(), mtime=os.stat(p).st_mtime, name=f)
json.dump(out, sys.stdout)
`

func pyReadExport(t testing.TB, format export.Format, root string) []got {
	t.Helper()
	py := archivetest.Need(t, "python3")
	cmd := exec.Command(py, "-c", pyRead, string(format), root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python mailbox reader: %v\n%s", err, stderr.String())
	}
	var g []got
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

var fromRE = regexp.MustCompile(`(?m)^(>*From )`)

// mboxView is what Python's mailbox.mbox gives back for a message the
// export wrote: the Status/X-Status lines put before its first header
// field (in the message's line ending), the body with one '>' added to
// every line matching ^>*From (mboxrd quoting; Python reads mboxo and
// does not remove it), and a "\n" added when the message did not end
// with one (the separator; mbox cannot tell these apart).
func mboxView(body []byte, status string) []byte {
	b := fromRE.ReplaceAll(body, []byte(">$1"))
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return append([]byte(status), b...)
}

// wantStatus is the header lines the mbox export must put before a
// message, written out by hand from mutt's and Dovecot's convention.
func wantStatus(body []byte, flags []string) string {
	first, _, ok := bytes.Cut(body, []byte("\n"))
	if !ok || !regexp.MustCompile(`^[!-9;-~]+:`).Match(first) {
		return ""
	}
	eol := "\n"
	if bytes.HasSuffix(first, []byte("\r")) {
		eol = "\r\n"
	}
	st := "Status: O" + eol
	if slices.Contains(flags, `\Seen`) {
		st = "Status: RO" + eol
	}
	x := ""
	for _, l := range [][2]string{{`\Answered`, "A"}, {`\Deleted`, "D"}, {`\Flagged`, "F"}, {`\Draft`, "T"}} {
		if slices.Contains(flags, l[0]) {
			x += l[1]
		}
	}
	if x != "" {
		st += "X-Status: " + x + eol
	}
	var kws []string
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			kws = append(kws, f)
		}
	}
	if len(kws) > 0 {
		st += "X-Keywords: " + strings.Join(kws, " ") + eol
	}
	return st
}

// maildirLetters is the info of a message with flags in the exported
// Maildir dir: the system flag letters, then the letters its folder's
// dovecot-keywords file gives the message's keywords, sorted.
func maildirLetters(t *testing.T, dir string, flags []string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	letter := map[string]byte{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if n, kw, ok := strings.Cut(l, " "); ok {
			i, _ := strconv.Atoi(n)
			letter[kw] = byte('a' + i)
		}
	}
	var kl []byte
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		c, ok := letter[f]
		if !ok {
			t.Errorf("%s: keyword %q not in dovecot-keywords %q", dir, f, b)
		}
		kl = append(kl, c)
	}
	slices.Sort(kl)
	return maildir.FlagLetters(flags) + string(kl)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// wantPath is where each format puts a test folder.
var wantPath = map[export.Format]map[string]string{
	export.Mbox: {"INBOX": "INBOX.mbox", "INBOX/Child": "INBOX/Child.mbox", "Work": "Work.mbox",
		`Work/Größe & "more"`: `Work/Größe & "more".mbox`, "v1.2": "v1.2.mbox", "notes.eml": "notes.eml.mbox", "box.mbox": "box%2Embox.mbox"},
	export.Maildir: {"INBOX": ".", "INBOX/Child": ".INBOX.Child", "Work": ".Work",
		`Work/Größe & "more"`: `.Work.Größe & "more"`, "v1.2": ".v1%2E2", "notes.eml": ".notes%2Eeml", "box.mbox": ".box%2Embox"},
	export.EML: {"INBOX": "INBOX", "INBOX/Child": "INBOX/Child", "Work": "Work",
		`Work/Größe & "more"`: `Work/Größe & "more"`, "v1.2": "v1.2", "notes.eml": "notes%2Eeml", "box.mbox": "box.mbox"},
}

// check compares an export, as Python reads it, with the messages that
// were archived: every message, in order, in the right place, with its
// bytes (exactly, or for mbox transformed as mboxView says), flags and
// mtime. want must be in archive order per folder.
func check(t *testing.T, format export.Format, root string, want []src) {
	t.Helper()
	checkAt(t, format, root, want, wantPath[format])
}

func checkAt(t *testing.T, format export.Format, root string, want []src, paths map[string]string) {
	t.Helper()
	g := pyReadExport(t, format, root)
	byPath := map[string][]got{}
	for _, m := range g {
		byPath[m.Path] = append(byPath[m.Path], m)
	}
	seen := map[string]int{}
	for _, w := range want {
		p, ok := paths[w.folder]
		if !ok {
			t.Fatalf("no expected path for folder %q", w.folder)
		}
		i := seen[p]
		seen[p]++
		if i >= len(byPath[p]) {
			t.Errorf("%s: folder %q uid %d missing at %s (python read %d there)", format, w.folder, w.uid, p, len(byPath[p]))
			continue
		}
		m := byPath[p][i]
		if format == export.Maildir { // a Maildir has no order: find the file by its name
			prefix := fmt.Sprintf("%d.M42U%d.mailkeep:2,", w.date.Unix(), w.uid)
			j := slices.IndexFunc(byPath[p], func(g got) bool { return strings.HasPrefix(g.Name, prefix) })
			if j < 0 {
				t.Errorf("maildir %s: no file %s*", p, prefix)
				continue
			}
			m = byPath[p][j]
		}
		switch format {
		case export.Mbox:
			exp := mboxView(w.body, wantStatus(w.body, w.flags))
			if m.SHA != sha(exp) {
				t.Errorf("mbox %s message %d (uid %d): python read\n%q\nwant\n%q", p, i, w.uid, clip([]byte(m.Raw)), clip(exp))
			}
			for flag, letter := range map[string]string{`\Seen`: "R", `\Answered`: "A", `\Flagged`: "F", `\Draft`: "T", `\Deleted`: "D"} {
				has := strings.Contains(m.Flags, letter)
				if wantStatus(w.body, w.flags) != "" && has != slices.Contains(w.flags, flag) {
					t.Errorf("mbox %s uid %d: python flags %q, archived %q", p, w.uid, m.Flags, w.flags)
				}
			}
		default:
			if m.SHA != sha(w.body) {
				t.Errorf("%s %s message %d (uid %d): bytes differ: python read\n%q\nwant\n%q", format, p, i, w.uid, clip([]byte(m.Raw)), clip(w.body))
			}
			if int64(m.Mtime) != w.date.Unix() {
				t.Errorf("%s %s uid %d: mtime %v, want INTERNALDATE %v", format, m.Name, w.uid, time.Unix(int64(m.Mtime), 0), w.date)
			}
		}
		switch format {
		case export.Maildir:
			if letters := maildirLetters(t, filepath.Join(root, p), w.flags); m.Flags != letters || !strings.HasSuffix(m.Name, ":2,"+letters) {
				t.Errorf("maildir uid %d: file %s, python flags %q, want %q", w.uid, m.Name, m.Flags, letters)
			}
			if wantName := fmt.Sprintf("%d.M42U%d.mailkeep:2,", w.date.Unix(), w.uid); !strings.HasPrefix(m.Name, wantName) {
				t.Errorf("maildir file %s, want %s...", m.Name, wantName)
			}
		case export.EML:
			if wantName := fmt.Sprintf("%06d-%d.eml", i+1, w.uid); m.Name != wantName {
				t.Errorf("eml file %s, want %s", m.Name, wantName)
			}
		}
	}
	for p, ms := range byPath {
		if len(ms) != seen[p] {
			t.Errorf("%s: %s holds %d messages, want %d", format, p, len(ms), seen[p])
		}
	}
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// TestExportEveryFormat exports mbox.zst, plain mbox and Maildir archives
// of the awkward corpus to each format and reads the result back with
// Python's mailbox module.
func TestExportEveryFormat(t *testing.T) {
	msgs := corpusMessages()
	for _, af := range []archive.Format{archive.MboxZstd, archive.Mbox, archive.Maildir} {
		dir := build(t, af, msgs)
		for _, f := range []export.Format{export.Mbox, export.Maildir, export.EML} {
			t.Run(string(af)+"->"+string(f), func(t *testing.T) {
				to := filepath.Join(t.TempDir(), "out")
				st, err := runExport(t, dir, to, export.Options{Format: f})
				if err != nil {
					t.Fatal(err)
				}
				var bytes int64
				for _, m := range msgs {
					bytes += int64(len(m.body))
				}
				if st.Folders != len(testFolders) || st.Messages != len(msgs) || st.Bytes != bytes || st.Skipped != 0 {
					t.Errorf("stats %+v, want %d folders, %d messages, %d bytes", st, len(testFolders), len(msgs), bytes)
				}
				check(t, f, to, msgs)
				noTempFiles(t, to)
			})
		}
	}
}

// noTempFiles checks that an export left no temporary file behind.
func noTempFiles(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".tmp") || filepath.Base(filepath.Dir(p)) == "tmp" && !d.IsDir() {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestMboxGolden pins the exact mbox text for a few messages: From lines,
// Status headers in each line ending, quoting, separators.
func TestMboxGolden(t *testing.T) {
	d := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600))
	msgs := []src{
		{"INBOX", 1, []byte("From: Alice <alice@example.org>\r\nSubject: crlf\r\n\r\nFrom here\r\n>From there\r\n"), []string{`\Seen`, `\Flagged`, "$Label1"}, d},
		{"INBOX", 2, []byte("From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\nSubject: lf, unread\n\nno final newline"), nil, d.Add(time.Hour)},
		{"INBOX", 3, []byte("From sender@example.org Sat Jan  3 01:05:34 1996\nSubject: no header first\n\nx\n"), []string{`\Answered`, `\Deleted`, `\Draft`}, d.Add(2 * time.Hour)},
	}
	to := filepath.Join(t.TempDir(), "out")
	if _, err := runExport(t, build(t, archive.MboxZstd, msgs), to, export.Options{Format: export.Mbox}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(to, "INBOX.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "inbox.mbox.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("INBOX.mbox differs from %s:\n%q\nwant\n%q", golden, b, want)
	}
}

// TestFolderSelection: --folder globs as backup and restore use them.
func TestFolderSelection(t *testing.T) {
	msgs := corpusMessages()
	dir := build(t, archive.MboxZstd, msgs)
	for _, tt := range []struct {
		include, exclude []string
		want             []string
	}{
		{[]string{"Work/*"}, nil, []string{`Work/Größe & "more"`}},
		{[]string{"Work*"}, nil, []string{"Work", `Work/Größe & "more"`}},
		{[]string{"inbox"}, nil, []string{"INBOX"}},
		{[]string{"INBOX*", "v1.?"}, nil, []string{"INBOX", "INBOX/Child", "v1.2"}},
		{nil, []string{"*"}, nil},
		{[]string{"*"}, []string{"*.*", "Work/*"}, []string{"INBOX", "INBOX/Child", "Work"}},
	} {
		t.Run(strings.Join(tt.include, ",")+"-"+strings.Join(tt.exclude, ","), func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "out")
			st, err := runExport(t, dir, to, export.Options{Format: export.EML, Folders: tt.include, Exclude: tt.exclude})
			if err != nil {
				t.Fatal(err)
			}
			var want []src
			for _, m := range msgs {
				if slices.Contains(tt.want, m.folder) {
					want = append(want, m)
				}
			}
			if st.Folders != len(tt.want) || st.Messages != len(want) {
				t.Errorf("stats %+v, want %d folders, %d messages", st, len(tt.want), len(want))
			}
			check(t, export.EML, to, want)
		})
	}
}

// TestAsOf: a flag change and an expunge recorded by a later run are not
// visible --as-of a time before that run; they are by default, and
// --include-expunged brings the expunged message back.
func TestAsOf(t *testing.T) {
	d := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	msgs := []src{
		{"INBOX", 1, []byte("Subject: one\r\n\r\n1\r\n"), []string{`\Seen`}, d},
		{"INBOX", 2, []byte("Subject: two\r\n\r\n2\r\n"), nil, d.Add(time.Minute)},
		{"INBOX", 3, []byte("Subject: three\r\n\r\n3\r\n"), []string{`\Seen`}, d.Add(2 * time.Minute)},
	}
	dir := build(t, archive.Maildir, msgs)
	mid := time.Now().Add(time.Minute) // after the messages were stored, before the next run
	// A later backup run: uid 2 gets \Flagged and \Seen, uid 3 is expunged.
	a, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "imap://test@example.org", time.Now().Add(2*time.Minute))
	f, _ := a.Cat.Folder(t.Context(), "INBOX")
	live, _ := a.Cat.Live(t.Context(), f.ID)
	byID := map[int64]*catalog.Message{}
	for _, m := range live {
		byID[m.ID] = m
	}
	w, err := a.NewWriter(t.Context(), f, run)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetFlags([]catalog.FlagChange{{ID: live[1].ID, Flags: []string{`\Flagged`, `\Seen`}}}, byID); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := a.Cat.MarkExpunged(t.Context(), run, []int64{live[2].ID}); err != nil {
		t.Fatal(err)
	}
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	a.Close()

	changed := msgs[1]
	changed.flags = []string{`\Flagged`, `\Seen`}
	for _, tt := range []struct {
		name string
		opt  export.Options
		want []src
	}{
		{"now", export.Options{}, []src{msgs[0], changed}},
		{"as-of", export.Options{AsOf: mid}, msgs},
		{"include-expunged", export.Options{IncludeExpunged: true}, []src{msgs[0], changed, msgs[2]}},
		{"as-of-before-everything", export.Options{AsOf: time.Now().Add(-2 * time.Hour)}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "out")
			tt.opt.Format = export.Maildir
			st, err := runExport(t, dir, to, tt.opt)
			if err != nil || st.Messages != len(tt.want) {
				t.Fatalf("stats %+v %v, want %d messages", st, err, len(tt.want))
			}
			check(t, export.Maildir, to, tt.want)
		})
	}
}

// TestTargetMustBeNewOrEmpty: export never writes into existing files.
func TestTargetMustBeNewOrEmpty(t *testing.T) {
	dir := build(t, archive.Mbox, corpusMessages()[:2])
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("mine"), 0o600)
	full := filepath.Join(base, "full")
	os.MkdirAll(filepath.Join(full, "x"), 0o700)
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(empty, link)
	for _, tt := range []struct {
		to string
		ok bool
	}{{file, false}, {full, false}, {link, false}, {empty, true}, {filepath.Join(base, "new", "deeper"), true}} {
		_, err := runExport(t, dir, tt.to, export.Options{Format: export.Mbox})
		if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, export.ErrTargetNotEmpty) {
			t.Errorf("export to %s: %v, want ok=%v", tt.to, err, tt.ok)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "mine" {
		t.Errorf("existing file changed: %q", b)
	}
	if ents, _ := os.ReadDir(full); len(ents) != 1 {
		t.Errorf("existing directory changed: %v", ents)
	}
}

// damage flips bytes of one archived message in place: inside its body
// for plain mbox and Maildir, inside its compressed frame for mbox.zst.
func damage(t *testing.T, dir string, format archive.Format, folder string, uid uint32) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, _ := a.Cat.Folder(t.Context(), folder)
	m, err := a.Cat.ByUID(t.Context(), f, uid)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, m.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var at int64
	switch format {
	case archive.Maildir:
		at = m.Size - 3
	case archive.Mbox:
		at = m.FrameOffset + m.FramePos + m.Size - 3 // before the end: no From line there
	default:
		at = m.FrameOffset + 200 // inside the frame's compressed data
	}
	for i := at; i < at+8 && i < int64(len(b)); i++ {
		b[i] ^= 0x55
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedMessageSkipped: a message whose archived bytes no longer
// match the catalog is not exported, is reported with its folder and UID,
// and the rest of the folder is exported intact.
func TestDamagedMessageSkipped(t *testing.T) {
	var msgs []src
	for i := range 40 {
		body := fmt.Sprintf("Subject: message %d\r\nMessage-ID: <%d@damage>\r\n\r\n%s\r\n", i, i, strings.Repeat(fmt.Sprintf("line %d of a message that fills frames\r\n", i), 60))
		msgs = append(msgs, src{"Box", uint32(i + 1), []byte(body), []string{`\Seen`}, time.Date(2020, 1, 1, 0, i, 0, 0, time.UTC)})
	}
	for _, af := range []archive.Format{archive.Maildir, archive.Mbox, archive.MboxZstd} {
		t.Run(string(af), func(t *testing.T) {
			dir := build(t, af, msgs)
			const bad = 20
			damage(t, dir, af, "Box", bad)
			for _, f := range []export.Format{export.Mbox, export.Maildir, export.EML} {
				to := filepath.Join(t.TempDir(), "out")
				st, err := runExport(t, dir, to, export.Options{Format: f, Account: "alice"})
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				t.Logf("%s -> %s: %d exported, skipped %d", af, f, st.Messages, st.Skipped)
				var skipped []uint32
				for _, d := range st.Damaged {
					var me *archive.MessageError
					if !errors.As(d, &me) || !errors.Is(d, export.ErrDamaged) || me.Folder != "Box" || !strings.Contains(d.Error(), `account alice: folder "Box" uid `) {
						t.Errorf("%s: damage report %v", f, d)
						continue
					}
					skipped = append(skipped, me.UID)
				}
				if st.Skipped == 0 || st.Skipped != len(st.Damaged) || !slices.Contains(skipped, bad) || st.Messages+st.Skipped != len(msgs) {
					t.Fatalf("%s: stats %+v, skipped uids %v; want uid %d among them", f, st, skipped, bad)
				}
				// Plain formats lose exactly the damaged message; a damaged
				// zstd frame costs the messages that start in it.
				if af != archive.MboxZstd && st.Skipped != 1 {
					t.Errorf("%s: skipped %v, want only uid %d", f, skipped, bad)
				}
				var want []src
				for _, m := range msgs {
					if !slices.Contains(skipped, m.uid) {
						want = append(want, m)
					}
				}
				if f == export.EML { // sequence numbers count the skipped messages too
					checkEMLNames(t, to, msgs, skipped)
				} else {
					checkAt(t, f, to, want, map[string]string{"Box": map[export.Format]string{export.Mbox: "Box.mbox", export.Maildir: ".Box"}[f]})
				}
				noTempFiles(t, to)
			}
		})
	}
}

func checkEMLNames(t *testing.T, to string, msgs []src, skipped []uint32) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(to, "Box"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	var want []string
	for i, m := range msgs {
		if !slices.Contains(skipped, m.uid) {
			want = append(want, fmt.Sprintf("%06d-%d.eml", i+1, m.uid))
			b, err := os.ReadFile(filepath.Join(to, "Box", want[len(want)-1]))
			if err != nil || !bytes.Equal(b, m.body) {
				t.Errorf("eml uid %d: %v, bytes equal %v", m.uid, err, bytes.Equal(b, m.body))
			}
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, want) {
		t.Errorf("eml files %v, want %v", names, want)
	}
}

// TestInterrupted: an export stopped half-way (here by its context) leaves
// only complete files under final names and no temporary files.
func TestInterrupted(t *testing.T) {
	msgs := corpusMessages()
	dir := build(t, archive.MboxZstd, msgs)
	originals := map[string]bool{}
	for _, m := range msgs {
		originals[sha(m.body)] = true
	}
	for _, f := range []export.Format{export.Mbox, export.Maildir, export.EML} {
		t.Run(string(f), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			to := filepath.Join(t.TempDir(), "out")
			a, err := archive.Open(dir, archive.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			st, err := export.Run(ctx, a, to, export.Options{Format: f, Progress: func(string, int64) {
				if n++; n == 25 {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) || st.Messages >= 25 {
				t.Fatalf("interrupted export: %+v %v", st, err)
			}
			noTempFiles(t, to)
			total := 0
			for _, g := range pyReadExport(t, f, to) {
				total++
				if f != export.Mbox && !originals[g.SHA] {
					t.Errorf("%s %s: a message that is not one of the originals", g.Path, g.Name)
				}
			}
			// Only the folders finished before the stop: the mbox file of
			// the folder in progress is never renamed into place, and its
			// Maildir/eml files were in a batch not yet flushed.
			if done := inFolders(msgs, st.Folders); total != done || done != st.Messages {
				t.Errorf("%s: %d messages readable after the stop at 25 (stats: %d), want the %d of the %d finished folders", f, total, st.Messages, done, st.Folders)
			}
		})
	}
}

// inFolders counts the messages of the first n folders in name order (the
// order export writes them).
func inFolders(msgs []src, n int) int {
	names := slices.Clone(testFolders)
	sort.Strings(names)
	c := 0
	for _, m := range msgs {
		if slices.Contains(names[:n], m.folder) {
			c++
		}
	}
	return c
}

// TestPOP3Names: POP3 messages (no UID, a UIDL) get names from a hash of
// their UIDL, and their date from the Received: header.
func TestPOP3Names(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	a, err := archive.Open(dir, archive.Options{Format: archive.MboxGzip})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "pop3://bob@example.org", time.Now().Add(-time.Minute))
	f, _ := a.Folder(t.Context(), "INBOX", 0, "")
	w, _ := a.NewWriter(t.Context(), f, run)
	body := []byte("Received: from x by y; Tue, 3 Mar 2020 04:05:06 +0000\r\nSubject: pop\r\n\r\nbody\r\n")
	if _, err := w.Add(&archive.Incoming{UIDL: "uidl/../1"}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	a.Close()
	date := time.Date(2020, 3, 3, 4, 5, 6, 0, time.UTC)
	hash := sha([]byte("uidl/../1"))[:16]
	for f, name := range map[export.Format]string{
		export.Maildir: fmt.Sprintf("cur/%d.P%s.mailkeep:2,", date.Unix(), hash),
		export.EML:     "INBOX/000001-P" + hash + ".eml",
	} {
		to := filepath.Join(t.TempDir(), "out")
		if st, err := runExport(t, dir, to, export.Options{Format: f}); err != nil || st.Messages != 1 {
			t.Fatalf("%s: %+v %v", f, st, err)
		}
		b, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || !bytes.Equal(b, body) {
			t.Errorf("%s: %s: %v %q", f, name, err, b)
		}
		if fi, err := os.Stat(filepath.Join(to, name)); err != nil || !fi.ModTime().Equal(date) {
			t.Errorf("%s: mtime %v, want %v", f, fi.ModTime(), date)
		}
	}
}
