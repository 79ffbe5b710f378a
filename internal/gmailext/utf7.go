package gmailext

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrUTF7 is wrapped by the error for a label that is not valid modified
// UTF-7.
var ErrUTF7 = errors.New("invalid modified UTF-7")

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// EncodeUTF7 encodes a UTF-8 label or mailbox name in modified UTF-7
// (RFC 3501 5.1.3), as Gmail sends and expects label names (Gmail IMAP
// extensions: "labels ... are encoded in modified UTF-7").
func EncodeUTF7(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= 0x7e {
			sb.WriteByte(c)
			if c == '&' {
				sb.WriteByte('-')
			}
			i++
			continue
		}
		start := i
		for i < len(s) && (s[i] < 0x20 || s[i] > 0x7e) {
			i++
		}
		var u []byte
		for _, r := range s[start:i] {
			for _, x := range utf16.Encode([]rune{r}) {
				u = append(u, byte(x>>8), byte(x))
			}
		}
		sb.WriteByte('&')
		sb.WriteString(b64.EncodeToString(u))
		sb.WriteByte('-')
	}
	return sb.String()
}

// DecodeUTF7 decodes a modified UTF-7 name into UTF-8.
func DecodeUTF7(s string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrUTF7
		}
		if c != '&' {
			sb.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", ErrUTF7
		}
		enc := s[i+1 : i+1+j]
		i += j + 2
		if enc == "" {
			sb.WriteByte('&')
			continue
		}
		u, err := b64.DecodeString(enc)
		if err != nil || len(u)%2 != 0 {
			return "", ErrUTF7
		}
		units := make([]uint16, len(u)/2)
		for k := range units {
			units[k] = uint16(u[2*k])<<8 | uint16(u[2*k+1])
		}
		for _, r := range utf16.Decode(units) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return "", ErrUTF7 // a surrogate half, or an ASCII char that should be direct
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), nil
}
