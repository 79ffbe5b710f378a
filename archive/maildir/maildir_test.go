package maildir

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection dropped")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "maildir", ".Work.Projects")
	f, err := OpenFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if f.Dir() != dir {
		t.Errorf("Dir() = %q", f.Dir())
	}
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s/%s: %v %v", dir, sub, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "maildir")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("created parent: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(dir, "maildirfolder")); err != nil || st.Size() != 0 {
		t.Errorf("maildirfolder marker: %v", err)
	}
	// The root folder (INBOX) has no marker; reopening changes nothing.
	inbox := filepath.Join(root, "maildir")
	if _, err := OpenFolder(inbox, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(inbox, "maildirfolder")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("INBOX got a maildirfolder marker: %v", err)
	}
	if _, err := OpenFolder(dir, true); err != nil {
		t.Fatalf("reopening: %v", err)
	}
	notDir := filepath.Join(root, "file")
	os.WriteFile(notDir, nil, 0o600)
	if _, err := OpenFolder(notDir, true); err == nil || !strings.Contains(err.Error(), notDir) {
		t.Errorf("OpenFolder on a file: %v", err)
	}
}

func TestDeliverReplaceSetFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".Sub")
	f, err := OpenFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2015, 3, 4, 5, 6, 7, 0, time.UTC)
	body := "Subject: x\r\n\r\nFrom here\r\nno final newline"
	name, n, err := f.Deliver("1.M1U1.mailkeep", []string{`\Seen`, `\Flagged`, "$Kw", `\Recent`}, date, strings.NewReader(body))
	if err != nil || n != int64(len(body)) || name != "cur/1.M1U1.mailkeep:2,FS" {
		t.Fatalf("Deliver: %q %d %v", name, n, err)
	}
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil || !st.ModTime().Equal(date) {
		t.Errorf("mtime %v, want %v (%v)", st.ModTime(), date, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d files after delivery", len(ents))
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// A fresh Folder (as in the next run) replaces the same key.
	f2, _ := OpenFolder(dir, true)
	name2, _, err := f2.Deliver("1.M1U1.mailkeep", nil, date, strings.NewReader(body))
	if err != nil || name2 != "cur/1.M1U1.mailkeep:2," {
		t.Fatalf("re-delivery: %q %v", name2, err)
	}
	if names, _ := f2.Scan(); !slices.Equal(names, []string{name2}) {
		t.Fatalf("after re-delivery: %q", names)
	}
	name3, err := f2.SetFlags(name2, []string{`\Answered`, `$Forwarded`, `\Deleted`, `\Draft`})
	if err != nil || name3 != "cur/1.M1U1.mailkeep:2,DPRT" {
		t.Fatalf("SetFlags: %q %v", name3, err)
	}
	if same, err := f2.SetFlags(name3, ParseFlagLetters("DPRT")); err != nil || same != name3 {
		t.Errorf("SetFlags without a change: %q %v", same, err)
	}
	r, err := f2.Open(name3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != body {
		t.Fatalf("bytes changed: %q", b)
	}
	if _, err := f2.SetFlags(name2, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SetFlags of a missing file: %v", err)
	}
	if _, err := f2.SetFlags("cur/1.M1U1.mailkeep:2,DPRT", []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	// f still believes the old name; Find looks again.
	if got, err := f.Find("1.M1U1.mailkeep"); err != nil || got != "cur/1.M1U1.mailkeep:2,S" {
		t.Errorf("Find: %q %v", got, err)
	}
	if _, err := f.Find("9.M1U9.mailkeep"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Find of a missing key: %v", err)
	}
	for _, bad := range []string{"../x", "cur/../../x", "tmp/x", "cur/", "x", "/etc/passwd", "cur/.hidden"} {
		if _, err := f2.Open(bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
		if _, err := f2.SetFlags(bad, nil); err == nil {
			t.Errorf("SetFlags(%q) accepted", bad)
		}
	}
}

// TestReplaceOrphans checks that a key left by a killed run in new/, or
// twice (killed between rename and removal), ends up stored once.
func TestReplaceOrphans(t *testing.T) {
	dir := t.TempDir()
	f, _ := OpenFolder(dir, false)
	orphans := []string{"new/5.M1U5.mailkeep", "cur/6.M1U6.mailkeep:2,F", "cur/6.M1U6.mailkeep:2,R", "cur/7.M1U7.mailkeep:2,"}
	for _, o := range orphans {
		os.WriteFile(filepath.Join(dir, o), []byte("torn"), 0o600)
	}
	f2, _ := OpenFolder(dir, false)
	for _, k := range []string{"5.M1U5.mailkeep", "6.M1U6.mailkeep", "7.M1U7.mailkeep"} {
		if _, _, err := f2.Deliver(k, []string{`\Seen`}, time.Unix(1e9, 0), strings.NewReader("whole "+k)); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := f.Scan()
	want := []string{"cur/5.M1U5.mailkeep:2,S", "cur/6.M1U6.mailkeep:2,S", "cur/7.M1U7.mailkeep:2,S"}
	if !slices.Equal(names, want) {
		t.Fatalf("Scan = %q, want %q", names, want)
	}
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		if string(b) != "whole "+KeyOf(n) {
			t.Errorf("%s holds %q", n, b)
		}
	}
}

func TestFailedDeliveryLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, _ := OpenFolder(dir, false)
	_, _, err := f.Deliver("2.M1U2.mailkeep", nil, time.Now(), &failingReader{n: 100000})
	if err == nil || !strings.Contains(err.Error(), "connection dropped") || !strings.Contains(err.Error(), "2.M1U2.mailkeep") {
		t.Fatalf("error from a failing reader: %v", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("a failed delivery left %q", got)
	}
	// A failed re-delivery keeps the stored copy.
	if _, _, err := f.Deliver("2.M1U2.mailkeep", nil, time.Now(), strings.NewReader("good")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Deliver("2.M1U2.mailkeep", []string{`\Seen`}, time.Now(), &failingReader{n: 10}); err == nil {
		t.Fatal("no error from a failing reader")
	}
	if got := files(t, dir); !slices.Equal(got, []string{"cur/2.M1U2.mailkeep:2,"}) {
		t.Errorf("after a failed re-delivery: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "tmp", "3.M1U3.mailkeep"), []byte("torn"), 0o600)
	os.WriteFile(filepath.Join(dir, "tmp", "other-tool"), []byte("not ours"), 0o600)
	if err := f.CleanTmp(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(ents) != 1 || ents[0].Name() != "other-tool" {
		t.Errorf("CleanTmp left %v", ents)
	}
	for _, bad := range []string{"../evil", "a/b", "", ".hidden", "x:2,S", "nul\x00", strings.Repeat("k", 241)} {
		if _, _, err := f.Deliver(bad, nil, time.Now(), strings.NewReader("x")); err == nil {
			t.Errorf("key %q was accepted", bad)
		}
	}
}

// zeros is an endless reader that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDeliverStreams checks that a large message goes through a bounded
// buffer, not memory.
func TestDeliverStreams(t *testing.T) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	f, _ := OpenFolder(t.TempDir(), false)
	f.Deliver("0.M1U0.mailkeep", nil, time.Now(), strings.NewReader("warm up"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, n, err := f.Deliver("1.M1U1.mailkeep", nil, time.Now(), io.LimitReader(zeros{}, size))
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("Deliver: %d %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("delivering %d bytes allocated %d bytes", size, alloc)
	}
}

func TestFlagLetters(t *testing.T) {
	tests := []struct {
		flags   []string
		letters string
	}{
		{nil, ""},
		{[]string{`\Seen`}, "S"},
		{[]string{`\seen`, `\SEEN`}, "S"},
		{[]string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, `$Forwarded`}, "DFPRST"},
		{[]string{`\Recent`, "$Junk", "NonJunk", `\*`}, ""},
	}
	for _, tt := range tests {
		if got := FlagLetters(tt.flags); got != tt.letters {
			t.Errorf("FlagLetters(%q) = %q, want %q", tt.flags, got, tt.letters)
		}
		if got := FlagLetters(ParseFlagLetters(tt.letters)); got != tt.letters {
			t.Errorf("FlagLetters(ParseFlagLetters(%q)) = %q", tt.letters, got)
		}
	}
	// Letters of other programs (lower-case keywords, unknown) are ignored.
	if got := ParseFlagLetters("Sabcz"); !slices.Equal(got, []string{`\Seen`}) {
		t.Errorf("ParseFlagLetters(Sabcz) = %q", got)
	}
	for _, tt := range []struct{ in, want string }{
		{"cur/1.M1U1.mailkeep:2,FS", "1.M1U1.mailkeep"},
		{"new/1.M1U1.mailkeep", "1.M1U1.mailkeep"},
		{"1.M1U1.mailkeep:2,", "1.M1U1.mailkeep"},
	} {
		if got := KeyOf(tt.in); got != tt.want {
			t.Errorf("KeyOf(%q) = %q", tt.in, got)
		}
	}
}

// sample messages that independent readers must return byte for byte.
var samples = []struct {
	key   string
	flags []string
	date  time.Time
	body  []byte
}{
	{"1400000000.M7U1.mailkeep", []string{`\Seen`}, time.Unix(1400000000, 0),
		[]byte("From: a@example.org\r\nSubject: crlf\r\n\r\nline one\r\nFrom me, at the start of a line\r\n>From quoted\r\n")},
	{"1400000001.M7U2.mailkeep", []string{`\Flagged`, `\Answered`}, time.Unix(1400000001, 0),
		[]byte("Subject: lf\n\nFrom the start\n>>From twice\n.\n..\n")},
	{"1400000002.M7U3.mailkeep", nil, time.Unix(1400000002, 0),
		[]byte("Subject: 8bit\n\nGr\xfc\xdfe, Gr\u00fc\u00dfe, \xff\xfe\x00 nul and \x1b escape\n")},
	{"1400000003.M7U4.mailkeep", []string{`\Draft`, `\Deleted`, `$Forwarded`, `\Seen`}, time.Unix(1400000003, 0),
		[]byte("Subject: no final newline\r\n\r\nends here")},
	{"1400000004.P0123456789abcdef.mailkeep", []string{`\Seen`}, time.Date(2004, 2, 29, 23, 59, 59, 0, time.UTC),
		append([]byte("Subject: big\n\n"), bytes.Repeat([]byte("a long line of text without end "), 20000)...)},
}

func deliverSamples(t *testing.T, dir string) *Folder {
	t.Helper()
	f, err := OpenFolder(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if _, _, err := f.Deliver(s.key, s.flags, s.date, bytes.NewReader(s.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f
}
