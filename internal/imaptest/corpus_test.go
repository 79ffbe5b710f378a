package imaptest_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/mailkeep/mailkeep/internal/imaptest"
)

func TestBigMessage(t *testing.T) {
	for _, n := range []int{0, 1, 2, 50, 219, 220, 221, 222, 300, 351, 352, 353, 1000, 12345, 1 << 20} {
		a, err := io.ReadAll(imaptest.BigMessage(n))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(a) != n {
			t.Errorf("n=%d: got %d bytes", n, len(a))
			continue
		}
		// Deterministic, also when read in odd chunk sizes.
		b, err := io.ReadAll(iotest.OneByteReader(imaptest.BigMessage(n)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("n=%d: second read differs (err %v)", n, err)
		}
		hdrEnd := bytes.Index(a, []byte("\r\n\r\n"))
		if hdrEnd < 0 {
			if n >= 300 {
				t.Errorf("n=%d: no header end", n)
			}
			continue
		}
		if !bytes.HasPrefix(a, []byte("From: Big <big@example.org>\r\n")) {
			t.Errorf("n=%d: bad start %q", n, a[:30])
		}
		if !bytes.HasSuffix(a, []byte("\r\n")) {
			t.Errorf("n=%d: does not end in CRLF: %q", n, a[len(a)-10:])
		}
		if bytes.Contains(bytes.ReplaceAll(a, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(a, []byte("\r\n"), nil), []byte("\r")) {
			t.Errorf("n=%d: bare CR or LF", n)
		}
		for i, line := range strings.Split(string(a), "\r\n") {
			if len(line) > 998 {
				t.Errorf("n=%d: line %d has %d bytes", n, i, len(line))
			}
		}
	}
	big, _ := io.ReadAll(imaptest.BigMessage(1 << 20))
	for _, want := range []string{"\r\nFrom line ", "\r\n>From line ", "\r\n.\r\n"} {
		if !bytes.Contains(big, []byte(want)) {
			t.Errorf("1 MiB message lacks %q", want)
		}
	}
	if !bytes.Contains(big, []byte("Subject: big message of 1048576 bytes\r\n")) {
		t.Error("subject does not name the size")
	}
}

// TestBigMessageStreams checks that a huge message is generated without
// being held: reading 200 MB must not allocate anywhere near that much.
func TestBigMessageStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 64 << 20
	allocs := testing.AllocsPerRun(1, func() {
		if k, err := io.Copy(io.Discard, imaptest.BigMessage(n)); err != nil || k != n {
			t.Fatalf("copied %d, %v", k, err)
		}
	})
	if allocs > 100 {
		t.Errorf("%v allocations for a %d byte message", allocs, n)
	}
}

func TestCorpus(t *testing.T) {
	a, b := imaptest.Corpus(), imaptest.Corpus()
	if len(a) != len(b) || len(a) < 15 {
		t.Fatalf("corpus sizes %d, %d", len(a), len(b))
	}
	names := map[string]bool{}
	for i, m := range a {
		if names[m.Name] {
			t.Errorf("duplicate name %q", m.Name)
		}
		names[m.Name] = true
		if !bytes.Equal(m.Body, b[i].Body) || !m.Date.Equal(b[i].Date) {
			t.Errorf("%s: not deterministic", m.Name)
		}
		if m.Date.IsZero() || m.Date.Nanosecond() != 0 {
			t.Errorf("%s: date %v must be set to whole seconds", m.Name, m.Date)
		}
		if bytes.IndexByte(m.Body, 0) >= 0 {
			t.Errorf("%s: contains NUL, which IMAP literals cannot carry", m.Name)
		}
	}
	byName := map[string][]byte{}
	for _, m := range a {
		byName[m.Name] = m.Body
	}
	checks := []struct {
		name string
		ok   func([]byte) bool
	}{
		{"plain-crlf", func(b []byte) bool {
			return bytes.Contains(b, []byte("Message-ID:")) && !bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n"))
		}},
		{"no-message-id", func(b []byte) bool {
			hdr, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			return !bytes.Contains(bytes.ToLower(hdr), []byte("message-id"))
		}},
		{"from-lines", func(b []byte) bool {
			return bytes.Contains(b, []byte("\r\nFrom the")) && bytes.Contains(b, []byte("\r\n>From ")) && bytes.Contains(b, []byte("\r\n>>From "))
		}},
		{"from-envelope-line", func(b []byte) bool { return bytes.HasPrefix(b, []byte("From sender@")) }},
		{"no-final-newline", func(b []byte) bool { return !bytes.HasSuffix(b, []byte("\n")) }},
		{"bare-lf", func(b []byte) bool { return !bytes.Contains(b, []byte("\r")) && bytes.Count(b, []byte("\n")) > 3 }},
		{"mixed-eol", func(b []byte) bool {
			return bytes.Contains(b, []byte("\r\n")) && bytes.Contains(b, []byte("line\nCRLF"))
		}},
		{"utf8-8bit", func(b []byte) bool { return utf8.Valid(b) && bytes.Contains(b, []byte("日本語")) }},
		{"latin1-8bit", func(b []byte) bool { return !utf8.Valid(b) && bytes.Contains(b, []byte("K\xf6ln")) }},
		{"long-lines", func(b []byte) bool { return bytes.Contains(b, []byte(strings.Repeat("y", 999))) }},
		{"multipart-base64", func(b []byte) bool { return bytes.Contains(b, []byte("Content-Transfer-Encoding: base64")) }},
		{"pop3-dots", func(b []byte) bool {
			return bytes.Contains(b, []byte("\r\n.\r\n")) && bytes.Contains(b, []byte("\r\n..\r\n"))
		}},
		{"large-300k", func(b []byte) bool { return len(b) == 300_000 }},
	}
	for _, c := range checks {
		b, ok := byName[c.name]
		if !ok {
			t.Errorf("corpus lacks %q", c.name)
			continue
		}
		if !c.ok(b) {
			t.Errorf("%s: does not have its defining property", c.name)
		}
	}
}

func TestNastyFolders(t *testing.T) {
	for _, d := range []rune{'/', '.'} {
		names := imaptest.NastyFolders(d)
		seen := map[string]bool{}
		deep := 0
		for _, n := range names {
			if seen[n] {
				t.Errorf("%c: duplicate %q", d, n)
			}
			seen[n] = true
			parts := strings.Split(n, string(d))
			for i := 1; i < len(parts); i++ {
				if p := strings.Join(parts[:i], string(d)); !seen[p] && p != "INBOX" {
					t.Errorf("%c: %q listed before its parent %q", d, n, p)
				}
			}
			deep = max(deep, len(parts))
			other := "./"
			other = strings.ReplaceAll(other, string(d), "")
			if strings.ContainsAny(n, other+"%*") {
				t.Errorf("%c: %q contains a forbidden character", d, n)
			}
			if !utf8.ValidString(n) {
				t.Errorf("%c: %q is not UTF-8", d, n)
			}
		}
		if deep < 8 {
			t.Errorf("%c: deepest folder has %d levels, want 8", d, deep)
		}
		for _, want := range []string{"日本語", "Archiv" + string(d) + "Größe", "&", "&-", `Back\slash`, `Quote "double"`, "With Space"} {
			if !seen[want] {
				t.Errorf("%c: lacks %q", d, want)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	d1 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	d2 := d1.In(time.FixedZone("", 3600))
	m := func(uid uint32, sha string, date time.Time, flags ...string) imaptest.Msg {
		return imaptest.Msg{UID: uid, SHA256: sha, InternalDate: date, Flags: flags}
	}
	prefix := func(s string) string { return "INBOX." + s }
	tests := []struct {
		name    string
		a, b    map[string][]imaptest.Msg
		mapName func(string) string
		want    []string // substrings, one per line; nil means equal
	}{
		{"empty", nil, nil, nil, nil},
		{"equal ignoring UIDs, order, zone and flag case",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1, `\Seen`, "$Label"), m(2, "y", d1)}},
			map[string][]imaptest.Msg{"A": {m(7, "y", d1), m(5, "x", d2, "$label", `\Seen`)}},
			nil, nil},
		{"mapped names",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}, "B": {}},
			map[string][]imaptest.Msg{"INBOX.A": {m(1, "x", d1)}, "INBOX.B": {}},
			prefix, nil},
		{"missing folder",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}, "B": {}},
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}},
			nil, []string{`folder "B" (from "B") missing (0 messages)`}},
		{"unexpected folder",
			map[string][]imaptest.Msg{"A": {}},
			map[string][]imaptest.Msg{"A": {}, "C": {m(1, "x", d1)}},
			nil, []string{`folder "C" unexpected (1 messages)`}},
		{"different body",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}},
			map[string][]imaptest.Msg{"A": {m(1, "z", d1)}},
			nil, []string{`folder "A": 1 missing: sha256=x`, `folder "A": 1 unexpected: sha256=z`}},
		{"different flags",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1, `\Seen`)}},
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}},
			nil, []string{`missing: sha256=x flags=[\seen]`, `unexpected: sha256=x flags=[]`}},
		{"different date",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1)}},
			map[string][]imaptest.Msg{"A": {m(1, "x", d1.Add(time.Second))}},
			nil, []string{`missing: sha256=x flags=[] date=2020-01-01T00:00:00Z`, `unexpected: sha256=x flags=[] date=2020-01-01T00:00:01Z`}},
		{"duplicate counted",
			map[string][]imaptest.Msg{"A": {m(1, "x", d1), m(2, "x", d1)}},
			map[string][]imaptest.Msg{"A": {m(9, "x", d1)}},
			nil, []string{`folder "A": 1 missing: sha256=x flags=[] date=2020-01-01T00:00:00Z (UIDs in a: [1 2])`}},
		{"two folders map to one",
			map[string][]imaptest.Msg{"A": {}, "a": {}},
			map[string][]imaptest.Msg{"A": {}},
			strings.ToUpper, []string{`folders "A" and "a" both map to "A"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := imaptest.Diff(tt.a, tt.b, tt.mapName)
			if tt.want == nil {
				if got != "" {
					t.Errorf("Diff = %q, want equal", got)
				}
				return
			}
			lines := strings.Split(got, "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Diff = %q, want %d lines", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
