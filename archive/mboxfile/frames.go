package mboxfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// ErrTorn is wrapped by a StreamReader's error for a last frame that ends before its
// own structure says it should: a frame a crash cut short.
var ErrTorn = errors.New("the last frame is torn")

// Frame is where a frame starts: its file offset and the offset of its
// first byte in the decompressed stream of the whole file.
type Frame struct {
	Offset int64
	Base   int64
}

// StreamReader reads a whole file's decompressed stream front to back,
// frame by frame, and remembers where each frame starts, so that a caller
// can turn an offset of the stream into a Pos. Memory is bounded as for
// OpenReader. It never follows a symlink and refuses a file that is not
// regular.
type StreamReader struct {
	f     *os.File
	path  string
	codec Codec
	size  int64

	cur      io.Reader // the open frame's decompressed bytes; nil between frames
	next     int64     // file offset of the next frame
	curEnd   int64     // file offset after the open frame (zstd, none)
	base     int64     // decompressed bytes given out so far
	frames   []Frame
	goodEnd  int64 // offset after the last frame read to its end
	err      error // sticky
	zdec     *zstd.Decoder
	gz       *gzip.Reader
	cr       *countingReader
	curStart int64
}

// NewStreamReader opens the file rel below root (safefs: no symlink or
// special file on the way) for reading its frames in order.
func NewStreamReader(root, rel string, codec Codec) (*StreamReader, error) {
	codec, err := codec.check()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, rel)
	f, err := safefs.Open(root, rel)
	if err != nil {
		return nil, fmt.Errorf("mboxfile: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mboxfile %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("mboxfile %s: not a regular file", path)
	}
	s := &StreamReader{f: f, path: path, codec: codec, size: st.Size()}
	if codec == CodecGzip {
		s.cr = &countingReader{br: bufio.NewReaderSize(io.NewSectionReader(f, 0, s.size), readBuffer)}
	}
	return s, nil
}

// Size is the file's size when it was opened.
func (s *StreamReader) Size() int64 { return s.size }

// GoodEnd is the file offset just past the last frame read to its end
// without error.
func (s *StreamReader) GoodEnd() int64 { return s.goodEnd }

// Pos returns the position of the decompressed stream's byte at off, which
// must have been read already.
func (s *StreamReader) Pos(off int64) Pos {
	i := sort.Search(len(s.frames), func(i int) bool { return s.frames[i].Base > off }) - 1
	if i < 0 {
		i = 0
	}
	fr := s.frames[i]
	if s.codec == CodecNone {
		return Pos{FrameOffset: off}
	}
	return Pos{FrameOffset: fr.Offset, Offset: off - fr.Base}
}

// Read reads the decompressed stream. An error names the frame; reading
// stops there for good.
func (s *StreamReader) Read(p []byte) (int, error) {
	for {
		if s.err != nil {
			return 0, s.err
		}
		if s.cur == nil {
			if err := s.open(); err != nil {
				s.err = err
				return 0, err
			}
		}
		n, err := s.cur.Read(p)
		s.base += int64(n)
		switch {
		case err == io.EOF:
			s.cur = nil
			if s.codec == CodecGzip {
				s.goodEnd = s.cr.n
			} else {
				s.goodEnd = s.curEnd
			}
			if n > 0 {
				return n, nil
			}
		case err != nil:
			s.err = fmt.Errorf("mboxfile %s: frame at %d: %w", s.path, s.curStart, torn(err))
			return n, s.err
		default:
			return n, nil
		}
	}
}

func (s *StreamReader) open() error {
	switch s.codec {
	case CodecNone:
		if s.next >= s.size {
			return io.EOF
		}
		s.frames = append(s.frames, Frame{Offset: 0, Base: 0})
		s.cur = bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.size), readBuffer)
		s.curStart, s.curEnd, s.next = 0, s.size, s.size
		return nil
	case CodecGzip:
		off := s.cr.n
		if off >= s.size {
			return io.EOF
		}
		var err error
		if s.gz == nil {
			s.gz, err = gzip.NewReader(s.cr)
		} else {
			err = s.gz.Reset(s.cr)
		}
		if err != nil {
			return fmt.Errorf("mboxfile %s: member at %d: %w", s.path, off, torn(err))
		}
		s.gz.Multistream(false)
		s.frames = append(s.frames, Frame{Offset: off, Base: s.base})
		s.cur, s.curStart = s.gz, off
		return nil
	}
	for {
		off := s.next
		if off >= s.size {
			return io.EOF
		}
		n, skippable, err := zstdFrameSize(io.NewSectionReader(s.f, off, s.size-off))
		if err != nil {
			return fmt.Errorf("mboxfile %s: frame at %d: %w", s.path, off, err)
		}
		s.next = off + n
		if skippable {
			s.goodEnd = s.next
			continue
		}
		if s.zdec == nil {
			s.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxReadWindow))
			if err != nil {
				return err
			}
		}
		if err := s.zdec.Reset(bufio.NewReaderSize(io.NewSectionReader(s.f, off, n), readBuffer)); err != nil {
			return fmt.Errorf("mboxfile %s: frame at %d: %w", s.path, off, err)
		}
		s.frames = append(s.frames, Frame{Offset: off, Base: s.base})
		s.cur, s.curStart, s.curEnd = s.zdec, off, off+n
		return nil
	}
}

// Close releases the file and the decoder.
func (s *StreamReader) Close() error {
	if s.zdec != nil {
		s.zdec.Close()
	}
	return s.f.Close()
}

// zstdFrameSize walks one zstd frame's header and block headers (RFC 8878)
// without decompressing it and returns its length.
func zstdFrameSize(r io.Reader) (n int64, skippable bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, false, torn(err)
	}
	magic := binary.LittleEndian.Uint32(hdr[:])
	if magic&0xFFFFFFF0 == 0x184D2A50 {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return 0, true, torn(err)
		}
		sz := int64(binary.LittleEndian.Uint32(hdr[:]))
		if _, err := br.Discard(int(sz)); err != nil {
			return 0, true, torn(err)
		}
		return 8 + sz, true, nil
	}
	if magic != 0xFD2FB528 {
		return 0, false, fmt.Errorf("not a zstd frame (magic %08x)", magic)
	}
	fhd, err := br.ReadByte()
	if err != nil {
		return 0, false, torn(err)
	}
	n = 5
	fcsFlag, single, checksum, dictFlag := fhd>>6, fhd>>5&1, fhd>>2&1, fhd&3
	skip := 0
	if single == 0 {
		skip++ // window descriptor
	}
	skip += []int{0, 1, 2, 4}[dictFlag]
	switch fcsFlag {
	case 0:
		skip += int(single)
	case 1:
		skip += 2
	case 2:
		skip += 4
	case 3:
		skip += 8
	}
	if _, err := br.Discard(skip); err != nil {
		return 0, false, torn(err)
	}
	n += int64(skip)
	for {
		var bh [3]byte
		if _, err := io.ReadFull(br, bh[:]); err != nil {
			return 0, false, torn(err)
		}
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last, typ, bsize := h&1, h>>1&3, int(h>>3)
		if typ == 3 {
			return 0, false, errors.New("reserved zstd block type")
		}
		if typ == 1 { // RLE: one byte stands for bsize
			bsize = 1
		}
		if _, err := br.Discard(bsize); err != nil {
			return 0, false, torn(err)
		}
		n += 3 + int64(bsize)
		if last == 1 {
			break
		}
	}
	if checksum == 1 {
		if _, err := br.Discard(4); err != nil {
			return 0, false, torn(err)
		}
		n += 4
	}
	return n, false, nil
}

func torn(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTorn
	}
	return err
}

// countingReader counts the bytes read through it. It is an io.ByteReader,
// so the gzip decoder reads exactly one member and no further.
type countingReader struct {
	br *bufio.Reader
	n  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
