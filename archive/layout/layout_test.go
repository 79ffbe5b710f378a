package layout

import (
	"path/filepath"
	"strings"
	"testing"
)

var nasty = []string{
	"INBOX", "inbox/Sub", "Archiv/Größe", "日本語", "with space", " lead", "trail ", "a&b", "&-", `quo"te`, `back\slash`,
	"..", ".", "../../etc", "a/../../b", ".hidden", "~home", "dots.in.name", "trailing.", "%41", "%", "",
	"nul\x00byte", "cr\r\nlf", "bad\xffutf8", "x.mbox", "x.mbox.zst", "x.mbox.gz", "y.mbox.zst/z",
	strings.Repeat("long", 100), strings.Repeat("ö", 200),
	strings.Repeat("deep/", 30) + "end",
}

func inside(t *testing.T, rel string) {
	t.Helper()
	root := "/archive"
	p := filepath.Clean(filepath.Join(root, rel))
	if !strings.HasPrefix(p, root+"/") || strings.ContainsRune(rel, 0) || filepath.IsAbs(rel) {
		t.Errorf("%q escapes the archive (%q)", rel, p)
	}
	for _, el := range strings.Split(rel, "/") {
		if len(el) > 255 || el == "" || el == "." || el == ".." {
			t.Errorf("%q: bad element %q", rel, el)
		}
	}
}

func TestNoEscapeNoCollision(t *testing.T) {
	files := map[string]string{}
	dirs := map[string]string{}
	mds := map[string]string{}
	for _, name := range nasty {
		for _, delim := range []rune{'/', '.', 0} {
			comps := Components(name, delim)
			if Join(comps, delim) != name && !strings.HasPrefix(strings.ToLower(name), "inbox") {
				t.Errorf("Join(Components(%q)) = %q", name, Join(comps, delim))
			}
			key := Join(comps, '\x01') // the folder's identity: its components
			mp := MboxPath(comps, ".mbox.zst")
			inside(t, mp)
			if other, ok := files[mp]; ok && other != key {
				t.Errorf("mbox file collision: %q and %q -> %q", other, key, mp)
			}
			files[mp] = key
			if d := filepath.Dir(mp); d != "." {
				dirs[d] = key
			}
			md := MaildirPath(comps)
			if md != "" {
				inside(t, md)
				if strings.Contains(md, "/") {
					t.Errorf("maildir path %q has a slash", md)
				}
			}
			if other, ok := mds[md]; ok && other != key {
				t.Errorf("maildir collision: %q and %q -> %q", other, key, md)
			}
			mds[md] = key
			if got, err := ParseMaildirPath(md); err == nil && Join(got, '\x01') != Join(comps, '\x01') {
				t.Errorf("ParseMaildirPath(%q) = %q, want %q", md, got, comps)
			}
		}
	}
	for f, k := range files {
		if d, ok := dirs[f]; ok {
			t.Errorf("file of %q is the directory of %q: %q", k, d, f)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, c := range nasty {
		e := EscapeComponent(c)
		got, err := UnescapeComponent(e)
		if len(e) > maxElem {
			t.Errorf("%q escaped to %d bytes", c, len(e))
		}
		if strings.Contains(e, "%~") {
			if err == nil {
				t.Errorf("shortened %q unescaped without error", c)
			}
			continue
		}
		if err != nil || got != c {
			t.Errorf("round trip of %q: %q, %v", c, got, err)
		}
	}
}

func FuzzNoCollision(f *testing.F) {
	f.Add("a", "b")
	f.Add("x.mbox.zst", "x")
	f.Add("%2E", ".")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == b {
			return
		}
		ea, eb := EscapeComponent(a), EscapeComponent(b)
		if ea == eb {
			t.Fatalf("%q and %q both escape to %q", a, b, ea)
		}
		if ea == "." || ea == ".." || strings.ContainsAny(ea, "/\x00") {
			t.Fatalf("%q escapes to unsafe %q", a, ea)
		}
		pa, pb := MboxPath([]string{a}, ".mbox.zst"), MboxPath([]string{b, "c"}, ".mbox.zst")
		if filepath.Dir(pb) == pa {
			t.Fatalf("file of %q is the directory of %q/c", a, b)
		}
	})
}
