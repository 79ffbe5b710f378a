// Package mboxfile is an append-only file of independent frames: zstd
// frames or gzip members holding a few MB of data each, or plain bytes.
// Concatenated frames decode as one stream, so a reader can start at any
// frame and read on; a writer only ever appends. The caller records the
// "committed" size after each Sync and passes it back to OpenAppend, which
// first truncates anything past it: a torn frame from a killed process
// never becomes visible.
package mboxfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Codec is how frames are compressed.
type Codec string

// The codecs.
const (
	CodecZstd Codec = "zstd"
	CodecGzip Codec = "gzip"
	CodecNone Codec = "none"
)

// ErrShort means the file is shorter than its committed size: data that was
// durable is gone.
var ErrShort = errors.New("file is shorter than its committed size")

// Pos locates a byte of the decompressed stream: the file offset of its
// frame and the offset inside the frame's decompressed data. For CodecNone
// FrameOffset is the file offset and Offset is 0.
type Pos struct{ FrameOffset, Offset int64 }

// Options configure a Writer.
type Options struct {
	Codec     Codec
	FrameSize int // decompressed bytes per frame, default 4 MiB
}

// Writer appends frames to a file.
type Writer struct {
	f         *os.File
	path      string
	opt       Options
	bw        *bufio.Writer
	cw        countWriter // counts bytes given to bw: the file offset
	committed int64
	newFile   bool

	zenc     *zstd.Encoder
	genc     *gzip.Writer
	enc      io.WriteCloser // current frame's encoder, nil between frames
	frameOff int64
	frameLen int64
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

// OpenAppend opens path for appending after committed bytes, creating it
// (and its directories) when missing, and truncating anything beyond
// committed.
func OpenAppend(path string, committed int64, opt Options) (*Writer, error) {
	if opt.FrameSize <= 0 {
		opt.FrameSize = 4 << 20
	}
	if opt.Codec == "" {
		opt.Codec = CodecZstd
	}
	newFile := false
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if committed > 0 {
			return nil, fmt.Errorf("%s: missing, but %d bytes were committed: %w", path, committed, ErrShort)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		newFile = true
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case st.Size() < committed:
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, %d committed: %w", path, st.Size(), committed, ErrShort)
	case st.Size() > committed:
		if err := f.Truncate(committed); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(committed, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{f: f, path: path, opt: opt, committed: committed, newFile: newFile}
	w.bw = bufio.NewWriterSize(f, 256<<10)
	w.cw = countWriter{w: w.bw, n: committed}
	return w, nil
}

// Pos returns where the next written byte will be.
func (w *Writer) Pos() Pos {
	if w.opt.Codec == CodecNone {
		return Pos{FrameOffset: w.cw.n}
	}
	if w.enc == nil {
		return Pos{FrameOffset: w.cw.n}
	}
	return Pos{FrameOffset: w.frameOff, Offset: w.frameLen}
}

func (w *Writer) startFrame() error {
	w.frameOff, w.frameLen = w.cw.n, 0
	switch w.opt.Codec {
	case CodecZstd:
		if w.zenc == nil {
			enc, err := zstd.NewWriter(&w.cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2),
				zstd.WithWindowSize(1<<22), zstd.WithLowerEncoderMem(true))
			if err != nil {
				return err
			}
			w.zenc = enc
		} else {
			w.zenc.Reset(&w.cw)
		}
		w.enc = w.zenc
	case CodecGzip:
		if w.genc == nil {
			enc, err := gzip.NewWriterLevel(&w.cw, gzip.BestSpeed)
			if err != nil {
				return err
			}
			w.genc = enc
		} else {
			w.genc.Reset(&w.cw)
		}
		w.enc = w.genc
	}
	return nil
}

func (w *Writer) endFrame() error {
	if w.enc == nil {
		return nil
	}
	err := w.enc.Close()
	w.enc = nil
	return err
}

// Write appends p, closing a frame whenever it reaches FrameSize (even in
// the middle of a message) and starting the next.
func (w *Writer) Write(p []byte) (int, error) {
	if w.opt.Codec == CodecNone {
		return w.cw.Write(p)
	}
	n := 0
	for len(p) > 0 {
		if w.enc == nil {
			if err := w.startFrame(); err != nil {
				return n, err
			}
		}
		k := min(len(p), w.opt.FrameSize-int(w.frameLen))
		m, err := w.enc.Write(p[:k])
		n += m
		w.frameLen += int64(m)
		if err != nil {
			return n, err
		}
		p = p[k:]
		if w.frameLen >= int64(w.opt.FrameSize) {
			if err := w.endFrame(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Sync closes the open frame, writes everything and fsyncs the file (and,
// for a new file, its directory). It returns the file size: a safe point
// to truncate back to.
func (w *Writer) Sync() (int64, error) {
	if err := w.endFrame(); err != nil {
		return 0, err
	}
	if err := w.bw.Flush(); err != nil {
		return 0, err
	}
	if err := w.f.Sync(); err != nil {
		return 0, err
	}
	if w.newFile {
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			return 0, err
		}
		w.newFile = false
	}
	w.committed = w.cw.n
	return w.committed, nil
}

// Abort drops everything written since the last Sync.
func (w *Writer) Abort() error {
	w.enc = nil
	w.bw.Reset(w.f)
	w.cw.n = w.committed
	if err := w.f.Truncate(w.committed); err != nil {
		return err
	}
	_, err := w.f.Seek(w.committed, io.SeekStart)
	return err
}

// Close drops unsynced data and closes the file.
func (w *Writer) Close() error {
	err := w.Abort()
	if w.zenc != nil {
		w.zenc.Reset(io.Discard)
		w.zenc.Close()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenReader returns the decompressed stream from pos to the end of the
// file. Memory is bounded: one frame window at a time.
func OpenReader(path string, codec Codec, pos Pos) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(pos.FrameOffset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(f, 128<<10)
	var r io.Reader
	var closeDec func()
	switch codec {
	case CodecZstd:
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			f.Close()
			return nil, err
		}
		r, closeDec = d, d.Close
	case CodecGzip:
		g, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s at %d: %w", path, pos.FrameOffset, err)
		}
		r, closeDec = g, func() { g.Close() }
	default:
		r, closeDec = br, func() {}
	}
	if pos.Offset > 0 {
		if _, err := io.CopyN(io.Discard, r, pos.Offset); err != nil {
			closeDec()
			f.Close()
			return nil, fmt.Errorf("%s at %d+%d: %w", path, pos.FrameOffset, pos.Offset, err)
		}
	}
	return &reader{Reader: r, close: func() error { closeDec(); return f.Close() }}, nil
}

type reader struct {
	io.Reader
	close func() error
}

func (r *reader) Close() error { return r.close() }
