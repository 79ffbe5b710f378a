package textindex

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers the charsets go-message converts from
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
)

// DefaultMaxText bounds the decoded text kept of one message (all its text
// parts together): the rest is read through and dropped.
const DefaultMaxText = 1 << 20

// maxDepth bounds MIME nesting; deeper parts are skipped.
const maxDepth = 32

// Attachment is a non-text part (or a text part with a file name).
type Attachment struct {
	Name string // decoded file name; "" when the part has none
	Type string // media type, e.g. application/pdf
	Size int64  // decoded size in bytes
}

// Message is what a person (and the index) reads of a message.
type Message struct {
	From, To, Cc, ReplyTo string // decoded address lists
	Subject               string
	Date                  time.Time // the Date header; zero when missing or malformed
	MessageID             string
	Plain                 string // the text/plain parts, joined
	HTML                  string // the text/html parts reduced to text, joined
	Attachments           []Attachment
	// Problems lists what did not parse (a malformed part, an unknown
	// charset or transfer encoding). What could be read is still here.
	Problems []string
	// Truncated says that text beyond the bound was dropped.
	Truncated bool
}

// Text is the message's body as a person reads it: the plain text, or the
// HTML reduced to text when there is no plain text part.
func (m *Message) Text() string {
	if strings.TrimSpace(m.Plain) != "" {
		return m.Plain
	}
	return m.HTML
}

// ParseOptions tune Parse.
type ParseOptions struct {
	// MaxText bounds the decoded text kept (default DefaultMaxText).
	MaxText int
	// Attachment, when set, is called with each attachment's decoded
	// bytes (show --attachments); it must read r only as far as it
	// wants. Its error stops Parse and is returned.
	Attachment func(a Attachment, index int, r io.Reader) error
}

// StopError wraps an error returned by ParseOptions.Attachment.
type StopError struct{ Err error }

func (e *StopError) Error() string { return e.Err.Error() }
func (e *StopError) Unwrap() error { return e.Err }

// Parse reads one RFC 822 message from r, streaming: it keeps at most
// MaxText bytes of decoded text and reads attachments through (counting
// their sizes) without holding them. A malformed part ends the parse of
// that part only and is recorded in Problems: Parse fails only when
// reading r fails or opt.Attachment returns an error (as *StopError).
func Parse(r io.Reader, opt ParseOptions) (msg *Message, err error) {
	if opt.MaxText <= 0 {
		opt.MaxText = DefaultMaxText
	}
	msg = &Message{}
	p := &parser{msg: msg, opt: opt}
	cr := &countingReader{r: r}
	defer func() {
		// go-message is third-party code fed with untrusted bytes: a panic
		// in it is a malformed message, not a crash.
		if v := recover(); v != nil {
			msg.Problems = append(msg.Problems, fmt.Sprintf("parser panic: %v", v))
			err = nil
		}
		if err == nil && cr.err != nil {
			err = cr.err
		}
	}()
	e, rerr := message.ReadWithOptions(cr, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	if e == nil {
		if cr.err != nil {
			return msg, cr.err
		}
		msg.Problems = append(msg.Problems, fmt.Sprintf("header: %v", rerr))
		// Index the bytes as text anyway: a message without a parsable
		// header is still someone's words.
		p.addText(&msg.Plain, io.LimitReader(cr, int64(opt.MaxText)), false)
		io.Copy(io.Discard, cr)
		return msg, nil
	}
	if rerr != nil {
		msg.Problems = append(msg.Problems, rerr.Error())
	}
	p.header(e.Header)
	if err := p.entity(e, 0, false); err != nil {
		return msg, err
	}
	_, err = io.Copy(io.Discard, cr) // reach the end so that read errors show
	return msg, err
}

type countingReader struct {
	r   io.Reader
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

type parser struct {
	msg   *Message
	opt   ParseOptions
	text  int  // decoded text bytes kept so far
	index int  // attachments seen
	plain bool // msg.Plain has more than white space: Text() is Plain
}

func (p *parser) header(h message.Header) {
	mh := mail.Header{Header: h}
	p.msg.From = addrs(mh, "From")
	p.msg.To = addrs(mh, "To")
	p.msg.Cc = addrs(mh, "Cc")
	p.msg.ReplyTo = addrs(mh, "Reply-To")
	p.msg.Subject = decodeText(h, "Subject")
	if d, err := mh.Date(); err == nil {
		p.msg.Date = d
	}
	p.msg.MessageID = strings.TrimSpace(h.Get("Message-Id"))
}

// decodeText decodes a header field's RFC 2047 words; a field that does not
// decode is kept raw (made valid UTF-8).
func decodeText(h message.Header, key string) string {
	t, err := h.Text(key)
	if err != nil {
		t = h.Get(key)
	}
	return clean(t)
}

func addrs(h mail.Header, key string) string {
	if h.Get(key) == "" {
		return ""
	}
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		return decodeText(h.Header, key)
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		switch {
		case a.Name != "" && a.Address != "":
			out = append(out, clean(a.Name)+" <"+clean(a.Address)+">")
		case a.Address != "":
			out = append(out, clean(a.Address))
		default:
			out = append(out, clean(a.Name))
		}
	}
	return strings.Join(out, ", ")
}

func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Join(strings.Fields(s), " ")
}

func (p *parser) problem(format string, a ...any) {
	if len(p.msg.Problems) < 20 {
		p.msg.Problems = append(p.msg.Problems, fmt.Sprintf(format, a...))
	}
}

// entity handles one MIME entity (whose header is read); inAlt says it is
// an alternative of a multipart/alternative.
func (p *parser) entity(e *message.Entity, depth int, inAlt bool) error {
	mt, params, err := e.Header.ContentType()
	if err != nil || mt == "" {
		mt, params = "text/plain", map[string]string{}
		if e.Header.Get("Content-Type") != "" {
			p.problem("content-type %q: %v", e.Header.Get("Content-Type"), err)
		}
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			p.problem("MIME nesting deeper than %d: rest skipped", maxDepth)
			return nil
		}
		// go-message's textproto reader gives the parts undecoded: an
		// attachment that nobody saves is read through as it is, its
		// base64 not decoded (the index only counts attachments).
		mr := textproto.NewMultipartReader(e.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				p.problem("%s: %v", mt, err)
				return nil
			}
			h := message.Header{Header: part.Header}
			if p.opt.Attachment == nil {
				if a, ok := attachmentOf(h); ok {
					n, _ := io.Copy(io.Discard, part)
					a.Size = n // the encoded size
					p.index++
					p.msg.Attachments = append(p.msg.Attachments, a)
					continue
				}
			}
			ent, err := message.New(h, part)
			if err != nil {
				p.problem("%s part: %v", mt, err)
			}
			if err := p.entity(ent, depth+1, mt == "multipart/alternative"); err != nil {
				return err
			}
		}
	}
	if a, ok := attachmentOf(e.Header); ok {
		return p.attachment(a, e.Body)
	}
	switch {
	case mt == "message/rfc822" || mt == "message/global":
		// A forwarded message: its header and text are part of this one.
		if depth >= maxDepth {
			return nil
		}
		inner, err := message.ReadWithOptions(e.Body, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
		if inner == nil {
			p.problem("%s: %v", mt, err)
			return nil
		}
		var sb strings.Builder
		for _, k := range []string{"From", "To", "Subject"} {
			if v := decodeText(inner.Header, k); v != "" {
				fmt.Fprintf(&sb, "%s: %s\n", k, v)
			}
		}
		p.addText(&p.msg.Plain, strings.NewReader(sb.String()), false)
		return p.entity(inner, depth+1, false)
	case mt == "text/html":
		if p.plain {
			// Text() is the plain text once there is some: an HTML
			// alternative (or a second body) is not reduced to text
			// that nobody reads. It is read through unparsed.
			io.Copy(io.Discard, e.Body)
			return nil
		}
		p.addText(&p.msg.HTML, e.Body, true)
	default:
		p.addText(&p.msg.Plain, e.Body, false)
	}
	return nil
}

// attachmentOf says whether a part with header h is an attachment: a part
// with a file name, a Content-Disposition of attachment, or a type that is
// neither text nor a message.
func attachmentOf(h message.Header) (Attachment, bool) {
	mt, params, err := h.ContentType()
	if err != nil || mt == "" {
		mt, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mt, "multipart/") {
		return Attachment{}, false
	}
	disp, dparams, _ := h.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = decodeFilename(name)
	attach := strings.EqualFold(disp, "attachment") || name != "" ||
		!(strings.HasPrefix(mt, "text/") || mt == "message/rfc822" || mt == "message/global")
	return Attachment{Name: name, Type: mt}, attach
}

func (p *parser) attachment(a Attachment, body io.Reader) error {
	cr := &countingReader{r: body}
	var n int64
	if p.opt.Attachment != nil {
		cnt := &byteCounter{r: cr}
		if err := p.opt.Attachment(a, p.index, cnt); err != nil {
			return &StopError{Err: err}
		}
		n = cnt.n
	}
	m, _ := io.Copy(io.Discard, cr)
	a.Size = n + m
	if cr.err != nil {
		p.problem("attachment %q: %v", a.Name, cr.err)
	}
	p.index++
	p.msg.Attachments = append(p.msg.Attachments, a)
	return nil
}

type byteCounter struct {
	r io.Reader
	n int64
}

func (b *byteCounter) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// decodeFilename decodes an RFC 2047-encoded file name (RFC 2231 ones are
// decoded by the header parser already) and keeps only its base name.
func decodeFilename(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "=?") {
		dec := mime.WordDecoder{CharsetReader: message.CharsetReader}
		if d, err := dec.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return clean(s)
}

// addText appends r's text to *dst within the message's text bound,
// reducing HTML to text when html is set. The rest of r is read through.
func (p *parser) addText(dst *string, r io.Reader, isHTML bool) {
	left := p.opt.MaxText - p.text
	cr := &countingReader{r: r}
	if left <= 0 {
		if n, _ := io.Copy(io.Discard, cr); n > 0 {
			p.msg.Truncated = true
		}
		return
	}
	var sb strings.Builder
	if isHTML {
		// The HTML source is bounded at 4x the text bound: markup is bulky.
		htmlText(&sb, io.LimitReader(cr, int64(4*left)), left)
	} else {
		br := bufio.NewReader(io.LimitReader(cr, int64(left)))
		io.Copy(&sb, br)
	}
	if n, _ := io.Copy(io.Discard, cr); n > 0 {
		p.msg.Truncated = true
	}
	if cr.err != nil && !errors.Is(cr.err, io.ErrUnexpectedEOF) {
		p.problem("text part: %v", cr.err)
	} else if cr.err != nil {
		p.problem("text part cut short: %v", cr.err)
	}
	t := sb.String()
	if len(t) > left {
		t = t[:left]
	}
	if !utf8.ValidString(t) { // the fast check first: most text is valid
		t = strings.ToValidUTF8(t, "\uFFFD")
	}
	p.text += len(t)
	if *dst != "" && t != "" {
		*dst += "\n"
	}
	*dst += t
	if dst == &p.msg.Plain && !p.plain {
		p.plain = strings.TrimSpace(t) != ""
	}
}

// htmlText writes the text of an HTML document to sb (at most max bytes):
// script and style dropped, block elements on their own lines, entities
// decoded. It uses golang.org/x/net/html's tokenizer, which streams and
// never fails on bad markup.
func htmlText(sb *strings.Builder, r io.Reader, max int) {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(64 << 10)
	skip := 0
	pending := 0 // separator owed before the next text: 1 a space, 2 a line break
	for sb.Len() < max {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			tn, _ := z.TagName()
			switch string(tn) {
			case "script", "style", "head", "title":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr", "ul", "ol":
				pending = 2
			case "td", "th":
				pending = max1(pending)
			}
		case html.TextToken:
			if skip > 0 {
				continue
			}
			for _, c := range string(z.Text()) {
				if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\u00a0' {
					pending = max1(pending)
					continue
				}
				if sb.Len() > 0 {
					switch pending {
					case 1:
						sb.WriteByte(' ')
					case 2:
						sb.WriteByte('\n')
					}
				}
				pending = 0
				sb.WriteRune(c)
			}
		}
	}
}

func max1(p int) int {
	if p == 0 {
		return 1
	}
	return p
}

// SafeName turns an attachment's name into a file name that stays inside
// the directory it is written to: no path separators, no leading dots, no
// control characters, at most 200 bytes; "" becomes "attachment-N".
func SafeName(name string, index int) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	var sb strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == 0 || r < 0x20 || r == 0x7f || r == utf8.RuneError:
			sb.WriteByte('_')
		default:
			sb.WriteRune(r)
		}
	}
	s := strings.TrimLeft(strings.TrimSpace(sb.String()), ".")
	for len(s) > 200 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" || s == "." || s == ".." {
		s = fmt.Sprintf("attachment-%d", index+1)
	}
	return s
}
