package gmailext

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/imapconn"
)

func TestParseFetch(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{
			"gmail doc example",
			`* 1 FETCH (X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 X-GM-LABELS (\Inbox \Sent Important "Muy Importante") UID 4)`,
			Message{Seq: 1, UID: 4, MsgID: 1278455344230334865, ThrID: 1266894439832287888, Labels: []string{`\Inbox`, `\Sent`, "Important", "Muy Importante"}},
		},
		{
			"quoted system label, escapes, modified UTF-7, flags, modseq",
			`* 12 FETCH (UID 77 X-GM-MSGID 18446744073709551615 X-GM-THRID 1 X-GM-LABELS ("\\Important" "a \"b\" \\c" "Fran&AOc-ais" &AOk-t&AOk-) FLAGS (\Seen $Forwarded \*) MODSEQ (9007199254740993))`,
			Message{Seq: 12, UID: 77, MsgID: 1<<64 - 1, ThrID: 1, ModSeq: 9007199254740993,
				Labels: []string{`\Important`, `a "b" \c`, "Français", "été"},
				Flags:  []string{`\Seen`, "$Forwarded", `\*`}},
		},
		{
			"empty labels, literal label, skipped items",
			"* 3 FETCH (X-GM-LABELS () RFC822.SIZE 12 BODY[HEADER.FIELDS (FROM)]<0> {5}\r\nFrom: INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" ENVELOPE (NIL \"s\" ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL) UID 9)",
			Message{Seq: 3, UID: 9, Labels: []string{}},
		},
		{
			"literal label",
			"* 4 FETCH (UID 10 X-GM-LABELS ({3}\r\nx y \\Starred))",
			Message{Seq: 4, UID: 10, Labels: []string{"x y", `\Starred`}},
		},
		{
			"lower case item names, NIL labels",
			`* 5 fetch (uid 11 x-gm-labels NIL)`,
			Message{Seq: 5, UID: 11, Labels: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseFetch([]byte(tt.in))
			if err != nil || !ok {
				t.Fatalf("ParseFetch: ok=%v err=%v", ok, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseFetchErrors(t *testing.T) {
	bad := []string{
		`* 1 FETCH (UID 4`,
		`* 1 FETCH (UID x)`,
		`* 1 FETCH (X-GM-MSGID 18446744073709551616)`,
		`* 1 FETCH (X-GM-LABELS (\Inbox "unterminated))`,
		`* 1 FETCH (X-GM-LABELS ("&Jjo"))`,
		`* 1 FETCH (X-GM-LABELS ("&AGE-"))`, // 'a' must be sent directly
		"* 1 FETCH (X-GM-LABELS ({99}\r\nab))",
		`* 1 FETCH (UID 0)`,
		`* 0 FETCH (UID 1)`,
		`* 1 FETCH (UID 1) trailing`,
		`* 1 FETCH (MODSEQ 5)`,
		`* 1 FETCH (BODYSTRUCTURE ` + strings.Repeat("(", 100) + `)`,
	}
	for _, in := range bad {
		_, ok, err := ParseFetch([]byte(in))
		if !ok || !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseFetch(%q): ok=%v err=%v, want ErrSyntax", in, ok, err)
		}
	}
	for _, in := range []string{`* 3 EXISTS`, `* OK [THROTTLED] x`, `A1 OK done`, `* 1 EXPUNGE`} {
		if _, ok, err := ParseFetch([]byte(in)); ok || err != nil {
			t.Errorf("ParseFetch(%q): ok=%v err=%v, want not a FETCH", in, ok, err)
		}
	}
}

// TestUTF7 checks the codec against imapconn's independent encoder.
func TestUTF7(t *testing.T) {
	for _, s := range []string{"Inbox", "Français", "a&b", "日本語", "😀 emoji", "~peter/mail/台北/日本語", "&", ""} {
		enc := EncodeUTF7(s)
		if want := strings.Trim(imapconn.Mailbox(s), `"`); enc != want {
			t.Errorf("EncodeUTF7(%q) = %q, imapconn says %q", s, enc, want)
		}
		dec, err := DecodeUTF7(enc)
		if err != nil || dec != s {
			t.Errorf("DecodeUTF7(%q) = %q, %v; want %q", enc, dec, err, s)
		}
	}
	for _, bad := range []string{"&", "&Jjo", "&AGE-", "é", "&2D3-"} {
		if _, err := DecodeUTF7(bad); !errors.Is(err, ErrUTF7) {
			t.Errorf("DecodeUTF7(%q): err = %v, want ErrUTF7", bad, err)
		}
	}
}

func TestReadResponseBound(t *testing.T) {
	long := "* 1 FETCH (X-GM-LABELS (\"" + strings.Repeat("a", MaxResponse) + "\"))\r\n"
	if _, err := ReadResponse(bufio.NewReader(strings.NewReader(long))); !errors.Is(err, ErrTooLong) {
		t.Errorf("over-long line: err = %v, want ErrTooLong", err)
	}
	lit := "* 1 FETCH (X-GM-LABELS ({99999999}\r\n"
	if _, err := ReadResponse(bufio.NewReader(strings.NewReader(lit))); !errors.Is(err, ErrTooLong) {
		t.Errorf("over-long literal: err = %v, want ErrTooLong", err)
	}
	ok := "* 4 FETCH (UID 10 X-GM-LABELS ({3}\r\nx y \\Starred))\r\nA1 OK\r\n"
	r := bufio.NewReader(strings.NewReader(ok))
	got, err := ReadResponse(r)
	if err != nil || string(got) != "* 4 FETCH (UID 10 X-GM-LABELS ({3}\r\nx y \\Starred))" {
		t.Errorf("ReadResponse = %q, %v", got, err)
	}
}

func TestEncodeLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\Important`, `\Important`},
		{"Muy Importante", `"Muy Importante"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"Français", `"Fran&AOc-ais"`},
	}
	for _, tt := range tests {
		if got, err := EncodeLabel(tt.in); err != nil || got != tt.want {
			t.Errorf("EncodeLabel(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "a\r\nb", `\In box`, `\a\b`} {
		if _, err := EncodeLabel(bad); !errors.Is(err, ErrBadLabel) {
			t.Errorf("EncodeLabel(%q): err = %v, want ErrBadLabel", bad, err)
		}
	}
}

func FuzzParseFetch(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.txt")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok, err := ParseFetch(b)
		if !ok && err != nil {
			t.Fatalf("not a FETCH but an error: %v", err)
		}
		if err != nil {
			return
		}
		if ok && m.Seq == 0 {
			t.Fatalf("Seq 0 accepted")
		}
		// Labels that parsed re-encode and parse back the same.
		for _, l := range m.Labels {
			enc, err := EncodeLabel(l)
			if err != nil {
				continue
			}
			resp := "* 1 FETCH (X-GM-LABELS (" + enc + "))"
			m2, ok, err := ParseFetch([]byte(resp))
			if !ok || err != nil || len(m2.Labels) != 1 || m2.Labels[0] != l {
				t.Fatalf("label %q: encoded %q parsed back as %+v, %v", l, enc, m2.Labels, err)
			}
		}
		// ReadResponse on the same bytes never returns more than the bound.
		r, err := ReadResponse(bufio.NewReader(strings.NewReader(string(b) + "\r\n")))
		if err == nil && len(r) > MaxResponse {
			t.Fatalf("ReadResponse returned %d bytes", len(r))
		}
	})
}
