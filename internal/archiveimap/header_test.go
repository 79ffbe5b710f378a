package archiveimap

import (
	"bytes"
	"reflect"
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
