package maildir

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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

func TestDeliverReplaceSetFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".Sub")
	f, err := OpenFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "maildirfolder")); err != nil {
		t.Fatal("no maildirfolder marker")
	}
	date := time.Date(2015, 3, 4, 5, 6, 7, 0, time.UTC)
	body := "Subject: x\r\n\r\nFrom here\r\nno final newline"
	name, n, err := f.Deliver("1.M1U1.mailkeep", []string{`\Seen`, `\Flagged`, "$Kw"}, date, strings.NewReader(body))
	if err != nil || n != int64(len(body)) || name != "cur/1.M1U1.mailkeep:2,FS" {
		t.Fatalf("Deliver: %q %d %v", name, n, err)
	}
	st, _ := os.Stat(filepath.Join(dir, name))
	if !st.ModTime().Equal(date) {
		t.Errorf("mtime %v, want %v", st.ModTime(), date)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// A fresh Folder (as in the next run) replaces the same key.
	f2, _ := OpenFolder(dir, true)
	name2, _, err := f2.Deliver("1.M1U1.mailkeep", nil, date, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := f2.Scan(); !slices.Equal(names, []string{name2}) {
		t.Fatalf("after re-delivery: %q", names)
	}
	name3, err := f2.SetFlags(name2, []string{`\Answered`, `$Forwarded`, `\Deleted`, `\Draft`})
	if err != nil || name3 != "cur/1.M1U1.mailkeep:2,DPRT" {
		t.Fatalf("SetFlags: %q %v", name3, err)
	}
	r, _ := f2.Open(name3)
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != body {
		t.Fatalf("bytes changed: %q", b)
	}
	if got := ParseFlagLetters("DPRT"); !slices.Equal(got, []string{`\Draft`, `$Forwarded`, `\Answered`, `\Deleted`}) {
		t.Errorf("ParseFlagLetters: %q", got)
	}
}

func TestFailedDeliveryLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, _ := OpenFolder(dir, false)
	if _, _, err := f.Deliver("2.M1U2.mailkeep", nil, time.Now(), &failingReader{n: 100000}); err == nil {
		t.Fatal("no error from a failing reader")
	}
	for _, sub := range []string{"tmp", "cur", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s holds %d files after a failed delivery", sub, len(ents))
		}
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
	if _, _, err := f.Deliver("../evil", nil, time.Now(), strings.NewReader("x")); err == nil {
		t.Error("a key with a slash was accepted")
	}
}
