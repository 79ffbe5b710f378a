// Package mboxrd is a streaming, byte-exact mboxrd codec.
//
// The encoder prepends one '>' to every line of a message that matches
// ^>*From , and changes nothing else: CRLF stays CRLF, 8-bit stays 8-bit, a
// missing final newline stays missing. Each message is followed by one blank
// line ("\n", or "\n\n" when the message does not end with a newline). The
// decoder reverses this. github.com/emersion/go-mbox writes mboxo and turns
// CRLF into LF, so it cannot give back the exact bytes; hence this package.
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

// FromLine returns the separator line "From SENDER DATE\n" (asctime, UTC).
// A sender that is empty or holds white space or control characters is
// replaced by MAILER-DAEMON.
func FromLine(sender string, date time.Time) string {
	if sender == "" || strings.IndexFunc(sender, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		sender = "MAILER-DAEMON"
	}
	return "From " + sender + " " + date.UTC().Format(asctime) + "\n"
}

// ParseFromLine parses a From line written by FromLine (or by most other
// mbox writers: extra trailing fields are ignored).
func ParseFromLine(line string) (sender string, date time.Time, err error) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "From ")
	if !ok {
		return "", time.Time{}, fmt.Errorf("mboxrd: not a From line: %q", line)
	}
	sender, rest, _ = strings.Cut(rest, " ")
	rest = strings.TrimSpace(rest)
	if len(rest) >= len(asctime) {
		if t, err := time.Parse(asctime, rest[:len(asctime)]); err == nil {
			return sender, t, nil
		}
	}
	return sender, time.Time{}, fmt.Errorf("mboxrd: bad date in From line %q", line)
}

var gts = bytes.Repeat([]byte{'>'}, 256)

// Encoder quotes one message's bytes as they stream through it.
type Encoder struct {
	w      io.Writer
	bol    bool // at the start of a line
	gt     int  // '>' seen at the start of the current line, not yet written
	match  int  // bytes of "From " matched after them
	last   byte
	wrote  bool
	broken error
}

// NewEncoder returns an encoder writing to w.
func NewEncoder(w io.Writer) *Encoder {
	e := &Encoder{}
	e.Reset(w)
	return e
}

// Reset makes e ready for a new message written to w.
func (e *Encoder) Reset(w io.Writer) {
	*e = Encoder{w: w, bol: true}
}

func (e *Encoder) writeGT(n int) error {
	for n > 0 {
		k := min(n, len(gts))
		if _, err := e.w.Write(gts[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// flushPrefix writes a pending line start that turned out not to match.
func (e *Encoder) flushPrefix() error {
	if err := e.writeGT(e.gt); err != nil {
		return err
	}
	if e.match > 0 {
		if _, err := io.WriteString(e.w, "From "[:e.match]); err != nil {
			return err
		}
	}
	e.gt, e.match = 0, 0
	return nil
}

// Write quotes and writes p. It may be called with any chunking.
func (e *Encoder) Write(p []byte) (int, error) {
	if e.broken != nil {
		return 0, e.broken
	}
	n := len(p)
	if n > 0 {
		e.last = p[n-1]
		e.wrote = true
	}
	for len(p) > 0 {
		if e.bol {
			c := p[0]
			switch {
			case c == '>' && e.match == 0:
				e.gt++
				p = p[1:]
				continue
			case c == "From "[e.match]:
				e.match++
				p = p[1:]
				if e.match == 5 {
					if err := e.writeGT(e.gt + 1); err != nil {
						e.broken = err
						return 0, err
					}
					if _, err := io.WriteString(e.w, "From "); err != nil {
						e.broken = err
						return 0, err
					}
					e.gt, e.match, e.bol = 0, 0, false
				}
				continue
			default:
				if err := e.flushPrefix(); err != nil {
					e.broken = err
					return 0, err
				}
				e.bol = false
			}
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		if _, err := e.w.Write(chunk); err != nil {
			e.broken = err
			return 0, err
		}
		p = p[len(chunk):]
		e.bol = i >= 0
	}
	return n, nil
}

// Close writes what is pending and the separator blank line.
func (e *Encoder) Close() error {
	if e.broken != nil {
		return e.broken
	}
	if e.bol {
		if err := e.flushPrefix(); err != nil {
			return err
		}
	}
	sep := "\n"
	if e.wrote && e.last != '\n' {
		sep = "\n\n"
	}
	_, err := io.WriteString(e.w, sep)
	return err
}

// WriteMessage writes a From line, the quoted body and the separator, and
// returns the number of bytes written to w.
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

// Decoder reads messages from an mboxrd stream.
type Decoder struct {
	br  *bufio.Reader
	cur *bodyReader
}

// NewDecoder returns a decoder of r, which must be positioned at a From line.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{br: bufio.NewReaderSize(r, 64<<10)}
}

// ErrFormat is returned when the stream is not where a From line should be.
var ErrFormat = errors.New("mboxrd: expected a From line")

// Next returns the next message's envelope sender and date and a reader of
// its unquoted bytes. The separator blank line is not part of them; a
// message written without a final newline reads back with one (callers that
// know the exact size cut it off). io.EOF means no message is left.
func (d *Decoder) Next() (string, time.Time, io.Reader, error) {
	if d.cur != nil {
		if _, err := io.Copy(io.Discard, d.cur); err != nil {
			return "", time.Time{}, nil, err
		}
	}
	line, err := d.br.ReadSlice('\n')
	if err == io.EOF && len(line) == 0 {
		return "", time.Time{}, nil, io.EOF
	}
	if err != nil && err != io.EOF {
		if err == bufio.ErrBufferFull {
			err = fmt.Errorf("%w: From line too long", ErrFormat)
		}
		return "", time.Time{}, nil, err
	}
	if !bytes.HasPrefix(line, []byte("From ")) {
		return "", time.Time{}, nil, fmt.Errorf("%w, found %q", ErrFormat, truncate(line, 40))
	}
	sender, date, _ := ParseFromLine(string(line))
	d.cur = &bodyReader{br: d.br, bol: true}
	return sender, date, d.cur, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

type bodyReader struct {
	br      *bufio.Reader
	bol     bool
	held    bool   // a '\n' read but not yet given out
	emitNL  bool   // give out a held '\n' before more data
	pending []byte // data to give out
	done    bool
	err     error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	for {
		if b.emitNL {
			if len(p) == 0 {
				return 0, nil
			}
			p[0] = '\n'
			b.emitNL = false
			return 1, nil
		}
		if len(b.pending) > 0 {
			n := copy(p, b.pending)
			b.pending = b.pending[n:]
			return n, nil
		}
		if b.done {
			return 0, b.err
		}
		b.fill()
	}
}

// fill reads the next chunk of the body, holding back a final '\n' until
// it is known not to be the separator.
func (b *bodyReader) fill() {
	if b.bol {
		peek, _ := b.br.Peek(5)
		if len(peek) == 0 {
			b.done, b.err = true, io.EOF
			return
		}
		if bytes.Equal(peek, []byte("From ")) {
			b.done, b.err = true, io.EOF // the held '\n' was the separator
			return
		}
		if peek[0] == '>' && unquote(b.br) {
			b.br.Discard(1)
		}
	}
	chunk, err := b.br.ReadSlice('\n')
	if len(chunk) > 0 && b.held {
		b.emitNL, b.held = true, false
	}
	switch {
	case len(chunk) > 0 && chunk[len(chunk)-1] == '\n':
		b.pending = chunk[:len(chunk)-1]
		b.held, b.bol = true, true
	default:
		b.pending = chunk
		b.bol = false
	}
	if err != nil && err != bufio.ErrBufferFull {
		if err == io.EOF {
			b.done, b.err = true, io.EOF
		} else {
			b.done, b.err = true, err
		}
		b.held = false
	}
	// chunk aliases the bufio buffer; it stays valid until the next read,
	// and Read gives it out before calling fill again.
}

// unquote reports whether the line at the start of br matches ^>+From .
func unquote(br *bufio.Reader) bool {
	for n := 16; ; n *= 2 {
		n = min(n, br.Size())
		peek, err := br.Peek(n)
		k := 0
		for k < len(peek) && peek[k] == '>' {
			k++
		}
		if k+5 <= len(peek) || err != nil || n == br.Size() {
			return k > 0 && bytes.HasPrefix(peek[k:], []byte("From "))
		}
	}
}
