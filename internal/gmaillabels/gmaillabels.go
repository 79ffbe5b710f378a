// Package gmaillabels holds what restore and export both do with Gmail
// labels (issue 13): which labels are system ones, the flags they stand
// for, the folder a label is shown as on a server that is not Gmail, and
// the IMAP keyword a label becomes.
//
// Labels are named as X-GM-LABELS names them (archive/catalog stores them
// so): system labels with their backslash (\Inbox, \Sent, \Draft,
// \Starred, \Important), user labels by their UTF-8 name, '/' between
// levels ("Work/2014").
package gmaillabels

import (
	"fmt"
	"strconv"
	"strings"
)

// Gmail's system labels.
const (
	Inbox     = `\Inbox`
	Sent      = `\Sent`
	Draft     = `\Draft`
	Starred   = `\Starred`
	Important = `\Important`
)

// Modes: what becomes of labels where the destination is not Gmail.
const (
	ModeFolders  = "folders"  // a copy of the message in a folder per label
	ModeKeywords = "keywords" // each message once, its labels as keywords
	ModeNone     = "none"     // labels ignored
)

// ErrMode marks a mode that is none of the modes.
var ErrMode = fmt.Errorf("labels mode must be %q, %q or %q", ModeFolders, ModeKeywords, ModeNone)

// CheckMode validates a mode ("" is ModeFolders).
func CheckMode(mode string) error {
	switch mode {
	case "", ModeFolders, ModeKeywords, ModeNone:
		return nil
	}
	return fmt.Errorf("%w, not %q", ErrMode, mode)
}

// IsSystem reports whether l is a system label (`\Inbox`, ...).
func IsSystem(l string) bool { return strings.HasPrefix(l, `\`) }

// Has reports whether labels holds l (a system label in any case).
func Has(labels []string, l string) bool {
	for _, x := range labels {
		if x == l || IsSystem(l) && strings.EqualFold(x, l) {
			return true
		}
	}
	return false
}

// HasUser reports whether labels holds a user label.
func HasUser(labels []string) bool {
	for _, l := range labels {
		if !IsSystem(l) {
			return true
		}
	}
	return false
}

// withFlag adds fl to flags unless there (in a new slice).
func withFlag(flags []string, fl string) []string {
	for _, f := range flags {
		if strings.EqualFold(f, fl) {
			return flags
		}
	}
	return append(flags[:len(flags):len(flags)], fl)
}

// Flags adds to flags the system flags labels stand for: \Flagged for
// \Starred, \Draft for \Draft.
func Flags(flags, labels []string) []string {
	if Has(labels, Starred) {
		flags = withFlag(flags, `\Flagged`)
	}
	if Has(labels, Draft) {
		flags = withFlag(flags, `\Draft`)
	}
	return flags
}

// WithKeywords is Flags plus every label as its Keyword.
func WithKeywords(flags, labels []string) []string {
	flags = Flags(flags, labels)
	for _, l := range labels {
		flags = withFlag(flags, Keyword(l))
	}
	return flags
}

// Folder is the folder a label is shown as on a server that is not Gmail
// (ModeFolders), named with '/' between levels, and its special-use
// attribute: \Inbox is INBOX, \Sent "[Gmail]/Sent Mail" (\Sent), \Draft
// "[Gmail]/Drafts" (\Drafts), a user label its name. \Starred (the
// \Flagged flag instead) and \Important (Gmail's classifier puts it on a
// large share of the mail: a copy of all of that is no use elsewhere)
// have none: ok is false.
func Folder(l string) (name, specialUse string, ok bool) {
	switch {
	case strings.EqualFold(l, Inbox):
		return "INBOX", "", true
	case strings.EqualFold(l, Sent):
		return "[Gmail]/Sent Mail", `\Sent`, true
	case strings.EqualFold(l, Draft):
		return "[Gmail]/Drafts", `\Drafts`, true
	case IsSystem(l) || l == "":
		return "", "", false
	}
	return l, "", true
}

// DrawnFrom reports whether the messages of a folder with special-use
// attribute su are shown in label folders: every folder but Spam (\Junk)
// and Trash, whose messages Gmail shows under no label.
func DrawnFrom(su string) bool {
	su = strings.ToLower(su)
	return su != `\junk` && su != `\trash`
}

// KeywordPrefix starts every keyword Keyword makes.
const KeywordPrefix = "$label-"

// Keyword is the IMAP keyword (an atom) for a label: "$label-" and the
// label's UTF-8 bytes, each byte that is not an atom character (RFC 3501:
// a control, space, ( ) { % * " \ ]), not ASCII, or '+' written "+XX" in
// upper-case hex. "Work/2014" is $label-Work/2014, "Reçus 2014"
// $label-Re+C3+A7us+202014, \Inbox $label-+5CInbox. ParseKeyword reverses
// it.
func Keyword(label string) string {
	var sb strings.Builder
	sb.WriteString(KeywordPrefix)
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c <= ' ' || c >= 0x7f || c == '+' || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			fmt.Fprintf(&sb, "+%02X", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// ParseKeyword returns the label a Keyword keyword stands for (its
// prefix in any case, as some servers fold keywords), or false.
func ParseKeyword(kw string) (string, bool) {
	if len(kw) < len(KeywordPrefix) || !strings.EqualFold(kw[:len(KeywordPrefix)], KeywordPrefix) {
		return "", false
	}
	s := kw[len(KeywordPrefix):]
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(v))
		i += 2
	}
	if len(b) == 0 {
		return "", false
	}
	return string(b), true
}
