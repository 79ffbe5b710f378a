package gmaillabels

import (
	"slices"
	"strings"
	"testing"
)

// TestFlagsAndFolders: \Starred and \Draft are flags; each label's
// folder elsewhere than Gmail.
func TestFlagsAndFolders(t *testing.T) {
	if got := Flags([]string{`\Seen`, `\flagged`}, []string{`\starred`, `\Draft`, "Work"}); !slices.Equal(got, []string{`\Seen`, `\flagged`, `\Draft`}) {
		t.Errorf("Flags: %q", got)
	}
	if got := WithKeywords(nil, []string{"Work", `\Inbox`}); !slices.Equal(got, []string{"$label-Work", "$label-+5CInbox"}) {
		t.Errorf("WithKeywords: %q", got)
	}
	for _, tc := range []struct{ label, name, su string }{
		{`\Inbox`, "INBOX", ""}, {`\Sent`, "[Gmail]/Sent Mail", `\Sent`}, {`\Draft`, "[Gmail]/Drafts", `\Drafts`},
		{`\Starred`, "", ""}, {`\Important`, "", ""}, {"Work/2014", "Work/2014", ""},
	} {
		name, su, ok := Folder(tc.label)
		if name != tc.name || su != tc.su || ok != (tc.name != "") {
			t.Errorf("Folder(%q) = %q %q %v", tc.label, name, su, ok)
		}
	}
	if DrawnFrom(`\Junk`) || DrawnFrom(`\trash`) || !DrawnFrom(`\All`) || !DrawnFrom("") {
		t.Error("DrawnFrom")
	}
}

func FuzzKeyword(f *testing.F) {
	for _, s := range []string{"Work/2014", "Reçus 2014", `\Inbox`, "+2B", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		kw := Keyword(label)
		for i := 0; i < len(kw); i++ {
			if c := kw[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
				t.Fatalf("LabelKeyword(%q) = %q: not an atom", label, kw)
			}
		}
		back, ok := ParseKeyword(kw)
		if label != "" && (!ok || back != label) {
			t.Fatalf("round trip of %q: %q %q %v", label, kw, back, ok)
		}
		ParseKeyword(label) // no panic on anything
	})
}
