package mboxrd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var cases = []struct{ name, body, quoted string }{
	{"empty", "", ""},
	{"plain", "Subject: x\r\n\r\nhello\r\n", "Subject: x\r\n\r\nhello\r\n"},
	{"from at start", "From me\nbody\n", ">From me\nbody\n"},
	{"from lines", "a\nFrom x\n>From y\n>>From z\nFrom\nFromage\n", "a\n>From x\n>>From y\n>>>From z\nFrom\nFromage\n"},
	{"crlf from", "a\r\nFrom x\r\n", "a\r\n>From x\r\n"},
	{"no final newline", "a\nFrom", "a\nFrom"},
	{"no final newline after quote", "a\n>>Fro", "a\n>>Fro"},
	{"cr only", "a\rFrom x\r", "a\rFrom x\r"},
	{"8bit", "Gr\xc3\xb6\xc3\x9fe\n\xff\xfe From \n", "Gr\xc3\xb6\xc3\x9fe\n\xff\xfe From \n"},
	{"only newline", "\n", "\n"},
	{"blank then from", "x\n\nFrom y\n\n", "x\n\n>From y\n\n"},
	{"many gt", strings.Repeat(">", 1000) + "From x\n", strings.Repeat(">", 1001) + "From x\n"},
	{"long line", strings.Repeat("x", 1<<20) + "\nFrom y\n", strings.Repeat("x", 1<<20) + "\n>From y\n"},
}

func encode(t testing.TB, body string, chunk func() int) string {
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for p := []byte(body); len(p) > 0; {
		n := min(chunk(), len(p))
		if _, err := e.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func sep(body string) string {
	if body == "" || strings.HasSuffix(body, "\n") {
		return "\n"
	}
	return "\n\n"
}

func TestEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tt := range cases {
		want := tt.quoted + sep(tt.body)
		for _, chunk := range []func() int{func() int { return 1 << 30 }, func() int { return 1 }, func() int { return 1 + rng.IntN(7) }} {
			if got := encode(t, tt.body, chunk); got != want {
				t.Errorf("%s: got %q, want %q", tt.name, clip(got), clip(want))
			}
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// expected is what Decoder gives back: the body, plus a newline when it had none.
func expected(body string) string {
	if body != "" && !strings.HasSuffix(body, "\n") {
		return body + "\n"
	}
	return body
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	date := time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range cases {
		if _, err := WriteMessage(&buf, "a@b", date, strings.NewReader(tt.body)); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDecoder(&buf)
	for _, tt := range cases {
		sender, dt, r, err := d.Next()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != expected(tt.body) || sender != "a@b" || !dt.Equal(date) {
			t.Errorf("%s: got %q %q %v", tt.name, clip(string(b)), sender, dt)
		}
	}
	if _, _, _, err := d.Next(); err != io.EOF {
		t.Fatalf("after last: %v", err)
	}
}

func TestSkipUnread(t *testing.T) {
	var buf bytes.Buffer
	for _, b := range []string{"one\nFrom x\n", "two\n", "three"} {
		WriteMessage(&buf, "", time.Unix(0, 0), strings.NewReader(b))
	}
	d := NewDecoder(&buf)
	d.Next()
	d.Next()
	s, _, r, err := d.Next()
	b, _ := io.ReadAll(r)
	if err != nil || string(b) != "three\n" || s != "MAILER-DAEMON" {
		t.Fatalf("third message: %q %q %v", b, s, err)
	}
}

func TestFromLine(t *testing.T) {
	for _, tt := range []struct{ sender, want string }{
		{"a@b.c", "From a@b.c Thu Jan  1 00:00:00 1970\n"},
		{"", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a b@c", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
		{"a\x00b", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"},
	} {
		if got := FromLine(tt.sender, time.Unix(0, 0)); got != tt.want {
			t.Errorf("FromLine(%q) = %q", tt.sender, got)
		}
	}
	s, d, err := ParseFromLine("From x@y Tue Mar  3 10:00:00 2026 remote from z\n")
	if err != nil || s != "x@y" || d.Day() != 3 {
		t.Errorf("ParseFromLine: %q %v %v", s, d, err)
	}
	if _, _, err := ParseFromLine("Subject: x"); err == nil {
		t.Error("ParseFromLine accepted a header")
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, tt := range cases {
		if len(tt.body) < 4096 {
			f.Add(tt.body)
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		var buf bytes.Buffer
		WriteMessage(&buf, "x", time.Unix(0, 0), strings.NewReader(body))
		WriteMessage(&buf, "y", time.Unix(0, 0), strings.NewReader("next\n"))
		d := NewDecoder(&buf)
		_, _, r, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		if string(b) != expected(body) {
			t.Fatalf("round trip of %q gave %q", body, b)
		}
		s, _, r, err := d.Next()
		b, _ = io.ReadAll(r)
		if err != nil || s != "y" || string(b) != "next\n" {
			t.Fatalf("message after %q: %q %q %v", body, s, b, err)
		}
	})
}

// TestPythonReadsIt checks the output with Python's mailbox module, an
// independent reader (it reads mboxo; mboxrd's extra '>' is removed here).
func TestPythonReadsIt(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 missing")
		}
		t.Skip("python3 missing")
	}
	path := filepath.Join(t.TempDir(), "x.mbox")
	var buf bytes.Buffer
	var bodies []string
	for _, tt := range cases {
		if strings.HasSuffix(tt.body, "\n") && !strings.Contains(tt.body, "\r") {
			bodies = append(bodies, tt.body)
			WriteMessage(&buf, "a@b", time.Unix(0, 0), strings.NewReader(tt.body))
		}
	}
	os.WriteFile(path, buf.Bytes(), 0o600)
	script := `import mailbox, re, sys
for k in mailbox.mbox(sys.argv[1]).keys():
    b = re.sub(rb"(?m)^>(>*From )", rb"\1", mailbox.mbox(sys.argv[1]).get_bytes(k))
    sys.stdout.buffer.write(str(len(b)).encode() + b"\n" + b)
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range bodies {
		nl := bytes.IndexByte(out, '\n')
		var n int
		if _, err := fmt.Sscan(string(out[:nl]), &n); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		got := string(out[nl+1 : nl+1+n])
		out = out[nl+1+n:]
		if got != want {
			t.Errorf("python read %q, want %q", clip(got), clip(want))
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		body := []byte(strings.Repeat("Some ordinary text of a mail message, with words.\r\n", size/52))
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			e := NewEncoder(io.Discard)
			for i := 0; i < b.N; i++ {
				e.Reset(io.Discard)
				e.Write(body)
				e.Close()
			}
		})
	}
}
