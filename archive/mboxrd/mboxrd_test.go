package mboxrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// cases are message bodies and their quoted form (the separator not
// included).
var cases = []struct{ name, body, quoted string }{
	{"empty", "", ""},
	{"only newline", "\n", "\n"},
	{"plain crlf", "Subject: x\r\n\r\nhello\r\n", "Subject: x\r\n\r\nhello\r\n"},
	{"from at start", "From me\nbody\n", ">From me\nbody\n"},
	{"quoted from", ">From me\n", ">>From me\n"},
	{"thrice quoted from", ">>>From me\n", ">>>>From me\n"},
	{"from lines", "a\nFrom x\n>From y\n>>From z\nFrom\nFromage\n", "a\n>From x\n>>From y\n>>>From z\nFrom\nFromage\n"},
	{"from without space", "From\nFrom:\n>From\n>From:x\nFrom\t\n", "From\nFrom:\n>From\n>From:x\nFrom\t\n"},
	{"not at line start", "x From y\n >From z\n", "x From y\n >From z\n"},
	{"lower case", "from x\n>from y\n", "from x\n>from y\n"},
	{"crlf from", "a\r\nFrom x\r\n>From y\r\n", "a\r\n>From x\r\n>>From y\r\n"},
	{"crlf from no final newline", "a\r\nFrom x\r", "a\r\n>From x\r"},
	{"cr only", "a\rFrom x\r>From y\r", "a\rFrom x\r>From y\r"},
	{"8bit", "Gr\xc3\xb6\xc3\x9fe\n\xff\xfe From \n", "Gr\xc3\xb6\xc3\x9fe\n\xff\xfe From \n"},
	{"invalid utf-8 and nul", "\x80\x00\xc3\n\xffFrom \x00\n", "\x80\x00\xc3\n\xffFrom \x00\n"},
	{"no final newline", "a\nb", "a\nb"},
	{"no final newline, from", "a\nFrom", "a\nFrom"},
	{"no final newline, from space", "a\nFrom ", "a\n>From "},
	{"no final newline, quote", "a\n>>Fro", "a\n>>Fro"},
	{"only quotes", ">>>", ">>>"},
	{"only quotes and newline", "x\n>>>\n", "x\n>>>\n"},
	{"blank lines then from", "x\n\nFrom y\n\n", "x\n\n>From y\n\n"},
	{"trailing blank lines", "x\n\n\n", "x\n\n\n"},
	{"from line at end", "x\nFrom y\n", "x\n>From y\n"},
	{"many quotes", strings.Repeat(">", 1000) + "From x\n", strings.Repeat(">", 1001) + "From x\n"},
	{"more quotes than the decoder buffer", strings.Repeat(">", 100_000) + "From x\n" + strings.Repeat(">", 70_000) + "Fro\n",
		strings.Repeat(">", 100_001) + "From x\n" + strings.Repeat(">", 70_000) + "Fro\n"},
	{"1 MB line", strings.Repeat("x", 1<<20) + "\nFrom y\n", strings.Repeat("x", 1<<20) + "\n>From y\n"},
	{"1 MB lines, no final newline", strings.Repeat("From ", 1<<18) + "\n" + strings.Repeat("y", 1<<20),
		">" + strings.Repeat("From ", 1<<18) + "\n" + strings.Repeat("y", 1<<20)},
}

// quoteRE is an independent statement of the mboxrd rule.
var quoteRE = regexp.MustCompile(`(?m)^(>*From )`)

func reference(body string) string {
	q := quoteRE.ReplaceAllString(body, ">$1")
	if body == "" || strings.HasSuffix(body, "\n") {
		return q + "\n"
	}
	return q + "\n\n"
}

func encode(t testing.TB, body string, chunk func() int) string {
	t.Helper()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for p := []byte(body); len(p) > 0; {
		n := min(chunk(), len(p))
		if k, err := e.Write(p[:n]); err != nil || k != n {
			t.Fatalf("Write: %d of %d, %v", k, n, err)
		}
		p = p[n:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func whole() int { return 1 << 30 }
func one() int   { return 1 }

func TestEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want := reference(tt.body)
			if !strings.HasPrefix(want, tt.quoted) || len(want)-len(tt.quoted) > 2 {
				t.Fatalf("table and reference disagree: %q vs %q", clip(tt.quoted, 60), clip(want, 60))
			}
			chunks := map[string]func() int{"whole": whole, "random": func() int { return 1 + rng.IntN(9) }}
			if len(tt.body) < 1<<16 {
				chunks["bytewise"] = one
			}
			for name, chunk := range chunks {
				if got := encode(t, tt.body, chunk); got != want {
					t.Errorf("%s writes: got %q, want %q", name, clip(got, 60), clip(want, 60))
				}
			}
		})
	}
}

// randomBody returns a body rich in the patterns the codec cares about.
func randomBody(rng *rand.Rand, n int) []byte {
	pieces := []string{"From ", ">", ">>From ", "From", "\n", "\r\n", "\r", "x", "From:", " ", "\x00", "\xff", "Fr", "om "}
	var b []byte
	for len(b) < n {
		b = append(b, pieces[rng.IntN(len(pieces))]...)
	}
	return b
}

// TestSplitWrites checks that chunk boundaries do not change the output.
func TestSplitWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 300; trial++ {
		body := string(randomBody(rng, rng.IntN(2000)))
		want := encode(t, body, whole)
		if ref := reference(body); want != ref {
			t.Fatalf("body %q: got %q, reference %q", body, want, ref)
		}
		maxChunk := 1 + rng.IntN(64)
		if got := encode(t, body, func() int { return 1 + rng.IntN(maxChunk) }); got != want {
			t.Fatalf("body %q: chunks up to %d give %q, one write gives %q", body, maxChunk, got, want)
		}
	}
}

// expected is what the Decoder gives back: the body, plus a newline when
// it has none.
func expected(body string) string {
	if body != "" && !strings.HasSuffix(body, "\n") {
		return body + "\n"
	}
	return body
}

func date(i int) time.Time {
	return time.Date(2016+i%10, time.Month(1+i%12), 1+i%28, i%24, i%60, i%60, 0, time.UTC)
}

func TestRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	for i, tt := range cases {
		sender := fmt.Sprintf("s%d@example.org", i)
		n, err := WriteMessage(&stream, sender, date(i), strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len(FromLine(sender, date(i))) + len(reference(tt.body))); n != want {
			t.Errorf("%s: WriteMessage returned %d, want %d", tt.name, n, want)
		}
	}
	readers := []struct {
		name string
		src  func(io.Reader) io.Reader
		read func(io.Reader) ([]byte, error)
	}{
		{"ReadAll", func(r io.Reader) io.Reader { return r }, io.ReadAll},
		{"one byte source", iotest.OneByteReader, io.ReadAll},
		{"half reads", iotest.HalfReader, func(r io.Reader) ([]byte, error) { return io.ReadAll(iotest.HalfReader(r)) }},
		{"data with EOF, 7-byte reads", iotest.DataErrReader, func(r io.Reader) ([]byte, error) {
			var out []byte
			buf := make([]byte, 7)
			for {
				n, err := r.Read(buf)
				out = append(out, buf[:n]...)
				if err == io.EOF {
					return out, nil
				}
				if err != nil {
					return out, err
				}
			}
		}},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			d := NewDecoder(rd.src(bytes.NewReader(stream.Bytes())))
			for i, tt := range cases {
				sender, dt, r, err := d.Next()
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				b, err := rd.read(r)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if string(b) != expected(tt.body) {
					t.Errorf("%s: got %q, want %q", tt.name, clip(string(b), 60), clip(expected(tt.body), 60))
				}
				if want := fmt.Sprintf("s%d@example.org", i); sender != want || !dt.Equal(date(i)) {
					t.Errorf("%s: From line gave %q %v, want %q %v", tt.name, sender, dt, want, date(i))
				}
			}
			if _, _, _, err := d.Next(); err != io.EOF {
				t.Fatalf("after the last message: %v", err)
			}
		})
	}
}

// TestBodyReader runs the standard reader checks on message bodies.
func TestBodyReader(t *testing.T) {
	for _, tt := range cases {
		var stream bytes.Buffer
		WriteMessage(&stream, "a@b", date(0), strings.NewReader(tt.body))
		WriteMessage(&stream, "c@d", date(1), strings.NewReader("From next\n"))
		_, _, r, err := NewDecoder(&stream).Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(r, []byte(expected(tt.body))); err != nil {
			t.Errorf("%s: %v", tt.name, clip(err.Error(), 200))
		}
	}
}

func TestSkipUnread(t *testing.T) {
	var stream bytes.Buffer
	bodies := []string{"one\nFrom x\n", strings.Repeat(">From y\n", 50_000), "three"}
	for _, b := range bodies {
		WriteMessage(&stream, "", time.Unix(0, 0), strings.NewReader(b))
	}
	d := NewDecoder(&stream)
	d.Next()
	_, _, r, _ := d.Next()
	io.CopyN(io.Discard, r, 1000) // partly read
	s, _, r, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "three\n" || s != "MAILER-DAEMON" {
		t.Fatalf("third message: %q from %q", b, s)
	}
}

// TestForeignStream reads an mboxrd file such as other programs write:
// CRLF From lines, extra From line fields, a blank line before each From.
// Only the "\n" before a From line is a separator: a CRLF blank line leaves
// its "\r" in the message (the catalog's size cuts such bytes off).
func TestForeignStream(t *testing.T) {
	in := "From a@b Sat Jan  3 01:05:34 1996\r\nX: 1\r\n\r\n>From me\r\n\r\n" +
		"From c@d Mon Jan 5 10:00:00 2026 remote from e\n\n"
	d := NewDecoder(strings.NewReader(in))
	for _, want := range []struct {
		sender, body string
		date         time.Time
	}{
		{"a@b", "X: 1\r\n\r\nFrom me\r\n\r", time.Date(1996, 1, 3, 1, 5, 34, 0, time.UTC)},
		{"c@d", "", time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)},
	} {
		s, dt, r, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if s != want.sender || !dt.Equal(want.date) || string(b) != want.body {
			t.Errorf("got %q %v %q, want %q %v %q", s, dt, b, want.sender, want.date, want.body)
		}
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestDecoderErrors(t *testing.T) {
	broken := errors.New("disk on fire")
	for _, tt := range []struct {
		name  string
		in    io.Reader
		first error // from Next
		body  error // from reading the body
	}{
		{"not a From line", strings.NewReader("Subject: x\n\nhi\n"), ErrFormat, nil},
		{"From line too long", strings.NewReader("From " + strings.Repeat("x", 100_000) + "\n"), ErrFormat, nil},
		{"read error in the From line", &failingReader{[]byte("From a@b Sat"), broken}, broken, nil},
		{"read error in the body", &failingReader{[]byte("From a@b Sat Jan  3 01:05:34 1996\nX: 1\n"), broken}, nil, broken},
		{"read error in a quote run", &failingReader{[]byte("From a@b Sat Jan  3 01:05:34 1996\n>>"), broken}, nil, broken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.in)
			_, _, r, err := d.Next()
			if tt.first != nil {
				if !errors.Is(err, tt.first) {
					t.Fatalf("Next: %v, want %v", err, tt.first)
				}
				if _, _, _, err2 := d.Next(); !errors.Is(err2, tt.first) {
					t.Fatalf("Next after an error: %v", err2)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(r); !errors.Is(err, tt.body) {
				t.Fatalf("body: %v, want %v", err, tt.body)
			}
			if _, _, _, err := d.Next(); !errors.Is(err, tt.body) {
				t.Fatalf("Next after a body error: %v", err)
			}
		})
	}
}

type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, errors.New("disk full")
	}
	f.left -= len(p)
	return len(p), nil
}

func TestEncoderErrors(t *testing.T) {
	e := NewEncoder(&failingWriter{left: 10})
	if _, err := e.Write([]byte("0123456789\nFrom x\n")); err == nil {
		t.Fatal("Write to a full disk succeeded")
	}
	if _, err := e.Write([]byte("more")); err == nil {
		t.Fatal("Write after an error succeeded")
	}
	if err := e.Close(); err == nil {
		t.Fatal("Close after an error succeeded")
	}
	var buf bytes.Buffer
	e.Reset(&buf)
	e.Write([]byte("x"))
	if err := e.Close(); err != nil || buf.String() != "x\n\n" {
		t.Fatalf("after Reset: %q, %v", buf.String(), err)
	}
	if _, err := e.Write([]byte("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := WriteMessage(&failingWriter{left: 3}, "a", time.Time{}, strings.NewReader("x")); err == nil {
		t.Fatal("WriteMessage to a full disk succeeded")
	}
}

func TestFromLine(t *testing.T) {
	for _, tt := range []struct{ sender, want string }{
		{"a@b.c", "From a@b.c Thu Jan  1 00:00:00 1970\n"},
		{"", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a b@c", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a\x00b", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a\nb", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a\x7fb", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"jörg@bücher.de", "From jörg@bücher.de Thu Jan  1 00:00:00 1970\n"},
	} {
		if got := FromLine(tt.sender, time.Unix(0, 0)); got != tt.want {
			t.Errorf("FromLine(%q) = %q, want %q", tt.sender, got, tt.want)
		}
	}
	berlin := time.FixedZone("CET", 3600)
	if got := FromLine("x@y", time.Date(2026, 3, 13, 0, 30, 0, 0, berlin)); got != "From x@y Thu Mar 12 23:30:00 2026\n" {
		t.Errorf("FromLine does not use UTC: %q", got)
	}
}

func TestParseFromLine(t *testing.T) {
	want := time.Date(2026, 3, 3, 10, 0, 7, 0, time.UTC)
	for _, tt := range []struct {
		line, sender string
		date         time.Time
		ok           bool
	}{
		{"From x@y Tue Mar  3 10:00:07 2026", "x@y", want, true},
		{"From x@y Tue Mar  3 10:00:07 2026\n", "x@y", want, true},
		{"From x@y Tue Mar  3 10:00:07 2026\r\n", "x@y", want, true},
		{"From x@y Tue Mar 3 10:00:07 2026 remote from z\n", "x@y", want, true},
		{"From x@y Tue Mar  3 11:00:07 +0100 2026\n", "x@y", want, true},
		{"From x@y Tue Mar  3 10:00:07 UTC 2026\n", "x@y", want, true},
		{"From x@y Tue Mar  3 10:00 2026\n", "x@y", want.Truncate(time.Minute), true},
		{"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n", "MAILER-DAEMON", time.Unix(0, 0).UTC(), true},
		{"From x@y\n", "x@y", time.Time{}, false},
		{"From x@y yesterday\n", "x@y", time.Time{}, false},
		{"Subject: x", "", time.Time{}, false},
		{"", "", time.Time{}, false},
	} {
		s, d, err := ParseFromLine(tt.line)
		if (err == nil) != tt.ok || s != tt.sender || !d.Equal(tt.date) {
			t.Errorf("ParseFromLine(%q) = %q, %v, %v", tt.line, s, d, err)
		}
	}
	rng := rand.New(rand.NewPCG(2, 3))
	for range 1000 {
		d := time.Unix(rng.Int64N(4e9)-1e9, 0).UTC()
		s, got, err := ParseFromLine(FromLine("a@b", d))
		if err != nil || s != "a@b" || !got.Equal(d) {
			t.Fatalf("FromLine(%v) parses back as %q %v %v", d, s, got, err)
		}
	}
}

// roundTrip writes body and a second message, reads both back with reads
// of readSize bytes, and checks the bytes and the encoding.
func roundTrip(t *testing.T, body []byte, chunk, readSize int) {
	var stream bytes.Buffer
	stream.WriteString(FromLine("x", time.Unix(0, 0)))
	e := NewEncoder(&stream)
	for p := body; len(p) > 0; {
		n := min(chunk, len(p))
		e.Write(p[:n])
		p = p[n:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := stream.String()[len(FromLine("x", time.Unix(0, 0))):], reference(string(body)); got != want {
		t.Fatalf("encoding %q in chunks of %d gives %q, want %q", body, chunk, got, want)
	}
	WriteMessage(&stream, "y", time.Unix(0, 0), strings.NewReader("next\n"))
	d := NewDecoder(&stream)
	if _, _, r, err := d.Next(); err != nil {
		t.Fatal(err)
	} else if b, err := io.ReadAll(io.LimitReader(&sizedReader{r, readSize}, 1<<30)); err != nil || string(b) != expected(string(body)) {
		t.Fatalf("round trip of %q (reads of %d) gave %q, %v", body, readSize, b, err)
	}
	s, _, r, err := d.Next()
	if err != nil {
		t.Fatalf("message after %q: %v", body, err)
	}
	if b, _ := io.ReadAll(r); s != "y" || string(b) != "next\n" {
		t.Fatalf("message after %q: %q %q", body, s, b)
	}
	if _, _, _, err := d.Next(); err != io.EOF {
		t.Fatalf("after %q: %v", body, err)
	}
}

type sizedReader struct {
	r io.Reader
	n int
}

func (s *sizedReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.n)]) }

func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 500 {
		roundTrip(t, randomBody(rng, rng.IntN(500)), 1+rng.IntN(20), 1+rng.IntN(20))
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, tt := range cases {
		if len(tt.body) < 4096 {
			f.Add([]byte(tt.body), uint8(255), uint8(255))
			f.Add([]byte(tt.body), uint8(1), uint8(3))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk, readSize uint8) {
		roundTrip(t, body, 1+int(chunk), 1+int(readSize))
	})
}

func python(t *testing.T) string {
	if p, err := exec.LookPath("python3"); err == nil {
		return p
	}
	if _, err := os.Stat("/root/.pyenv/shims/python3"); err == nil {
		return "/root/.pyenv/shims/python3"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("python3 missing")
	}
	t.Skip("python3 missing")
	return ""
}

// TestPythonReadsIt reads a file of messages with Python's mailbox.mbox,
// an independent reader (of mboxo: the mboxrd quoting is undone after it).
func TestPythonReadsIt(t *testing.T) {
	py := python(t)
	path := filepath.Join(t.TempDir(), "x.mbox")
	var stream bytes.Buffer
	var bodies []string
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range 40 {
		bodies = append(bodies, string(randomBody(rng, rng.IntN(300)))+"\n")
		if i < len(cases) && (cases[i].body == "" || strings.HasSuffix(cases[i].body, "\n")) {
			bodies = append(bodies, cases[i].body)
		}
	}
	for i, b := range bodies {
		WriteMessage(&stream, fmt.Sprintf("u%d@example.org", i), date(i), strings.NewReader(b))
	}
	if err := os.WriteFile(path, stream.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `import mailbox, re, sys
box = mailbox.mbox(sys.argv[1], create=False)
for k in box.keys():
    b = re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(k))
    f = box.get_bytes(k, from_=True).split(b"\n", 1)[0]
    sys.stdout.buffer.write(b"%d %d\n" % (len(f), len(b)) + f + b)
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	for i, want := range bodies {
		var nf, nb int
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			t.Fatalf("python found %d messages, want %d", i, len(bodies))
		}
		if _, err := fmt.Sscan(string(out[:nl]), &nf, &nb); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		out = out[nl+1:]
		fromLine, got := string(out[:nf]), string(out[nf:nf+nb])
		out = out[nf+nb:]
		if fromLine+"\n" != FromLine(fmt.Sprintf("u%d@example.org", i), date(i)) {
			t.Errorf("message %d: python read From line %q", i, fromLine)
		}
		if got != want {
			t.Errorf("message %d: python read %q, want %q", i, clip(got, 80), clip(want, 80))
		}
	}
	if len(out) != 0 {
		t.Errorf("python found more messages: %q", clip(string(out), 80))
	}
}

// mailText is realistic message text: short lines, some From lines.
func mailText(size int) []byte {
	rng := rand.New(rand.NewPCG(5, 5))
	words := strings.Fields("the of and to in is that for it as was with be by on not this are or from at which but have an they message folder archive restore meeting project report please thanks regards")
	var b bytes.Buffer
	b.WriteString("Received: from mx.example.org by mail.example.com\r\nFrom: a@example.org\r\nSubject: report\r\n\r\n")
	for b.Len() < size {
		if rng.IntN(40) == 0 {
			b.WriteString("From the desk of the director\r\n")
		}
		for w := 0; w < 12; w++ {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()[:size]
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		body := mailText(size)
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			e := NewEncoder(io.Discard)
			for b.Loop() {
				e.Reset(io.Discard)
				e.Write(body)
				e.Close()
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		var stream bytes.Buffer
		for stream.Len() < 4<<20 {
			WriteMessage(&stream, "a@b", time.Unix(0, 0), bytes.NewReader(mailText(size)))
		}
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(stream.Len()))
			b.ReportAllocs()
			buf := make([]byte, 32<<10)
			for b.Loop() {
				d := NewDecoder(bytes.NewReader(stream.Bytes()))
				for {
					_, _, r, err := d.Next()
					if err == io.EOF {
						break
					}
					io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
				}
			}
		})
	}
}
