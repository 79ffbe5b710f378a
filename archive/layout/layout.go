// Package layout maps IMAP folder names to paths inside an archive, safely
// and reversibly.
//
// A folder name is split at its hierarchy delimiter into components, and
// each component is escaped into one file-name element:
//
//   - '%', '/', '\', NUL and the other control characters (below 0x20, and
//     0x7f), each byte of invalid UTF-8, and a leading '.' or '~' become
//     %XX, two upper-case hex digits of the byte;
//   - the empty component becomes "%" (a lone '%' never results otherwise,
//     since a literal '%' is always escaped);
//   - everything else, letters in any script, spaces, '&', quotes, stays as
//     it is, so people can read the archive's names.
//
// Escaping is injective: '%' itself is escaped, so an escaped name decodes
// to exactly one component, and a component that merely looks escaped
// ("%41") stays apart from the one it seems to encode ("A"): it becomes
// "%2541". The result is never empty, ".", ".." or a name with a '/' or
// NUL, so no path leaves the archive directory.
//
// Linux rejects file-name elements over 255 bytes. An element whose escaped
// form would exceed 200 bytes is cut (never inside a UTF-8 sequence or a %XX
// escape) and given the suffix "%~" plus 16 hex digits of the SHA-256 of the
// unescaped component. "%~" cannot occur in an element that was not
// shortened ('~' is no hex digit), so a shortened element cannot equal an
// unshortened one, and two shortened ones differ unless their 64-bit hashes
// collide. A shortened element cannot be reversed: the catalog keeps every
// folder's full name, and UnescapeComponent and ParseMaildirPath return an
// error wrapping ErrShortened.
//
// The mapping is case-sensitive (apart from INBOX, which RFC 3501 makes
// case-insensitive): on a case-insensitive file system "a" and "A" collide.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxElem bounds an escaped component. Linux allows 255 bytes per
// file-name element; the rest is room for an mbox extension.
const maxElem = 200

// maxMaildirElem bounds a whole Maildir++ folder directory name, which
// holds all components of a folder in one element.
const maxMaildirElem = 250

// ErrShortened is wrapped by the errors of UnescapeComponent and
// ParseMaildirPath for a name that was cut to fit the file system: such a
// name cannot be reversed, and the catalog holds the folder's full name.
var ErrShortened = errors.New("layout: name was shortened to fit the file system; the catalog holds the full name")

// Components splits an IMAP folder name at its hierarchy delimiter delim
// (0: the server has no hierarchy, and the name is one component). A first
// component spelled INBOX in any case becomes "INBOX" (RFC 3501, 5.1).
func Components(name string, delim rune) []string {
	var c []string
	if delim == 0 {
		c = []string{name}
	} else {
		c = strings.Split(name, string(delim))
	}
	if strings.EqualFold(c[0], "INBOX") {
		c[0] = "INBOX"
	}
	return c
}

// Join is the inverse of Components: it joins components with delim (0:
// no delimiter, for a name of one component).
func Join(components []string, delim rune) string {
	if delim == 0 {
		return strings.Join(components, "")
	}
	return strings.Join(components, string(delim))
}

// escape escapes c as the package doc describes; escapeAlso reports
// whether the rune r at byte offset i must be escaped as well.
func escape(c string, escapeAlso func(i int, r rune) bool) string {
	if c == "" {
		return "%"
	}
	var b strings.Builder
	b.Grow(len(c))
	for i := 0; i < len(c); {
		r, size := utf8.DecodeRuneInString(c[i:])
		invalid := r == utf8.RuneError && size <= 1
		if invalid || r < 0x20 || r == 0x7f || r == '%' || r == '/' || r == '\\' ||
			(i == 0 && (r == '.' || r == '~')) || (escapeAlso != nil && escapeAlso(i, r)) {
			for j := range size {
				fmt.Fprintf(&b, "%%%02X", c[i+j])
			}
		} else {
			b.WriteString(c[i : i+size])
		}
		i += size
	}
	s := b.String()
	if len(s) > maxElem {
		s = shorten(s, maxElem-18, c)
	}
	return s
}

// shorten cuts the escaped name s to at most n bytes, neither inside a
// UTF-8 sequence nor inside a %XX escape, and appends "%~" and a hash of
// full, the name before escaping.
func shorten(s string, n int, full string) string {
	cut := n
	for cut > 0 && (!utf8.RuneStart(s[cut]) || s[cut-1] == '%' || (cut > 1 && s[cut-2] == '%')) {
		cut--
	}
	sum := sha256.Sum256([]byte(full))
	return s[:cut] + "%~" + hex.EncodeToString(sum[:8])
}

// EscapeComponent makes one folder-name component a safe file-name
// element, by the rule in the package doc.
func EscapeComponent(c string) string { return escape(c, nil) }

// UnescapeComponent reverses EscapeComponent, and the escaping of
// components in MboxPath and MaildirPath. It fails for a malformed %
// escape and, wrapping ErrShortened, for a shortened element.
func UnescapeComponent(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	if strings.Contains(s, "%~") {
		return "", fmt.Errorf("layout: %q: %w", s, ErrShortened)
	}
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("layout: %q: truncated %% escape at byte %d", s, i)
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("layout: %q: bad %% escape at byte %d", s, i)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}

// mboxExts are the extensions an archive's mbox files can have.
var mboxExts = []string{".mbox.zst", ".mbox.gz", ".mbox"}

// MboxPath returns the slash-separated relative path of a folder's mbox
// file: one directory per parent component and, for the last component, a
// file named after it plus ext, which must start with '.' ("Work/Projects"
// with ".mbox.zst" -> "Work/Projects.mbox.zst"; the children of a folder
// "Work" live in the directory "Work" beside "Work.mbox.zst").
//
// Components are escaped as by EscapeComponent, and besides, in a component
// that ends in ext or a known mbox extension (".mbox.zst", ".mbox.gz",
// ".mbox"), its last '.' is escaped as %2E. So an escaped component never
// ends in ext, a directory never has the name of a file, and distinct
// folders never share a path: folder "b" is in "b.mbox.zst", folder
// "b.mbox.zst" in "b.mbox%2Ezst.mbox.zst" and its child "c" in
// "b.mbox%2Ezst/c.mbox.zst".
//
// A deep hierarchy of long names can exceed Linux's PATH_MAX (4096 bytes).
func MboxPath(components []string, ext string) string {
	parts := make([]string, len(components))
	for i, c := range components {
		dot := -1
		if ext != "" && strings.HasSuffix(c, ext) {
			dot = strings.LastIndexByte(c, '.')
		}
		for _, x := range mboxExts {
			if dot < 0 && strings.HasSuffix(c, x) {
				dot = strings.LastIndexByte(c, '.')
			}
		}
		parts[i] = escape(c, func(i int, _ rune) bool { return i == dot })
	}
	if len(parts) == 0 {
		parts = []string{escape("", nil)}
	}
	parts[len(parts)-1] += ext
	return strings.Join(parts, "/")
}

// MaildirPath returns a folder's Maildir++ directory relative to the
// Maildir root: "" for INBOX (the root itself), else "." and the escaped
// components joined by '.', where a '.' inside a component is escaped as
// %2E (["Work", "Projects"] -> ".Work.Projects", ["INBOX", "x"] ->
// ".INBOX.x", ["v1.2"] -> ".v1%2E2"). A directory name longer than 250 bytes
// is cut to 200 and given the suffix "%~" and a hash, like a long
// component.
func MaildirPath(components []string) string {
	if len(components) == 1 && components[0] == "INBOX" {
		return ""
	}
	parts := make([]string, len(components))
	for i, c := range components {
		parts[i] = escape(c, func(_ int, r rune) bool { return r == '.' })
	}
	s := "." + strings.Join(parts, ".")
	if len(s) > maxMaildirElem {
		// s itself identifies the folder: escaping is injective and
		// leaves no '.' inside a component.
		s = shorten(s, maxElem, s)
	}
	return s
}

// ParseMaildirPath reverses MaildirPath. It accepts only the names
// MaildirPath returns, and fails, wrapping ErrShortened, for one that was
// shortened.
func ParseMaildirPath(rel string) ([]string, error) {
	if rel == "" {
		return []string{"INBOX"}, nil
	}
	if !strings.HasPrefix(rel, ".") {
		return nil, fmt.Errorf("layout: %q is not a Maildir++ folder directory", rel)
	}
	if strings.Contains(rel, "%~") {
		return nil, fmt.Errorf("layout: Maildir++ folder %q: %w", rel, ErrShortened)
	}
	var out []string
	for p := range strings.SplitSeq(rel[1:], ".") {
		c, err := UnescapeComponent(p)
		if err != nil {
			return nil, fmt.Errorf("layout: Maildir++ folder %q: %w", rel, err)
		}
		out = append(out, c)
	}
	if MaildirPath(out) != rel {
		return nil, fmt.Errorf("layout: %q is not a Maildir++ folder directory mailkeep writes", rel)
	}
	return out, nil
}
