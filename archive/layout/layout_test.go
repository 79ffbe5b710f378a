package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// nasty are folder names that have broken archivers.
var nasty = []string{
	"INBOX", "inbox", "Inbox/Sub", "INBOX.Sub", "Archiv/Größe", "日本語", "日本語/子", "with space", " lead", "trail ",
	"a&b", "&-", "&AOQ-", `quo"te`, "it's", `back\slash`, "tab\there",
	"..", ".", "../../etc", "a/../../b", "a/./b", "/abs", "abs/", "//", ".hidden", "..hidden", "~home", "a~",
	"dots.in.name", "trailing.", "trailing..", "%41", "A", "%", "%%", "%2E", "%~0123456789abcdef", "",
	"nul\x00byte", "\x00", "cr\r\nlf", "del\x7f", "bad\xffutf8", "\xc3", "\xed\xa0\x80surrogate",
	"x", "x.mbox", "x.mbox.zst", "x.mbox.gz", "x.mbox.zst/z", "x/z", "x.mbox%2Ezst", ".mbox.zst", "mbox",
	"cur", "new", "tmp", "maildirfolder",
	strings.Repeat("long", 100), strings.Repeat("long", 100) + "!", strings.Repeat("ö", 200), strings.Repeat("日", 100),
	strings.Repeat("%", 300), strings.Repeat(".", 300), strings.Repeat("x", 255),
	strings.Repeat("deep/", 30) + "end", strings.Repeat("deep.", 30) + "end",
	strings.Repeat("deep.", 60) + "end", strings.Repeat("deep.", 60) + "end2",
	strings.Repeat(strings.Repeat("w", 60)+"/", 8) + "end",
}

// inside fails unless rel, joined to a root, stays inside it and has only
// elements Linux accepts.
func inside(t *testing.T, rel string) {
	t.Helper()
	root := "/archive"
	p := filepath.Clean(filepath.Join(root, rel))
	if !strings.HasPrefix(p, root+"/") || strings.ContainsRune(rel, 0) || filepath.IsAbs(rel) {
		t.Errorf("%q escapes the archive (%q)", rel, p)
	}
	for el := range strings.SplitSeq(rel, "/") {
		if len(el) > 255 || el == "" || el == "." || el == ".." {
			t.Errorf("%q: bad element %q", rel, el)
		}
	}
}

// folders returns every folder the nasty names give with each delimiter,
// deduplicated by identity (their components).
func folders() [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, name := range nasty {
		for _, delim := range []rune{'/', '.', 0} {
			comps := Components(name, delim)
			id := strings.Join(comps, "\x00")
			if !seen[id] {
				seen[id] = true
				out = append(out, comps)
			}
		}
	}
	return out
}

func TestComponents(t *testing.T) {
	tests := []struct {
		name  string
		delim rune
		want  []string
	}{
		{"INBOX", '/', []string{"INBOX"}},
		{"inbox/Sub", '/', []string{"INBOX", "Sub"}},
		{"InBox.a.b", '.', []string{"INBOX", "a", "b"}},
		{"Work/inbox", '/', []string{"Work", "inbox"}},
		{"a/b", 0, []string{"a/b"}},
		{"inbox", 0, []string{"INBOX"}},
		{"a//b/", '/', []string{"a", "", "b", ""}},
		{"Größe€x€y", '€', []string{"Größe", "x", "y"}},
		{"", '/', []string{""}},
	}
	for _, tt := range tests {
		got := Components(tt.name, tt.delim)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Components(%q, %q) = %q, want %q", tt.name, tt.delim, got, tt.want)
		}
		if j := Join(got, tt.delim); !strings.EqualFold(j, tt.name) {
			t.Errorf("Join(%q, %q) = %q, want %q", got, tt.delim, j, tt.name)
		}
	}
	for _, name := range nasty {
		for _, delim := range []rune{'/', '.', 0} {
			j := Join(Components(name, delim), delim)
			if j != name && !strings.HasPrefix(strings.ToUpper(name), "INBOX") {
				t.Errorf("Join(Components(%q, %q)) = %q", name, delim, j)
			}
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "%"},
		{"Größe", "Größe"},
		{"日本語", "日本語"},
		{`a "b" & 'c' d`, `a "b" & 'c' d`},
		{"&-", "&-"},
		{"%", "%25"},
		{"%41", "%2541"},
		{"a/b", "a%2Fb"},
		{`a\b`, "a%5Cb"},
		{"..", "%2E."},
		{".", "%2E"},
		{".hidden", "%2Ehidden"},
		{"a.b.", "a.b."},
		{"~x", "%7Ex"},
		{"x~", "x~"},
		{"nul\x00", "nul%00"},
		{"\r\n\x7f", "%0D%0A%7F"},
		{"bad\xff", "bad%FF"},
		{"\xc3", "%C3"},
	}
	for _, tt := range tests {
		if got := EscapeComponent(tt.in); got != tt.want {
			t.Errorf("EscapeComponent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"%4", "a%", "%zz", "%g0"} {
		if got, err := UnescapeComponent(bad); err == nil {
			t.Errorf("UnescapeComponent(%q) = %q, want an error", bad, got)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	seen := map[string]string{}
	for _, c := range nasty {
		e := EscapeComponent(c)
		if len(e) > maxElem {
			t.Errorf("%q escaped to %d bytes", c, len(e))
		}
		if other, ok := seen[e]; ok && other != c {
			t.Errorf("%q and %q both escape to %q", c, other, e)
		}
		seen[e] = c
		got, err := UnescapeComponent(e)
		if strings.Contains(e, "%~") {
			if !errors.Is(err, ErrShortened) || !strings.Contains(err.Error(), e) {
				t.Errorf("shortened %q: error %v, want ErrShortened naming it", c, err)
			}
			continue
		}
		if err != nil || got != c {
			t.Errorf("round trip of %q: %q, %v", c, got, err)
		}
	}
}

func TestLongNamesShortened(t *testing.T) {
	a, b := strings.Repeat("long", 100), strings.Repeat("long", 100)+"!"
	ea, eb := EscapeComponent(a), EscapeComponent(b)
	if ea == eb || !strings.Contains(ea, "%~") || !strings.HasPrefix(ea, "longlong") {
		t.Errorf("long names: %q, %q", ea, eb)
	}
	if EscapeComponent(a) != ea {
		t.Error("shortening is not deterministic")
	}
	// A cut must not split a %XX escape or a UTF-8 sequence.
	for _, c := range []string{strings.Repeat("%", 300), strings.Repeat("ö", 200), strings.Repeat("日", 100)} {
		e := EscapeComponent(c)
		head := e[:strings.Index(e, "%~")]
		got, err := UnescapeComponent(head)
		if err != nil || !utf8.ValidString(head) || !strings.HasPrefix(c, got) || len(head) < maxElem-21 {
			t.Errorf("%q cut badly: %q (%v)", c[:6], head, err)
		}
	}
	md := MaildirPath(Components(strings.Repeat("deep.", 60)+"end", '.'))
	if len(md) > maxMaildirElem || !strings.Contains(md, "%~") {
		t.Errorf("long Maildir++ path not shortened: %d bytes", len(md))
	}
	if _, err := ParseMaildirPath(md); !errors.Is(err, ErrShortened) || !strings.Contains(err.Error(), md) {
		t.Errorf("ParseMaildirPath of a shortened path: %v", err)
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		comps     []string
		mbox, mdr string
	}{
		{[]string{"INBOX"}, "INBOX.mbox.zst", ""},
		{[]string{"Work", "Projects"}, "Work/Projects.mbox.zst", ".Work.Projects"},
		{[]string{"INBOX", "x"}, "INBOX/x.mbox.zst", ".INBOX.x"},
		{[]string{"v1.2"}, "v1.2.mbox.zst", ".v1%2E2"},
		{[]string{"b.mbox.zst", "c"}, "b.mbox%2Ezst/c.mbox.zst", ".b%2Embox%2Ezst.c"},
		{[]string{"b.mbox"}, "b%2Embox.mbox.zst", ".b%2Embox"},
		{[]string{".."}, "%2E..mbox.zst", ".%2E%2E"},
		{[]string{"", ""}, "%/%.mbox.zst", ".%.%"},
		{[]string{"Archiv", "Größe"}, "Archiv/Größe.mbox.zst", ".Archiv.Größe"},
	}
	for _, tt := range tests {
		if got := MboxPath(tt.comps, ".mbox.zst"); got != tt.mbox {
			t.Errorf("MboxPath(%q) = %q, want %q", tt.comps, got, tt.mbox)
		}
		if got := MaildirPath(tt.comps); got != tt.mdr {
			t.Errorf("MaildirPath(%q) = %q, want %q", tt.comps, got, tt.mdr)
		}
		if got, err := ParseMaildirPath(tt.mdr); err != nil || !slices.Equal(got, tt.comps) {
			t.Errorf("ParseMaildirPath(%q) = %q, %v", tt.mdr, got, err)
		}
	}
	for _, bad := range []string{"Work", "..", ".", ".a%2eb", ".a%41", ".INBOX", "./x", ".a%", ".a..b"} {
		if got, err := ParseMaildirPath(bad); err == nil {
			t.Errorf("ParseMaildirPath(%q) = %q, want an error", bad, got)
		}
	}
}

// TestNoEscapeNoCollision checks, for every nasty folder and each mbox
// extension, that paths stay inside the archive, that no two folders share
// a path and that no folder's file is another folder's directory. It then
// creates them all on disk.
func TestNoEscapeNoCollision(t *testing.T) {
	all := folders()
	for _, ext := range []string{".mbox.zst", ".mbox.gz", ".mbox"} {
		files := map[string][]string{}
		dirs := map[string][]string{}
		mds := map[string][]string{}
		for _, comps := range all {
			mp := MboxPath(comps, ext)
			inside(t, mp)
			if other, ok := files[mp]; ok {
				t.Errorf("mbox file collision: %q and %q -> %q", other, comps, mp)
			}
			files[mp] = comps
			for d := filepath.Dir(mp); d != "."; d = filepath.Dir(d) {
				dirs[d] = comps
			}
			md := MaildirPath(comps)
			if md != "" {
				inside(t, md)
				if strings.Contains(md, "/") || md[0] != '.' {
					t.Errorf("Maildir++ path %q is not one dot-element", md)
				}
			}
			if other, ok := mds[md]; ok {
				t.Errorf("Maildir collision: %q and %q -> %q", other, comps, md)
			}
			mds[md] = comps
			got, err := ParseMaildirPath(md)
			if err != nil && !errors.Is(err, ErrShortened) || err == nil && !slices.Equal(got, comps) {
				t.Errorf("ParseMaildirPath(%q) = %q, %v, want %q", md, got, err, comps)
			}
		}
		for f, c := range files {
			if d, ok := dirs[f]; ok {
				t.Errorf("file of %q is a directory of %q: %q", c, d, f)
			}
		}
		if ext != ".mbox.zst" {
			continue
		}
		root := t.TempDir()
		for f := range files {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatalf("folder %q: %v", files[f], err)
			}
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatalf("folder %q: %v", files[f], err)
			}
		}
		for md := range mds {
			if err := os.Mkdir(filepath.Join(root, "maildir"+md), 0o700); err != nil && md != "" {
				t.Fatalf("folder %q: %v", mds[md], err)
			}
		}
		n := 0
		filepath.WalkDir(root, func(_ string, d os.DirEntry, _ error) error {
			if d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if n != len(all) {
			t.Errorf("%d folders made %d mbox files", len(all), n)
		}
	}
}

func FuzzNoCollision(f *testing.F) {
	f.Add("a", "b", uint8('/'))
	f.Add("x.mbox.zst", "x", uint8('/'))
	f.Add("x.mbox.zst/c", "x/c", uint8('/'))
	f.Add("%2E", ".", uint8('.'))
	f.Add("a.b", "a%2Eb", uint8('/'))
	f.Add("inbox", "INBOX", uint8(0))
	f.Add(strings.Repeat("y", 300), strings.Repeat("y", 301), uint8('/'))
	f.Fuzz(func(t *testing.T, a, b string, d uint8) {
		delim := rune(d)
		if d >= 0x80 {
			delim = 0
		}
		ca, cb := Components(a, delim), Components(b, delim)
		if slices.Equal(ca, cb) {
			return
		}
		for _, c := range [][]string{ca, cb} {
			for _, x := range c {
				e := EscapeComponent(x)
				if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "/\x00") || len(e) > maxElem {
					t.Fatalf("%q escapes to unsafe %q", x, e)
				}
				if got, err := UnescapeComponent(e); err == nil && got != x {
					t.Fatalf("%q escapes to %q, which unescapes to %q", x, e, got)
				}
			}
			inside(t, MboxPath(c, ".mbox.zst"))
			if md := MaildirPath(c); md != "" {
				inside(t, md)
				if got, err := ParseMaildirPath(md); err == nil && !slices.Equal(got, c) {
					t.Fatalf("ParseMaildirPath(MaildirPath(%q)) = %q", c, got)
				}
			}
		}
		if len(ca) == len(cb) && EscapeComponent(ca[0]) == EscapeComponent(cb[0]) && ca[0] != cb[0] {
			t.Fatalf("%q and %q both escape to %q", ca[0], cb[0], EscapeComponent(ca[0]))
		}
		pa, pb := MboxPath(ca, ".mbox.zst"), MboxPath(cb, ".mbox.zst")
		if pa == pb {
			t.Fatalf("%q and %q share the mbox file %q", ca, cb, pa)
		}
		if strings.HasPrefix(pb, pa+"/") || strings.HasPrefix(pa, pb+"/") {
			t.Fatalf("the file of one of %q and %q is a directory of the other: %q, %q", ca, cb, pa, pb)
		}
		if ma, mb := MaildirPath(ca), MaildirPath(cb); ma == mb {
			t.Fatalf("%q and %q share the Maildir++ folder %q", ca, cb, ma)
		}
	})
}
