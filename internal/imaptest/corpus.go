package imaptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// NamedMsg is one message of the [Corpus] with the flags and internal date
// tests should append it with.
type NamedMsg struct {
	Name  string
	Body  []byte
	Flags []string
	Date  time.Time
}

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// Corpus returns a deterministic set of awkward test messages, each with
// flags and an internal date to append it with. All use CRLF line ends
// except "bare-lf" and "mixed-eol".
//
// Not every server returns every message byte for byte; [WantBody] says what
// comes back:
//   - Dovecot returns "bare-lf" and "mixed-eol" with every line end turned
//     into CRLF; everything else, including "no-final-newline",
//     "headers-only-no-eol" and "from-envelope-line", comes back exactly.
//   - imapmemserver rebuilds the header when serving BODY[]: LF line ends in
//     the header become CRLF ("bare-lf", "mixed-eol"), a missing blank line
//     after the header is added ("headers-only-no-eol"), and a message whose
//     first line is not a header field ("from-envelope-line") comes back
//     EMPTY. Its RFC822.SIZE still counts the appended bytes. It also
//     lowercases keywords ("$Label1" -> "$label1").
func Corpus() []NamedMsg {
	day := func(y int, m time.Month, d, h, min, s int, zone int) time.Time {
		return time.Date(y, m, d, h, min, s, 0, time.FixedZone("", zone*3600))
	}
	var big bytes.Buffer
	if _, err := io.Copy(&big, BigMessage(300_000)); err != nil {
		panic(err) // cannot happen: BigMessage does not fail
	}
	attach := make([]byte, 3000)
	for i := range attach {
		attach[i] = byte(i * 7 % 256)
	}
	b64 := base64.StdEncoding.EncodeToString(attach)
	var wrapped strings.Builder
	for len(b64) > 76 {
		wrapped.WriteString(b64[:76] + "\n")
		b64 = b64[76:]
	}
	wrapped.WriteString(b64 + "\n")

	long := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 300) // 10800 bytes, no spaces

	msgs := []NamedMsg{
		{Name: "plain-crlf", Flags: []string{`\Seen`}, Date: day(2015, 3, 1, 12, 34, 56, 1), Body: crlf(`From: Alice <alice@example.org>
To: Bob <bob@example.org>
Subject: plain text
Date: Sun, 01 Mar 2015 12:34:56 +0100
Message-ID: <plain-crlf@mailkeep.test>

Hello Bob,

just a plain message.
`)},
		{Name: "no-message-id", Flags: []string{}, Date: day(2016, 1, 2, 3, 4, 5, 0), Body: crlf(`From: Alice <alice@example.org>
To: Bob <bob@example.org>
Subject: without a message identifier
Date: Sat, 02 Jan 2016 03:04:05 +0000

This message has no Message-ID header.
`)},
		{Name: "from-lines", Flags: []string{`\Seen`, `\Answered`}, Date: day(2017, 5, 6, 7, 8, 9, -7), Body: crlf(`From: Carol <carol@example.org>
To: Bob <bob@example.org>
Subject: From lines
Message-ID: <from-lines@mailkeep.test>

From the start of a line.
>From escaped once.
>>From escaped twice.
>>>From thrice.
 From indented.
From
From:not a separator
>From

From the end.
`)},
		{Name: "from-envelope-line", Flags: []string{}, Date: day(1996, 1, 3, 1, 5, 34, 0), Body: crlf(`From sender@example.org Sat Jan  3 01:05:34 1996
From: Sender <sender@example.org>
Subject: starts with an mbox separator line
Message-ID: <from-envelope-line@mailkeep.test>

Body.
`)},
		{Name: "pop3-dots", Flags: []string{`\Flagged`}, Date: day(2018, 2, 3, 4, 5, 6, 9), Body: crlf(`From: Dot <dot@example.org>
Subject: dots at line starts
Message-ID: <pop3-dots@mailkeep.test>

.
..
.leading dot
...

.
`)},
		{Name: "no-final-newline", Flags: []string{}, Date: day(2019, 4, 5, 6, 7, 8, 2), Body: []byte("From: Alice <alice@example.org>\r\nSubject: no final newline\r\nMessage-ID: <no-final-newline@mailkeep.test>\r\n\r\nThe last line has no line end.")},
		{Name: "bare-lf", Flags: []string{`\Seen`}, Date: day(2012, 12, 12, 12, 12, 12, 0), Body: []byte("From: Unix <unix@example.org>\nSubject: bare LF line ends\nMessage-ID: <bare-lf@mailkeep.test>\n\nEvery line ends in LF only.\nFrom here too.\n")},
		{Name: "mixed-eol", Flags: []string{}, Date: day(2013, 1, 1, 0, 0, 0, 0), Body: []byte("From: Mixed <mixed@example.org>\r\nSubject: mixed line ends\nMessage-ID: <mixed-eol@mailkeep.test>\r\n\r\nCRLF line\r\nLF line\nCRLF again\r\n")},
		{Name: "utf8-8bit", Flags: []string{"$Label1", `\Seen`}, Date: day(2020, 2, 29, 23, 59, 59, 5), Body: crlf(`From: Jörg Größe <joerg@example.org>
To: 日本 <nihon@example.org>
Subject: Größe – 日本語 – emoji 📬
Message-ID: <utf8-8bit@mailkeep.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln. Ça va? Ωμέγα. 日本語のテキスト。 📬
`)},
		{Name: "latin1-8bit", Flags: []string{}, Date: day(2009, 7, 8, 9, 10, 11, 1), Body: append(crlf(`From: Jorg <joerg@example.org>
Subject: =?ISO-8859-1?Q?Gr=F6=DFe?=
Message-ID: <latin1-8bit@mailkeep.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

`), []byte("Gr\xfc\xdfe aus K\xf6ln, \xe7a va? \xa9 \xff\r\n")...)},
		{Name: "long-lines", Flags: []string{}, Date: day(2011, 11, 11, 11, 11, 11, 0), Body: crlf("From: Long <long@example.org>\nSubject: long lines\nX-Long-Header: " + strings.Repeat("word ", 400) + "\nMessage-ID: <long-lines@mailkeep.test>\n\n" + long + "\n" + strings.Repeat("x", 998) + "\n" + strings.Repeat("y", 999) + "\n")},
		{Name: "trailing-space", Flags: []string{}, Date: day(2010, 10, 10, 10, 10, 10, 0), Body: crlf("From: Space <space@example.org>\nSubject: trailing white space \nMessage-ID: <trailing-space@mailkeep.test>\n\nspaces   \ntab\t\n \n\t\n\n\n")},
		{Name: "multipart-base64", Flags: []string{`\Seen`, "$Forwarded"}, Date: day(2021, 6, 7, 8, 9, 10, -4), Body: crlf(`From: Alice <alice@example.org>
To: Bob <bob@example.org>
Subject: with attachment
Message-ID: <multipart-base64@mailkeep.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_boundary_42"

This is a multi-part message in MIME format.
--=_boundary_42
Content-Type: text/plain; charset=us-ascii

See the attachment.
From inside a part.
--=_boundary_42
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

` + wrapped.String() + `--=_boundary_42--
`)},
		{Name: "nested-rfc822", Flags: []string{}, Date: day(2022, 8, 9, 10, 11, 12, 0), Body: crlf(`From: Fwd <fwd@example.org>
Subject: Fwd: From lines
Message-ID: <nested-rfc822@mailkeep.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

Forwarded message below.
--outer
Content-Type: message/rfc822

From: Carol <carol@example.org>
Subject: inner
Message-ID: <inner@mailkeep.test>

From the inner message.
>From escaped.
--outer--
`)},
		{Name: "headers-only", Flags: []string{`\Draft`}, Date: day(2023, 3, 4, 5, 6, 7, 0), Body: crlf("From: Draft <draft@example.org>\nSubject: headers only, empty body\nMessage-ID: <headers-only@mailkeep.test>\n\n")},
		{Name: "headers-only-no-eol", Flags: []string{}, Date: day(2023, 3, 4, 5, 6, 8, 0), Body: []byte("From: Draft <draft@example.org>\r\nSubject: no blank line, no final line end")},
		{Name: "large-300k", Flags: []string{`\Seen`}, Date: day(2024, 1, 2, 3, 4, 5, 0), Body: big.Bytes()},
	}
	return msgs
}

// Kind names a server implementation whose quirks [WantBody] knows.
type Kind string

// Kinds of servers used in tests.
const (
	// Dovecot is Dovecot 2.3 with Maildir storage, as dovecottest runs it.
	Dovecot Kind = "dovecot"
	// MemIMAP is go-imap's imapmemserver, as memimap runs it.
	MemIMAP Kind = "memimap"
)

// WantBody returns the BODY[] that a server of kind k returns for a message
// appended as body. For an unknown kind it returns body.
func WantBody(k Kind, body []byte) []byte {
	switch k {
	case Dovecot:
		// Maildir files hold LF line ends; Dovecot serves CRLF.
		lf := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		return bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
	case MemIMAP:
		// The very code imapmemserver serves BODY[] with.
		b := imapserver.ExtractBodySection(bytes.NewReader(body), &imap.FetchItemBodySection{})
		if b == nil {
			b = []byte{}
		}
		return b
	}
	return body
}

// bigHeaderFmt is the header of BigMessage; %d is n.
const bigHeaderFmt = "From: Big <big@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: big message of %d bytes\r\nMessage-ID: <big-%d@mailkeep.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"

// BigMessage returns a deterministic message of exactly n bytes, generated
// while it is read, so tests can append a 100 MB message without holding it.
// The body consists of CRLF-terminated lines of printable ASCII of varying
// length, some starting with "From " or ">From ", and ends with CRLF. For n
// below about 220 bytes the result is a truncated header.
func BigMessage(n int) io.Reader {
	if n < 0 {
		n = 0
	}
	return &bigReader{n: n, pending: []byte(fmt.Sprintf(bigHeaderFmt, n, n)), rng: 0x9e3779b97f4a7c15}
}

type bigReader struct {
	n       int    // bytes still to produce
	pending []byte // generated, not yet read
	rng     uint64
	line    int
	buf     []byte
}

func (r *bigReader) next() uint64 {
	// xorshift64*
	r.rng ^= r.rng >> 12
	r.rng ^= r.rng << 25
	r.rng ^= r.rng >> 27
	return r.rng * 2685821657736338717
}

func (r *bigReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && r.n > 0 {
		if len(r.pending) == 0 {
			r.pending = r.genLine()
		}
		k := min(len(p), len(r.pending), r.n)
		copy(p, r.pending[:k])
		p, r.pending, r.n = p[k:], r.pending[k:], r.n-k
		total += k
	}
	return total, nil
}

const bigAlphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?-_=+*/()<>[]{}'\"@#$%&~ "

// genLine returns the next body line including CRLF. The last line is sized
// so that the message ends exactly at n bytes with CRLF.
func (r *bigReader) genLine() []byte {
	r.line++
	b := r.buf[:0]
	switch {
	case r.line%50 == 0:
		b = append(b, "From line "...)
		b = strconv.AppendInt(b, int64(r.line), 10)
		b = append(b, " of the big message"...)
	case r.line%77 == 0:
		b = append(b, ">From line "...)
		b = strconv.AppendInt(b, int64(r.line), 10)
		b = append(b, ", escaped"...)
	case r.line%131 == 0:
		b = append(b, '.')
	}
	want := int(r.next()%120) + 1
	for len(b) < want {
		b = append(b, bigAlphabet[r.next()%uint64(len(bigAlphabet))])
	}
	if len(b)+2 >= r.n || r.n-(len(b)+2) < 130 {
		// Last line: fill the rest exactly.
		size := r.n - 2
		if size < 0 {
			size = 0
		}
		for len(b) < size {
			b = append(b, 'z')
		}
		b = b[:size]
	}
	b = append(b, '\r', '\n')
	r.buf = b
	return b
}

// NastyFolders returns folder names that trouble IMAP clients and storage:
// non-ASCII (mUTF-7 on the wire), inner, leading and trailing spaces, '&'
// and a literal "&AOQ-", quotes,
// backslashes, brackets and an 8-level hierarchy, joined with delim. Every
// parent is listed before its children, so creating them in order gives a
// tree of selectable folders. Names contain no '.' (Dovecot's Maildir++
// rejects it even with separator '/'), no '%' or '*' (LIST wildcards), no
// leading '~' (Dovecot rejects it), and no namespace prefix: prepend it
// yourself.
func NastyFolders(delim rune) []string {
	d := string(delim)
	names := []string{
		"Archiv",
		"Archiv" + d + "Größe",
		"Archiv" + d + "Größe" + d + "Ünïcödé Ça va",
		"日本語",
		"Emoji 📬 mail",
		"With Space",
		" Leading space",
		"Trailing space ",
		"Tom & Jerry",
		"&",
		"&-",
		"&AOQ- literal",
		`Quote "double"`,
		`Back\slash`,
		"[Gmail]",
		"[Gmail]" + d + "Sent Mail",
		"INBOX" + d + "Child",
	}
	deep := ""
	for i := 1; i <= 8; i++ {
		if deep != "" {
			deep += d
		}
		deep += fmt.Sprintf("L%d", i)
		names = append(names, deep)
	}
	return names
}
