package textindex

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readMail(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "mail", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		file     string
		from     string
		subject  string
		text     []string // in Text()
		notText  []string
		attach   []Attachment
		problems bool
	}{
		{file: "01-latin1-qp.eml", from: "Jürgen Müller <juergen@example.de>", subject: "Größe der Lieferung",
			text: []string{"Die Größe der Lieferung ist falsch.", "Crème brûlée", "Grüße, Jürgen"}},
		{file: "02-koi8r-base64.eml", from: "Иван <ivan@example.ru>", subject: "Счёт",
			text: []string{"Привет! Счёт за электричество во вложении."}},
		{file: "03-html-only.eml", from: "Shop <noreply@shop.example>", subject: "Your order",
			text:    []string{"Your invoice INV-2014 is ready & paid.", "Item Price", "Kettle 29 EUR", "Thank you"},
			notText: []string{"secretscript", "ignored title", "color", "<p>", "&amp;"}},
		{file: "04-attachments.eml", from: "Bob <bob@example.com>", subject: "Receipts",
			text: []string{"Here are the receipts for the kettle."},
			attach: []Attachment{
				{Name: "Quittung_Ärger.pdf", Type: "application/pdf", Size: 3016},
				{Name: "фото.jpg", Type: "image/jpeg", Size: 2048},
				{Name: "../../etc/evil.sh", Type: "application/octet-stream", Size: 21},
			}},
		{file: "05-malformed.eml", from: "broken@example.com", subject: "Broken zebra",
			text: []string{"zebra crossed", "okapi", "narwhal"}, problems: true},
		{file: "06-alternative-cp1252.eml", from: "Dana <dana@example.com>", subject: "Contract renewal – naïve café",
			text: []string{"The contract renewal for the café is due – kangaroo clause."}},
		{file: "07-iso2022jp-forward.eml", from: "Taro <taro@example.jp>", subject: "会議",
			text: []string{"明日の会議は十時からです。", "Subject: Original wombat note", "The wombat was forwarded."}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			m, err := Parse(bytes.NewReader(readMail(t, tt.file)), ParseOptions{Attachment: func(Attachment, int, io.Reader) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			// Without a callback attachments are not decoded: the same
			// list with encoded sizes, the same text.
			m2, err := Parse(bytes.NewReader(readMail(t, tt.file)), ParseOptions{})
			if err != nil || m2.Text() != m.Text() || len(m2.Attachments) != len(m.Attachments) {
				t.Errorf("without a callback: %v %q %+v", err, m2.Text(), m2.Attachments)
			}
			for i := range m2.Attachments {
				if a, b := m2.Attachments[i], m.Attachments[i]; a.Name != b.Name || a.Type != b.Type || a.Size < b.Size {
					t.Errorf("attachment %d without a callback: %+v vs %+v", i, a, b)
				}
			}
			if m.From != tt.from || m.Subject != tt.subject {
				t.Errorf("from %q subject %q, want %q %q", m.From, m.Subject, tt.from, tt.subject)
			}
			for _, s := range tt.text {
				if !strings.Contains(m.Text(), s) {
					t.Errorf("text lacks %q:\n%s", s, m.Text())
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(m.Text(), s) {
					t.Errorf("text has %q:\n%s", s, m.Text())
				}
			}
			if len(m.Attachments) != len(tt.attach) {
				t.Fatalf("attachments %+v, want %+v", m.Attachments, tt.attach)
			}
			for i, a := range tt.attach {
				if m.Attachments[i] != a {
					t.Errorf("attachment %d: %+v, want %+v", i, m.Attachments[i], a)
				}
			}
			if (len(m.Problems) > 0) != tt.problems {
				t.Errorf("problems %q, want some: %v", m.Problems, tt.problems)
			}
		})
	}
}

func TestParseBound(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Subject: big\r\n\r\n")
	for b.Len() < 3<<20 {
		b.WriteString("lorem ipsum dolor sit amet\r\n")
	}
	b.WriteString("tailword\r\n")
	m, err := Parse(&b, ParseOptions{MaxText: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Plain) > 1<<20 || !m.Truncated || strings.Contains(m.Plain, "tailword") {
		t.Errorf("text %d bytes, truncated %v", len(m.Plain), m.Truncated)
	}
	if b.Len() != 0 {
		t.Errorf("%d bytes left unread", b.Len())
	}
}

func TestParseReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("Subject: x\r\n\r\nbody"), errReader{})
	if _, err := Parse(r, ParseOptions{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error lost: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/evil.sh":      "evil.sh",
		"..":                     "attachment-3",
		"":                       "attachment-3",
		".hidden":                "hidden",
		`C:\Users\x\a.doc`:       "a.doc",
		"a\x00b\nc.txt":          "a_b_c.txt",
		"фото.jpg":               "фото.jpg",
		strings.Repeat("ä", 300): strings.Repeat("ä", 100),
	} {
		if got := SafeName(in, 2); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	ents, _ := os.ReadDir(filepath.Join("testdata", "mail"))
	for _, e := range ents {
		f.Add(readMail(f, e.Name()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(bytes.NewReader(b), ParseOptions{MaxText: 4096})
		if err != nil {
			t.Fatalf("Parse of bytes failed: %v", err)
		}
		if len(m.Plain)+len(m.HTML) > 4096+8 {
			t.Errorf("text %d bytes over the bound", len(m.Plain)+len(m.HTML))
		}
	})
}

// TestParseAlternative: the HTML alternative of a message with a plain
// text part is read through, not reduced to text (Text() is the plain
// text either way); an HTML part before any plain text still is.
func TestParseAlternative(t *testing.T) {
	for _, tt := range []struct {
		name, mail string
		text, html string
	}{
		{"plain first", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain aardvark\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html aardvark</p>\r\n--b--\r\n",
			"plain aardvark", ""},
		{"blank plain first", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n \r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html aardvark</p>\r\n--b--\r\n",
			"html aardvark", "html aardvark"},
		{"html first", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html aardvark</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain aardvark\r\n--b--\r\n",
			"plain aardvark", "html aardvark"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader("From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"+tt.mail), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(m.Text()) != tt.text || strings.TrimSpace(m.HTML) != tt.html || len(m.Problems) > 0 {
				t.Errorf("text %q html %q problems %q, want %q %q", m.Text(), m.HTML, m.Problems, tt.text, tt.html)
			}
		})
	}
}
