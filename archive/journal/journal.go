// Package journal is the catalog's redo log: an append-only file of
// checksummed lines beside the catalog, written and fsynced before every
// catalog transaction commits. It holds, for each transaction, the complete
// rows the transaction wrote, so that everything the catalog alone knows
// (UIDVALIDITY and UID, POP3 UIDL, flags and keywords, expunge state, runs)
// survives the loss of the catalog: the catalog can be rebuilt by replaying
// the journal (and the mail files, which remain the truth for what is
// stored).
//
// A line is eight hex digits of the CRC-32C of the payload, a space, the
// payload (one JSON object, no newline) and "\n". A transaction is one or
// more lines; all but the last carry "more": true. A line whose checksum
// fails (a write torn by a crash, a damaged block) is skipped by readers
// and counted; a transaction whose last line never arrived is not applied.
//
// The format is deliberately plain text: it can be read with grep and jq
// when nothing else is left.
package journal

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// MaxLine bounds one line of the journal. Writers split a transaction into
// lines of at most a few MB; a longer line is damage.
const MaxLine = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrDamaged is wrapped by errors about lines that cannot be read.
var ErrDamaged = errors.New("journal line damaged")

// Writer appends transactions to a journal file.
type Writer struct {
	f     *os.File
	path  string
	size  int64
	dirty bool // a write failed part-way: the next line must start fresh
}

// OpenWriter opens (creating, mode 0600) the journal at path for appending.
// It refuses a symlink or a non-regular file. When the file does not end
// with a newline (a write torn by a crash), the next line starts on a new
// line: the torn bytes stay, and readers skip them.
func OpenWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|openNoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("journal %s: not a regular file", path)
	}
	w := &Writer{f: f, path: path, size: st.Size()}
	if w.size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], w.size-1); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
		w.dirty = last[0] != '\n'
	}
	return w, nil
}

// Size is the journal's length: the offset after the last line written.
func (w *Writer) Size() int64 { return w.size }

// Path is the journal file's path.
func (w *Writer) Path() string { return w.path }

// Append writes one transaction (its lines' payloads, in order) and makes
// it durable. It returns the journal's size after it.
func (w *Writer) Append(payloads [][]byte) (int64, error) {
	var buf bytes.Buffer
	if w.dirty {
		buf.WriteByte('\n')
	}
	for _, p := range payloads {
		if bytes.IndexByte(p, '\n') >= 0 {
			return w.size, fmt.Errorf("journal %s: payload holds a newline", w.path)
		}
		writeLine(&buf, p)
	}
	n, err := w.f.Write(buf.Bytes())
	w.size += int64(n)
	if err != nil {
		w.dirty = true
		return w.size, fmt.Errorf("journal %s: %w", w.path, err)
	}
	w.dirty = false
	if err := w.f.Sync(); err != nil {
		return w.size, fmt.Errorf("journal %s: sync: %w", w.path, err)
	}
	return w.size, nil
}

func writeLine(buf *bytes.Buffer, p []byte) {
	var sum [4]byte
	c := crc32.Checksum(p, castagnoli)
	sum[0], sum[1], sum[2], sum[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	var hx [8]byte
	hex.Encode(hx[:], sum[:])
	buf.Write(hx[:])
	buf.WriteByte(' ')
	buf.Write(p)
	buf.WriteByte('\n')
}

// Encode returns the bytes of a journal holding one transaction: for
// writing a whole new journal (a snapshot) through a temporary file.
func Encode(payloads [][]byte) []byte {
	var buf bytes.Buffer
	for _, p := range payloads {
		writeLine(&buf, p)
	}
	return buf.Bytes()
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Line is one line of a journal as Read gives it.
type Line struct {
	Offset  int64  // where the line starts
	End     int64  // the offset after its newline
	Payload []byte // valid until the callback returns
}

// Stats counts what Read passed over.
type Stats struct {
	Lines   int // good lines
	Damaged int // lines whose checksum or form is wrong
	Torn    bool
}

// Read calls fn for every good line of the journal at path from offset on,
// in order, skipping damaged ones (counted in Stats). A last line without
// its newline is torn: it is skipped and Stats.Torn is set.
func Read(path string, from int64, fn func(Line) error) (Stats, error) {
	var st Stats
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return st, fmt.Errorf("journal %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return st, fmt.Errorf("journal %s: %w", path, err)
	} else if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("journal %s: not a regular file", path)
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return st, fmt.Errorf("journal %s: %w", path, err)
	}
	return readLines(f, from, fn)
}

func readLines(r io.Reader, off int64, fn func(Line) error) (Stats, error) {
	var st Stats
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > MaxLine {
				// Skip the rest of an overlong line.
				n := int64(len(long) + len(chunk))
				long = nil
				for errors.Is(err, bufio.ErrBufferFull) {
					chunk, err = br.ReadSlice('\n')
					n += int64(len(chunk))
				}
				off += n
				if err == nil {
					st.Damaged++
					continue
				}
				if err == io.EOF {
					st.Torn = true
					return st, nil
				}
				return st, err
			}
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err == io.EOF {
			if len(line) > 0 {
				st.Torn = true
			}
			return st, nil
		}
		if err != nil {
			return st, err
		}
		start := off
		off += int64(len(line))
		p, ok := check(line)
		if !ok {
			if len(bytes.TrimSpace(line)) > 0 {
				st.Damaged++
			}
			continue
		}
		st.Lines++
		if err := fn(Line{Offset: start, End: off, Payload: p}); err != nil {
			return st, err
		}
	}
}

// check verifies a line's checksum and returns its payload.
func check(line []byte) ([]byte, bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) < 10 || line[8] != ' ' {
		return nil, false
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return nil, false
	}
	p := line[9:]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	return p, crc32.Checksum(p, castagnoli) == want
}
