// Package layout maps IMAP folder names to paths inside an archive, safely
// and reversibly.
//
// A folder name is split at its hierarchy delimiter into components. Each
// component is escaped into one file-name element: '%', '/', '\', NUL and
// other control characters, invalid UTF-8 bytes, and a leading '.' or '~'
// become %XX (upper-case hex); an empty component becomes "%". Ordinary
// letters in any script, spaces, '&' and quotes stay as they are. An
// element longer than 200 bytes is cut and given the suffix "%~" and 16 hex
// digits of the SHA-256 of the whole component; the catalog keeps the full
// name. Escaped elements can never be "." or "..", contain '/', or be empty,
// so no path leaves the archive directory.
package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxElem bounds an escaped file-name element (Linux allows 255 bytes; the
// mbox extension and Maildir++ prefix need room).
const maxElem = 200

// Components splits an IMAP name at delim (0: no hierarchy). A first
// component spelled INBOX in any case becomes "INBOX".
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

// Join is the inverse of Components.
func Join(components []string, delim rune) string {
	if delim == 0 {
		return strings.Join(components, "")
	}
	return strings.Join(components, string(delim))
}

func escape(c string, extra func(i int, r rune) bool) string {
	if c == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(c); {
		r, size := utf8.DecodeRuneInString(c[i:])
		bad := r == utf8.RuneError && size <= 1
		switch {
		case bad || r < 0x20 || r == 0x7f || r == '%' || r == '/' || r == '\\' ||
			(i == 0 && (r == '.' || r == '~')) || (extra != nil && extra(i, r)):
			for j := 0; j < size; j++ {
				fmt.Fprintf(&b, "%%%02X", c[i+j])
			}
		default:
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

// shorten cuts s to at most n bytes, neither inside a UTF-8 sequence nor
// inside a %XX escape, and marks it with a hash of full.
func shorten(s string, n int, full string) string {
	cut := n
	for cut > 0 && (!utf8.RuneStart(s[cut]) || s[cut-1] == '%' || (cut > 1 && s[cut-2] == '%')) {
		cut--
	}
	sum := sha256.Sum256([]byte(full))
	return s[:cut] + "%~" + hex.EncodeToString(sum[:8])
}

// EscapeComponent makes one component a safe file-name element.
func EscapeComponent(c string) string { return escape(c, nil) }

// ErrShortened is returned when unescaping a name that was shortened.
var ErrShortened = errors.New("layout: name was shortened; the catalog holds the full name")

// UnescapeComponent reverses EscapeComponent.
func UnescapeComponent(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	if strings.Contains(s, "%~") {
		return "", fmt.Errorf("%q: %w", s, ErrShortened)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("layout: bad escape in %q", s)
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("layout: bad escape in %q", s)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}

// mboxExts are the extensions mbox files can have. A component ending in
// one gets that '.' escaped, so that no folder's child directory can have
// the name of another folder's file.
var mboxExts = []string{".mbox.zst", ".mbox.gz", ".mbox"}

// MboxPath returns the relative path of a folder's mbox file: one
// directory per parent component, the file named after the last one plus
// ext ("Work/Projects" -> "Work/Projects.mbox.zst").
func MboxPath(components []string, ext string) string {
	parts := make([]string, len(components))
	for i, c := range components {
		dot := -1
		for _, x := range mboxExts {
			if strings.HasSuffix(c, x) {
				dot = strings.LastIndexByte(c, '.')
				break
			}
		}
		parts[i] = escape(c, func(i int, r rune) bool { return i == dot })
	}
	parts[len(parts)-1] += ext
	return strings.Join(parts, "/")
}

// MaildirPath returns a folder's Maildir++ directory relative to the
// Maildir root: "" for INBOX, else "." + components joined by '.' (a '.'
// inside a component is escaped as %2E).
func MaildirPath(components []string) string {
	if len(components) == 1 && components[0] == "INBOX" {
		return ""
	}
	parts := make([]string, len(components))
	for i, c := range components {
		parts[i] = escape(c, func(_ int, r rune) bool { return r == '.' })
	}
	s := "." + strings.Join(parts, ".")
	if len(s) > 250 {
		s = shorten(s, 200, strings.Join(components, "\x00"))
	}
	return s
}

// ParseMaildirPath reverses MaildirPath.
func ParseMaildirPath(rel string) ([]string, error) {
	if rel == "" {
		return []string{"INBOX"}, nil
	}
	if !strings.HasPrefix(rel, ".") {
		return nil, fmt.Errorf("layout: %q is not a Maildir++ folder", rel)
	}
	var out []string
	for _, p := range strings.Split(rel[1:], ".") {
		c, err := UnescapeComponent(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
