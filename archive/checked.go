package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// ErrDamaged is wrapped by the error of a message whose archived bytes do
// not match the catalog (size or SHA-256) or cannot be read. cat, show,
// restore, export and the POP3 delete check all read through Checked.
var ErrDamaged = errors.New("archived bytes do not match the catalog")

// Checked reads a message's bytes and checks them against the size and
// SHA-256 the catalog has for them: the read that reaches the end returns
// an error wrapping ErrDamaged instead of io.EOF when they do not match,
// and so does a read past the size or a failed read of the archive. Only
// a reader that reached io.EOF has given the right bytes.
type Checked struct {
	r    io.Reader
	size int64
	sum  string // hex SHA-256 expected; "" checks the size alone
	h    hash.Hash
	n    int64
	err  error // sticky: the damage, or io.EOF once checked
}

// NewChecked checks the bytes read from r against size and sum (hex
// SHA-256; "" checks the size alone).
func NewChecked(r io.Reader, size int64, sum string) *Checked {
	return &Checked{r: r, size: size, sum: sum, h: sha256.New()}
}

// CheckedOf checks r, message m's bytes.
func CheckedOf(m *catalog.Message, r io.Reader) *Checked { return NewChecked(r, m.Size, m.SHA256) }

func (c *Checked) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if room := c.size + 1 - c.n; int64(len(p)) > room {
		p = p[:room] // one byte past the size is enough to see it is too long
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	switch {
	case c.n > c.size:
		c.err = fmt.Errorf("%w: more than the %d bytes the catalog says", ErrDamaged, c.size)
		return n - int(c.n-c.size), c.err
	case err == io.EOF:
		c.err = c.check()
		return n, c.err
	case err != nil:
		c.err = fmt.Errorf("%w: reading after %d bytes: %w", ErrDamaged, c.n, err)
		return n, c.err
	}
	return n, nil
}

// check compares what was read with the catalog, at the end.
func (c *Checked) check() error {
	if c.n != c.size {
		return fmt.Errorf("%w: %d bytes, the catalog says %d", ErrDamaged, c.n, c.size)
	}
	if sum := c.Sum(); c.sum != "" && sum != c.sum {
		return fmt.Errorf("%w: SHA-256 is %s, the catalog says %s", ErrDamaged, sum, c.sum)
	}
	return io.EOF
}

// Err is the damage found so far (nil also before the end).
func (c *Checked) Err() error {
	if c.err == io.EOF {
		return nil
	}
	return c.err
}

// N is the number of bytes read.
func (c *Checked) N() int64 { return c.n }

// Sum is the hex SHA-256 of the bytes read.
func (c *Checked) Sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// Finish reads what the caller left unread (to io.Discard) and returns
// the damage, or nil when the message is all there and matches.
func (c *Checked) Finish() error {
	if c.err == nil {
		io.Copy(io.Discard, c)
	}
	return c.Err()
}

// OpenChecked opens message m for reading through Checked; an archive
// that cannot open it is damaged too. Close closes the archive's reader.
func (a *Archive) OpenChecked(m *catalog.Message) (*CheckedReadCloser, error) {
	rc, err := a.Open(m)
	if err != nil {
		return nil, fmt.Errorf("%w: opening: %w", ErrDamaged, err)
	}
	return &CheckedReadCloser{Checked: CheckedOf(m, rc), c: rc}, nil
}

// CheckedReadCloser is a Checked that closes the archive's reader.
type CheckedReadCloser struct {
	*Checked
	c io.Closer
}

func (c *CheckedReadCloser) Close() error { return c.c.Close() }
