// Package glob matches folder names against --folder/--exclude patterns.
// A pattern is matched against the folder's name written with '/' between
// hierarchy levels: '*' matches any run of characters, '/' included (so
// "Work/*" selects every folder below Work), '?' matches one character.
// INBOX matches case-insensitively, as IMAP says it must.
package glob

import (
	"regexp"
	"strings"
)

// Set is a compiled include/exclude selection.
type Set struct {
	include, exclude []*regexp.Regexp
}

// New compiles include and exclude patterns. No include pattern means
// every folder.
func New(include, exclude []string) *Set {
	s := &Set{}
	for _, p := range include {
		s.include = append(s.include, compile(p))
	}
	for _, p := range exclude {
		s.exclude = append(s.exclude, compile(p))
	}
	return s
}

func compile(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Match reports whether the folder (its components joined by '/') is selected.
func (s *Set) Match(name string) bool {
	cands := []string{name}
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") && (len(name) == 5 || name[5] == '/') {
		cands = append(cands, "INBOX"+name[5:], "inbox"+name[5:], "Inbox"+name[5:])
	}
	match := func(rs []*regexp.Regexp) bool {
		for _, r := range rs {
			for _, c := range cands {
				if r.MatchString(c) {
					return true
				}
			}
		}
		return false
	}
	if len(s.include) > 0 && !match(s.include) {
		return false
	}
	return !match(s.exclude)
}
