package restore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/mailkeep/mailkeep/archive"
)

// smallMessage is the size up to which a message is kept in memory from
// its checking read; larger ones are read again while sent.
const smallMessage = 1 << 20

// body is a message's bytes, checked against its size and SHA-256.
type body struct {
	m   Message
	sum string // hex SHA-256 as read
	buf []byte // the bytes when small, else nil
	// crlfSize and crlfSum (small messages only; "" otherwise) describe
	// the message with every bare LF made CRLF, as servers that store
	// lines (Dovecot) report and serve a message that has bare LFs. When
	// it has none, they equal Size and sum.
	crlfSize int64
	crlfSum  string
	// orig is the source's message when a final CRLF was added to buf
	// (crlf.go): m then describes the bytes sent.
	orig *Message
}

// source is the message as the source has it (before a final CRLF added).
func (b *body) source() Message {
	if b.orig != nil {
		return *b.orig
	}
	return b.m
}

// damageError is a failure of the source's bytes (not of the connection).
type damageError struct{ err error }

func (e *damageError) Error() string { return e.err.Error() }
func (e *damageError) Unwrap() error { return e.err }

func damaged(format string, args ...any) error {
	return &damageError{fmt.Errorf("%w: "+format, append([]any{ErrDamaged}, args...)...)}
}

// load reads a message once to check its size and checksum (through
// archive.Checked), keeping the bytes when small. Its errors wrap
// ErrDamaged.
func load(m Message) (*body, error) {
	if m.Open == nil {
		return nil, damaged("no way to open it")
	}
	rc, err := m.Open()
	if err != nil {
		return nil, damaged("opening: %v", err)
	}
	defer rc.Close()
	b := &body{m: m}
	lf := &lfCounter{}
	// Checked fails (ErrDamaged) on a read error, a size other than
	// m.Size, or a SHA-256 other than m.SHA256 (when the source has one).
	cr := archive.NewChecked(rc, max(m.Size, 0), m.SHA256)
	var n int64
	if m.Size <= smallMessage {
		buf := bytes.NewBuffer(make([]byte, 0, max(m.Size, 0)))
		n, err = io.Copy(io.MultiWriter(buf, lf), cr)
		b.buf = buf.Bytes()
	} else {
		n, err = io.Copy(lf, cr)
	}
	if err != nil {
		return nil, &damageError{err}
	}
	b.sum = cr.Sum()
	b.crlfSize, b.crlfSum = n+lf.bare, b.sum
	if lf.bare > 0 {
		b.crlfSum = ""
		if b.buf != nil {
			h := sha256.Sum256(toCRLF(b.buf))
			b.crlfSum = hex.EncodeToString(h[:])
		}
	}
	return b, nil
}

// lfCounter counts bare LFs (not preceded by CR).
type lfCounter struct {
	bare int64
	cr   bool // the last byte seen was CR
}

func (c *lfCounter) Write(p []byte) (int, error) {
	for off := 0; ; {
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			break
		}
		i += off
		if i == 0 && !c.cr || i > 0 && p[i-1] != '\r' {
			c.bare++
		}
		off = i + 1
	}
	if len(p) > 0 {
		c.cr = p[len(p)-1] == '\r'
	}
	return len(p), nil
}

// toCRLF turns every bare LF into CRLF.
func toCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, ch := range b {
		if ch == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, ch)
	}
	return out
}

// inMemory reports whether writeTo sends bytes already checked.
func (b *body) inMemory() bool { return b.buf != nil || b.m.Size == 0 }

// writeTo writes the message to w, as the literal of an APPEND. A large
// message is read again and checked on the way; its last byte is written
// only once the checksum matches, so that on a *damageError the literal is
// left one byte short and the caller must drop the connection: the server
// then cannot store the damaged bytes. Other errors are w's.
func (b *body) writeTo(w io.Writer) error {
	if b.inMemory() {
		_, err := w.Write(b.buf)
		return err
	}
	rc, err := b.m.Open()
	if err != nil {
		return damaged("opening again: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	sw := &srcReader{r: rc}
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(sw, b.m.Size-1))
	if err != nil {
		if sw.err != nil {
			return damaged("reading again after %d bytes: %v", n, sw.err)
		}
		return err
	}
	last := make([]byte, 2)
	k, err := io.ReadFull(sw, last)
	if k != 1 || (err != nil && !errors.Is(err, io.ErrUnexpectedEOF)) {
		return damaged("changed since it was checked: %d bytes or more, the archive says %d", n+int64(k), b.m.Size)
	}
	h.Write(last[:1])
	if sum := hex.EncodeToString(h.Sum(nil)); sum != b.sum {
		return damaged("changed since it was checked: SHA-256 now %s, was %s", sum, b.sum)
	}
	_, err = w.Write(last[:1])
	return err
}

// srcReader remembers a read error, to tell the source's failures from
// the connection's in io.Copy.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
