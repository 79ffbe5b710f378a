package archiveimap

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailkeep/mailkeep/internal/imaptest"
)

func TestCleanHeader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Subject: a\r\n\r\n", "Subject: a\r\n\r\n"},
		{"From sender@example.org Sat Jan  3 01:05:34 1996\r\nSubject: a\r\n\r\n", "Subject: a\r\n\r\n"},
		{"Subject: a\r\n folded\r\nX: y\n\n", "Subject: a\r\n folded\r\nX: y\n\n"},
		{"not a field\nSubject: a\n", "Subject: a\n"},
		{"Bad Name: x\r\n:empty\r\nOk: 1", "Ok: 1"},
		{"", ""},
	} {
		if got := string(cleanHeader([]byte(tc.in))); got != tc.want {
			t.Errorf("cleanHeader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if h := parseHeader([]byte("From x\r\nSubject: hello\r\n\r\n")); h.Get("Subject") != "hello" {
		t.Errorf("parseHeader: Subject %q", h.Get("Subject"))
	}
}

// FuzzCleanHeader: cleaning never adds bytes, keeps whole lines in order,
// and what it keeps parses.
func FuzzCleanHeader(f *testing.F) {
	f.Add([]byte("From a b\r\nSubject: x\r\n y\r\n\r\n"))
	f.Add([]byte("x\n:\n \n\t\nA:\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := cleanHeader(raw)
		if len(out) > len(raw) {
			t.Fatalf("cleanHeader grew %q to %q", raw, out)
		}
		rest := raw
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			i := bytes.Index(rest, line)
			if i < 0 {
				t.Fatalf("line %q of %q not in order in %q", line, out, raw)
			}
			rest = rest[i+len(line):]
		}
		parseHeader(raw)
	})
}

// TestBodyStructureMatchesImapserver: the streaming BODYSTRUCTURE equals
// imapserver's (which holds parts) on the shared corpus and nested cases.
func TestBodyStructureMatchesImapserver(t *testing.T) {
	msgs := [][]byte{
		[]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Language: en, de\r\n\r\nhi\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=x.eml\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\na\r\n--c\r\nContent-Type: text/html\r\n\r\n<p>b</p>\r\n--c--\r\n\r\n--b--\r\n"),
		[]byte("Subject: no body"),
	}
	for _, m := range imaptest.Corpus() {
		msgs = append(msgs, m.Body)
	}
	for _, m := range msgs {
		want := imapserver.ExtractBodyStructure(bytes.NewReader(m))
		got := bodyStructure(bytes.NewReader(m))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.60q: got %+v, want %+v", m, got, want)
		}
	}
}

func TestReadHeaderBound(t *testing.T) {
	r := &msgReader{s: &Server{cfg: Config{MaxHeader: 100}}}
	for _, tc := range []struct {
		msg, kept string
		n         int64
		trunc     bool
	}{
		{"Subject: x\r\n\r\nbody", "Subject: x\r\n\r\n", 14, false},
		{"Subject: x\n\nbody\n", "Subject: x\n\n", 12, false},
		{"Subject: no body", "Subject: no body", 16, false},
		// A long line read in pieces: the blank line after it still ends
		// the header, and only whole lines within the bound are kept.
		{"Subject: x\r\nX-Long: " + strings.Repeat("a", 10000) + "\r\nY: 1\r\n\r\nbody", "Subject: x\r\n", 12 + 8 + 10000 + 2 + 6 + 2, true},
		{"X: " + strings.Repeat("\r\n", 1) + strings.Repeat("b", 4093) + "\r\n\r\nbody", "X: \r\n", 5 + 4093 + 2 + 2, true},
	} {
		kept, n, trunc, err := r.readHeader(bufio.NewReader(strings.NewReader(tc.msg)))
		if err != nil || string(kept) != tc.kept || n != tc.n || trunc != tc.trunc {
			t.Errorf("readHeader(%.40q): %.40q %d %v %v, want %.40q %d %v", tc.msg, kept, n, trunc, err, tc.kept, tc.n, tc.trunc)
		}
	}
}
