package export

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
)

// mboxOut writes one folder as one mboxrd file, the archive's own mbox
// encoding uncompressed: "From SENDER DATE\n", the message with one '>'
// added to lines matching ^>*From , and a separator "\n" ("\n\n" after a
// message without a final newline). Message bytes keep their own line
// ends (CRLF stays CRLF). Before the message's first header line come
// "Status:" and, when there is one, "X-Status:" lines carrying its flags
// (mutt and Dovecot's convention), in the message's own line ending.
//
// The file is written as ".NAME.mbox.tmp" beside its final name, fsynced,
// and renamed when the folder is complete.
type mboxOut struct {
	final, tmp string
	f          *os.File
	fb         *fileBuf
	enc        *mboxrd.Encoder
	br         *bufio.Reader
	mark       int64 // end of the last kept message
}

// peekHead is how much of a message is looked at for its first line.
const peekHead = 4096

func newMboxOut(to string, comps []string, buf []byte) (*mboxOut, error) {
	final := filepath.Join(to, filepath.FromSlash(layout.MboxPath(comps, ".mbox")))
	dir := filepath.Dir(final)
	if err := mkdirAll(dir); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(final)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	o := &mboxOut{final: final, tmp: tmp, f: f, fb: &fileBuf{f: f, buf: make([]byte, 0, 256<<10)}, br: bufio.NewReaderSize(nil, 64<<10)}
	o.enc = mboxrd.NewEncoder(o.fb)
	return o, nil
}

func (o *mboxOut) Put(m *catalog.Message, flags []string, _ int, r io.Reader) error {
	o.br.Reset(r)
	head, _ := o.br.Peek(peekHead) // a read error comes again from Read
	if _, err := io.WriteString(o.fb, mboxrd.FromLine(envelopeSender(m.Sender), m.InternalDate)); err != nil {
		return fmt.Errorf("writing %s: %w", o.tmp, err)
	}
	o.enc.Reset(o.fb)
	if st := statusLines(head, flags); st != "" {
		if _, err := io.WriteString(o.enc, st); err != nil {
			return fmt.Errorf("writing %s: %w", o.tmp, err)
		}
	}
	if _, err := io.Copy(o.enc, o.br); err != nil {
		return fmt.Errorf("writing %s: %w", o.tmp, err)
	}
	if err := o.enc.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.tmp, err)
	}
	return nil
}

func (o *mboxOut) Keep() error {
	o.mark = o.fb.size()
	return nil
}

// Drop cuts the file back to the end of the last kept message.
func (o *mboxOut) Drop() error {
	if err := o.fb.truncate(o.mark); err != nil {
		return fmt.Errorf("cutting %s back to %d bytes: %w", o.tmp, o.mark, err)
	}
	return nil
}

func (o *mboxOut) Close() error {
	if err := o.fb.flush(); err != nil {
		return fmt.Errorf("writing %s: %w", o.tmp, err)
	}
	if err := o.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", o.tmp, err)
	}
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", o.tmp, err)
	}
	o.f = nil
	if err := renameNew(o.tmp, o.final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(o.final))
}

func (o *mboxOut) Abort() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
	os.Remove(o.tmp)
}

// fileBuf buffers writes to f like bufio.Writer, but can also take back
// the last bytes written, buffered or not (truncate).
type fileBuf struct {
	f       *os.File
	buf     []byte
	flushed int64 // bytes in f
	err     error // sticky write error
}

func (b *fileBuf) size() int64 { return b.flushed + int64(len(b.buf)) }

func (b *fileBuf) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(b.buf) {
			n, err := b.f.Write(p)
			b.flushed += int64(n)
			b.err = err
			return n, err
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *fileBuf) flush() error {
	if b.err != nil || len(b.buf) == 0 {
		return b.err
	}
	n, err := b.f.Write(b.buf)
	b.flushed += int64(n)
	b.buf = b.buf[:0]
	b.err = err
	return err
}

// truncate cuts what was written back to size bytes.
func (b *fileBuf) truncate(size int64) error {
	if size >= b.flushed {
		b.buf = b.buf[:size-b.flushed]
		return nil
	}
	b.buf = b.buf[:0]
	if err := b.f.Truncate(size); err != nil {
		b.err = err
		return err
	}
	if _, err := b.f.Seek(size, io.SeekStart); err != nil {
		b.err = err
		return err
	}
	b.flushed, b.err = size, nil
	return nil
}

// envelopeSender is the address for the From line: the catalog's sender
// (the From header's display form) reduced to its address.
func envelopeSender(sender string) string {
	if a, err := mail.ParseAddress(sender); err == nil {
		return a.Address
	}
	if i, j := strings.IndexByte(sender, '<'), strings.LastIndexByte(sender, '>'); i >= 0 && j > i {
		return sender[i+1 : j]
	}
	return "" // FromLine writes MAILER-DAEMON
}

// statusLines returns the "Status:" and "X-Status:" header lines for
// flags, ended like the message's first line, or "" when the message does
// not start with a header field (then nothing may be put before it).
// Status: R = \Seen, O = not new; X-Status: A = \Answered, D = \Deleted,
// F = \Flagged, T = \Draft; X-Keywords: the keywords, space-separated
// (Dovecot's mbox convention).
func statusLines(head []byte, flags []string) string {
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 || !isHeaderField(head[:nl]) {
		return ""
	}
	eol := "\n"
	if nl > 0 && head[nl-1] == '\r' {
		eol = "\r\n"
	}
	has := func(f string) bool {
		for _, x := range flags {
			if strings.EqualFold(x, f) {
				return true
			}
		}
		return false
	}
	st := "O"
	if has(`\Seen`) {
		st = "RO"
	}
	var xs []byte
	for _, l := range []struct {
		flag   string
		letter byte
	}{{`\Answered`, 'A'}, {`\Deleted`, 'D'}, {`\Flagged`, 'F'}, {`\Draft`, 'T'}} {
		if has(l.flag) {
			xs = append(xs, l.letter)
		}
	}
	s := "Status: " + st + eol
	if len(xs) > 0 {
		s += "X-Status: " + string(xs) + eol
	}
	var kws []string
	for _, f := range flags {
		if f != "" && f[0] != '\\' {
			kws = append(kws, f)
		}
	}
	if len(kws) > 0 {
		s += "X-Keywords: " + strings.Join(kws, " ") + eol
	}
	return s
}

// isHeaderField reports whether line starts with "name:" (RFC 5322 ftext).
func isHeaderField(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
