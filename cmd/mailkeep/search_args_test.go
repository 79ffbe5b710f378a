package main

import (
	"io"
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	fs := newFlagSet("search", io.Discard)
	fs.String("archive", "", "")
	fs.Bool("json", false, "")
	fs.Int("limit", 50, "")
	for _, tt := range []struct {
		in          []string
		flags, rest []string
	}{
		{[]string{"--archive", "d", "-from:bob", "x"}, []string{"--archive", "d"}, []string{"-from:bob", "x"}},
		{[]string{"-has:attachment", "--json", "kettle", "--limit=3"}, []string{"--json", "--limit=3"}, []string{"-has:attachment", "kettle"}},
		{[]string{"a", "--limit", "7", "-b"}, []string{"--limit", "7"}, []string{"a", "-b"}},
		{[]string{"--json", "--", "--limit", "x"}, []string{"--json"}, []string{"--limit", "x"}},
		{[]string{"-", "-json"}, []string{"-json"}, []string{"-"}},
		{[]string{"--help"}, []string{"--help"}, nil},
		{[]string{"invoice", "-h"}, []string{"-h"}, []string{"invoice"}},
	} {
		f, r := splitArgs(fs, tt.in)
		if !reflect.DeepEqual(f, tt.flags) || !reflect.DeepEqual(r, tt.rest) {
			t.Errorf("%q: flags %q rest %q, want %q %q", tt.in, f, r, tt.flags, tt.rest)
		}
	}
}

func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":                 "INBOX",
		"Archiv/Größe":          "Archiv/Größe",
		"Work/Größe & \"more\"": `'Work/Größe & "more"'`,
		"it's":                  `'it'\''s'`,
		"":                      "''",
		"a b":                   "'a b'",
		"$x":                    "'$x'",
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %s, want %s", in, got, want)
		}
	}
}
