// Package mboxrd is a streaming, byte-exact mboxrd codec.
//
// A message is stored as a From line ("From sender date\n"), its bytes with
// one '>' prepended to every line that matches ^>*From , and a separator
// newline. Nothing else changes: CRLF stays CRLF, 8-bit bytes stay, a
// missing final newline stays missing (the separator is then "\n\n", so
// the next From line still starts a line). The Decoder reverses this.
//
// Lines are split at '\n' only; a lone '\r' does not end a line. This is
// what mail readers (mutt, Python's mailbox, Dovecot) do with mbox files.
//
// github.com/emersion/go-mbox writes mboxo, which cannot be unquoted
// exactly, and turns CRLF into LF; hence this package.
package mboxrd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

const asctime = "Mon Jan _2 15:04:05 2006"

// FromLine returns the mbox separator line "From <sender> <asctime date>\n",
// the date in UTC ("Mon Jan _2 15:04:05 2006"). sender is an addr-spec; when
// it is empty or holds spaces or control characters it is replaced by
// "MAILER-DAEMON", so that the line always parses back.
func FromLine(sender string, date time.Time) string {
	if sender == "" || strings.IndexFunc(sender, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		sender = "MAILER-DAEMON"
	}
	return "From " + sender + " " + date.UTC().Format(asctime) + "\n"
}

// Date layouts seen in From lines, applied to the date's fields joined by
// single spaces (so that "Mar  3" and "Mar 3" are the same).
var fromLayouts = []struct {
	fields int
	layout string
}{
	{5, "Mon Jan 2 15:04:05 2006"},
	{6, "Mon Jan 2 15:04:05 MST 2006"},
	{6, "Mon Jan 2 15:04:05 -0700 2006"},
	{6, "Mon Jan 2 15:04:05 2006 -0700"},
	{5, "Mon Jan 2 15:04 2006"},
}

// ParseFromLine parses a From line as written by FromLine, with or without
// its trailing "\n" (or "\r\n"). It also reads the variants other mbox
// writers produce: extra trailing fields such as "remote from host", a
// numeric or named zone, a single-space day, no seconds. The date is
// returned in UTC (a zone name whose offset Go does not know counts as UTC).
func ParseFromLine(line string) (sender string, date time.Time, err error) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "From ")
	if !ok {
		return "", time.Time{}, fmt.Errorf("mboxrd: not a From line: %q", clip(line, 80))
	}
	sender, rest, _ = strings.Cut(rest, " ")
	fields := strings.Fields(rest)
	for _, l := range fromLayouts {
		if len(fields) < l.fields {
			continue
		}
		if t, err := time.Parse(l.layout, strings.Join(fields[:l.fields], " ")); err == nil {
			return sender, t.UTC(), nil
		}
	}
	return sender, time.Time{}, fmt.Errorf("mboxrd: bad date in From line %q", clip(line, 80))
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

var (
	gts  = bytes.Repeat([]byte{'>'}, 512)
	from = []byte("From ")
	nls  = []byte("\n\n")
)

// ErrClosed is returned by an Encoder's Write or Close after Close.
var ErrClosed = errors.New("mboxrd: encoder closed")

// Encoder quotes the bytes of one message as they stream through it. It
// keeps O(1) state: at a line start that might need quoting it counts the
// '>' seen (and how much of "From " follows) instead of holding bytes.
type Encoder struct {
	w     io.Writer
	bol   bool  // at a line start whose quoting is undecided
	gt    int64 // '>' at the start of that line, not yet written
	match int   // bytes of "From " that followed them, not yet written
	last  byte  // last byte of the message so far
	wrote bool  // the message has at least one byte
	err   error // sticky: a write failed, or Close was called
}

// NewEncoder returns an Encoder writing one message to w.
func NewEncoder(w io.Writer) *Encoder {
	e := &Encoder{}
	e.Reset(w)
	return e
}

// Reset discards e's state and makes it ready for a new message written
// to w.
func (e *Encoder) Reset(w io.Writer) {
	*e = Encoder{w: w, bol: true}
}

func (e *Encoder) write(p []byte) {
	if e.err == nil && len(p) > 0 {
		_, e.err = e.w.Write(p)
	}
}

func (e *Encoder) writeGT(n int64) {
	for n > 0 && e.err == nil {
		k := min(n, int64(len(gts)))
		e.write(gts[:k])
		n -= k
	}
}

// flushPrefix writes a pending line start that turned out not to match.
func (e *Encoder) flushPrefix() {
	e.writeGT(e.gt)
	e.write(from[:e.match])
	e.gt, e.match, e.bol = 0, 0, false
}

// Write quotes p and writes it. Chunk boundaries do not matter: any
// split of a message gives the same output. Lines that need no quoting are
// passed on in runs as long as p allows.
func (e *Encoder) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	e.last, e.wrote = p[n-1], true

	// Finish a line start left undecided by the previous Write.
	for e.bol && len(p) > 0 {
		switch c := p[0]; {
		case c == '>' && e.match == 0:
			e.gt++
		case c == from[e.match]:
			e.match++
			if e.match == len(from) {
				e.writeGT(e.gt + 1)
				e.write(from)
				e.gt, e.match, e.bol = 0, 0, false
			}
		default:
			e.flushPrefix()
			continue // c is written below, with the rest of its line
		}
		p = p[1:]
	}

	start := 0 // p[start:] is not written yet
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		ls := i + j + 1 // a line start
		if ls == len(p) {
			e.bol = true
			break
		}
		if c := p[ls]; c != '>' && c != 'F' { // the common case
			i = ls
			continue
		}
		k := ls
		for k < len(p) && p[k] == '>' {
			k++
		}
		rest := p[k:]
		switch {
		case bytes.HasPrefix(rest, from):
			e.write(p[start:ls])
			e.write(gts[:1])
			start, i = ls, k+len(from)
		case len(rest) < len(from) && bytes.HasPrefix(from, rest):
			// Undecided until the next Write: keep counts, not bytes.
			e.write(p[start:ls])
			e.bol, e.gt, e.match = true, int64(k-ls), len(rest)
			start = len(p)
		default:
			i = ls
			continue
		}
		if e.bol {
			break
		}
	}
	e.write(p[start:])
	if e.err != nil {
		return 0, e.err
	}
	return n, nil
}

// Close writes what is pending and the separator: "\n" when the message
// ends with "\n" (or is empty), "\n\n" when it does not. After Close the
// Encoder refuses writes until Reset.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	if e.bol {
		e.flushPrefix()
	}
	if e.wrote && e.last != '\n' {
		e.write(nls)
	} else {
		e.write(nls[:1])
	}
	if e.err != nil {
		return e.err
	}
	e.err = ErrClosed
	return nil
}

// WriteMessage writes one message: FromLine(sender, date), the quoted bytes
// of body and the separator. It returns the number of bytes written to w.
func WriteMessage(w io.Writer, sender string, date time.Time, body io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	if _, err := io.WriteString(cw, FromLine(sender, date)); err != nil {
		return cw.n, err
	}
	e := NewEncoder(cw)
	if _, err := io.Copy(e, body); err != nil {
		return cw.n, err
	}
	err := e.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrFormat is returned by Decoder.Next when the stream is not at a From
// line where a message should start.
var ErrFormat = errors.New("mboxrd: expected a From line")

// bufSize is the Decoder's buffer; it also bounds the length of a From line.
const bufSize = 64 << 10

// Decoder reads messages from an mboxrd stream. Its memory is a fixed
// 64 KiB buffer whatever the size of the messages or of their lines.
type Decoder struct {
	br   *bufio.Reader
	body bodyReader
	cur  *bodyReader // &body while a message is open
	err  error       // sticky
}

// NewDecoder returns a Decoder of r, which must be positioned at the start
// of a From line.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{br: bufio.NewReaderSize(r, bufSize)}
}

// Next skips what is left of the previous message, reads the From line of
// the next one and returns its envelope sender, its date (zero when the
// From line has no date Next can read) and a reader of its unquoted bytes.
// That reader is valid until the next call to Next.
//
// A message ends where "\n" is followed by "From " at a line start, or at
// the end of the stream; that "\n" is the separator and not part of the
// message. So a message the Encoder wrote with a final newline reads back
// byte for byte; one written without it reads back with one "\n" added
// (mbox cannot tell these apart; callers that know the exact size, as the
// catalog does, read it through an io.LimitReader).
//
// Next returns io.EOF when no message is left, and an error wrapping
// ErrFormat when the stream does not continue with a From line.
func (d *Decoder) Next() (sender string, date time.Time, body io.Reader, err error) {
	if d.err != nil {
		return "", time.Time{}, nil, d.err
	}
	if d.cur != nil {
		_, err := io.Copy(io.Discard, d.cur)
		d.cur = nil
		if err != nil {
			d.err = err
			return "", time.Time{}, nil, err
		}
	}
	line, err := d.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(line) == 0:
		return "", time.Time{}, nil, io.EOF
	case err == bufio.ErrBufferFull:
		d.err = fmt.Errorf("%w: line longer than %d bytes", ErrFormat, bufSize)
		return "", time.Time{}, nil, d.err
	case err != nil && err != io.EOF:
		d.err = err
		return "", time.Time{}, nil, err
	}
	if !bytes.HasPrefix(line, from) {
		d.err = fmt.Errorf("%w, found %q", ErrFormat, clip(string(line), 40))
		return "", time.Time{}, nil, d.err
	}
	sender, date, _ = ParseFromLine(string(line))
	d.body = bodyReader{br: d.br, bol: true, eof: err == io.EOF}
	d.cur = &d.body
	return sender, date, d.cur, nil
}

// bodyReader unquotes one message. At each line start it decides whether
// the message ends there ("From ") and whether the line loses a '>'
// (^>+From ); the '\n' before a line start is held back until then.
type bodyReader struct {
	br     *bufio.Reader
	bol    bool // at an undecided line start
	heldNL bool // the '\n' ending the previous line is not given out yet
	inGT   bool // in the run of '>' at the start of a line
	heldGT bool // the first '>' of that run is not given out yet
	eof    bool // the message is over
	err    error
}

func (b *bodyReader) finish(err error) {
	b.eof = true
	if err != nil && err != io.EOF {
		b.err = err
	}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !b.eof {
		if b.bol {
			peek, err := b.br.Peek(len(from))
			if len(peek) == 0 || bytes.Equal(peek, from) {
				// The held '\n' was the separator (or the stream ended).
				b.finish(err)
				break
			}
			if b.heldNL {
				p[n] = '\n'
				n++
				b.heldNL = false
				continue
			}
			b.bol = false
			if peek[0] == '>' {
				b.br.Discard(1)
				b.inGT, b.heldGT = true, true
				continue
			}
		}
		if b.inGT {
			n += b.readGT(p[n:])
			continue
		}
		buf, err := b.buffered()
		if len(buf) == 0 {
			b.finish(err)
			break
		}
		// Copy whole lines while the next line start is plainly not a
		// separator and needs no unquoting.
		buf = buf[:min(len(buf), len(p)-n)]
		k := 0
		for {
			j := bytes.IndexByte(buf[k:], '\n')
			if j < 0 {
				k = len(buf)
				break
			}
			k += j + 1
			if k == len(buf) || buf[k] == 'F' || buf[k] == '>' {
				k--
				n += copy(p[n:], buf[:k])
				b.br.Discard(k + 1)
				b.bol, b.heldNL = true, true
				k = -1
				break
			}
		}
		if k >= 0 {
			n += copy(p[n:], buf[:k])
			b.br.Discard(k)
		}
	}
	if n == 0 && b.eof {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	return n, nil
}

// buffered returns the bytes in the buffer, reading more when it is empty.
func (b *bodyReader) buffered() ([]byte, error) {
	if b.br.Buffered() == 0 {
		if _, err := b.br.Peek(1); err != nil {
			return nil, err
		}
	}
	buf, _ := b.br.Peek(b.br.Buffered())
	return buf, nil
}

// readGT copies the '>' at the start of a line, holding the first back
// until it is known whether "From " follows the run (then it is dropped).
// All the bytes are '>', so their count is all that matters.
func (b *bodyReader) readGT(p []byte) int {
	buf, err := b.buffered()
	k := 0
	for k < len(buf) && buf[k] == '>' {
		k++
	}
	if k > 0 {
		k = copy(p, buf[:k])
		b.br.Discard(k)
		return k
	}
	// The run is over (or the stream is).
	if len(buf) > 0 {
		peek, _ := b.br.Peek(len(from))
		if bytes.Equal(peek, from) {
			b.heldGT = false
		}
	}
	if b.heldGT {
		if len(p) == 0 {
			return 0
		}
		p[0] = '>'
		b.heldGT = false
		b.inGT = false
		if len(buf) == 0 {
			b.finish(err)
		}
		return 1
	}
	b.inGT = false
	if len(buf) == 0 {
		b.finish(err)
	}
	return 0
}
