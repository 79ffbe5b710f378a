// Package imaptap sits between an IMAP client and go-imap's imapserver,
// on the server side of a loopback test connection, and lets a test double
// rewrite the protocol where imapserver cannot express a provider's
// behaviour: a command line can be replaced before imapserver reads it
// (an extension imapserver would refuse, rewritten into one it knows),
// and each response line can be replaced before the client reads it (a
// different status, an added response code, an extra FETCH item).
//
// Both directions are split into lines outside literals: a line ending in
// "{n}" or "{n+}" is followed by n bytes passed through untouched, and in
// the client direction the line after a literal continues the same
// command (APPEND, MULTIAPPEND), so only the first line of each command
// reaches [Hooks.Command]. Lines are bounded (MaxLine): a longer one is
// passed through without hooks.
package imaptap

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
)

// MaxLine bounds a line the hooks see, in bytes.
const MaxLine = 64 << 10

// Hooks rewrite one connection's protocol lines. Both get a line with its
// CRLF and return the bytes to pass on instead (the line itself to leave
// it alone, several lines to add some, nothing to drop it). Command runs
// in the server's reading goroutine, Response in its writing one (for
// imapserver, the same goroutine, in command order).
type Hooks interface {
	Command(line []byte) []byte
	Response(line []byte) []byte
}

// Listener wraps accepted connections in [Conn].
type Listener struct {
	net.Listener
	// New makes the hooks of a new connection.
	New func(c *Conn) Hooks
}

// Accept accepts a connection and wraps it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &Conn{Conn: c, br: bufio.NewReaderSize(c, MaxLine)}
	tc.hooks = l.New(tc)
	return tc, nil
}

// Conn is the server side of one tapped connection.
type Conn struct {
	net.Conn
	hooks Hooks

	// reading
	br      *bufio.Reader
	out     []byte // rewritten bytes not yet handed to the server
	rlit    int64  // literal bytes still to pass through
	cont    bool   // the next line continues a command (after a literal)
	midLine bool   // inside an over-long line
	skip    bool   // swallowing the rest of a command a hook replaced

	// writing
	wmu        sync.Mutex
	wpart      []byte
	wlit       int64
	wmid       bool
	closeAfter bool
}

// Hooks returns the connection's hooks.
func (c *Conn) Hooks() Hooks { return c.hooks }

// CloseAfterWrite makes the connection close once the bytes of the
// current Write have been sent (a hook's "* BYE").
func (c *Conn) CloseAfterWrite() { c.closeAfter = true }

// Read hands the server the client's bytes, command lines rewritten.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.rlit > 0 && c.skip {
			n, err := c.br.Discard(int(min(c.rlit, int64(c.br.Size()))))
			c.rlit -= int64(n)
			if err != nil {
				return 0, err
			}
			continue
		}
		if c.rlit > 0 {
			n := int64(len(p))
			if n > c.rlit {
				n = c.rlit
			}
			k, err := c.br.Read(p[:n])
			c.rlit -= int64(k)
			return k, err
		}
		frag, err := c.br.ReadSlice('\n')
		if len(frag) == 0 && err != nil {
			return 0, err
		}
		switch {
		case err == bufio.ErrBufferFull || c.midLine:
			c.out = append(c.out, frag...)
			c.midLine = err == bufio.ErrBufferFull
			if !c.midLine {
				c.rlit, c.cont = literal(frag)
			}
		case err != nil:
			c.out = append(c.out, frag...) // a last line without LF
		case c.skip:
			// A continuation of a replaced command: swallowed.
			c.rlit, c.cont = literal(frag)
			c.skip = c.cont
		default:
			line := frag
			if !c.cont {
				line = c.hooks.Command(append([]byte(nil), frag...))
			}
			c.out = append(c.out, line...)
			c.rlit, c.cont = literal(line)
			if n, ok := literal(frag); ok && !c.cont && nonSync(frag) {
				// The hook replaced a command whose client sends its
				// literal without waiting (LITERAL+/-): swallow the literal
				// and the rest of the command. (A synchronising literal is
				// never sent: the client gets the replacement's answer
				// instead of the continuation request.)
				c.rlit, c.cont, c.skip = n, true, true
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// Write passes the server's bytes on, response lines rewritten.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var out []byte
	rest := p
	for len(rest) > 0 {
		if c.wlit > 0 {
			n := int64(len(rest))
			if n > c.wlit {
				n = c.wlit
			}
			out = append(out, rest[:n]...)
			c.wlit -= n
			rest = rest[n:]
			continue
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(c.wpart)+len(rest) > MaxLine {
				out = append(out, c.wpart...)
				out = append(out, rest...)
				c.wpart, c.wmid = nil, true
			} else {
				c.wpart = append(c.wpart, rest...)
			}
			break
		}
		line := append(c.wpart, rest[:i+1]...)
		c.wpart = nil
		rest = rest[i+1:]
		if c.wmid {
			c.wmid = false
			out = append(out, line...)
		} else {
			out = append(out, c.hooks.Response(line)...)
		}
		c.wlit, _ = literal(line)
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	if c.closeAfter {
		c.Conn.Close()
	}
	return len(p), nil
}

// literal reports the size of the literal a line announces at its end.
func literal(line []byte) (int64, bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSuffix(l[i+1:len(l)-1], []byte("+"))), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func nonSync(line []byte) bool {
	return bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte("+}"))
}

// Tagged splits a response line into tag, status ("OK", "NO", "BAD",
// upper-cased) and the rest after the status (with CRLF), for a tagged
// status response; ok is false for anything else.
func Tagged(line []byte) (tag, status string, rest []byte, ok bool) {
	if len(line) == 0 || line[0] == '*' || line[0] == '+' {
		return "", "", nil, false
	}
	t, after, found := bytes.Cut(line, []byte(" "))
	if !found {
		return "", "", nil, false
	}
	s, r, _ := bytes.Cut(after, []byte(" "))
	st := string(bytes.ToUpper(bytes.TrimRight(s, "\r\n")))
	switch st {
	case "OK", "NO", "BAD":
		return string(t), st, r, true
	}
	return "", "", nil, false
}

// Command splits a command line into tag, name (upper-cased, "UID FETCH"
// for UID commands) and arguments (without CRLF).
func Command(line []byte) (tag, name, args string) {
	l := string(bytes.TrimRight(line, "\r\n"))
	tag, rest, _ := cut(l)
	name, args, _ = cut(rest)
	name = upper(name)
	if name == "UID" {
		var sub string
		sub, args, _ = cut(args)
		name += " " + upper(sub)
	}
	return tag, name, args
}

func cut(s string) (string, string, bool) {
	i := bytes.IndexByte([]byte(s), ' ')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func upper(s string) string { return string(bytes.ToUpper([]byte(s))) }
