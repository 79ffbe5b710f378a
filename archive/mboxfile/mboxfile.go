// Package mboxfile is an append-only file of independent frames: zstd
// frames or gzip members of a few MB of data each, or plain bytes.
//
// Concatenated zstd frames (gzip members) decode as one stream, so zstdcat
// (zcat) reads the whole file and a reader can also start at any frame and
// read on. A Writer only appends, never rewriting a byte that is there. The
// caller records the size Sync returns ("committed") and passes it back to
// OpenAppend, which first cuts off whatever lies past it: a frame torn by a
// crash, or data written after the last Sync, never becomes visible.
package mboxfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// Codec is how the frames of a file are compressed.
type Codec string

// The codecs. An empty Codec means CodecZstd.
const (
	CodecZstd Codec = "zstd"
	CodecGzip Codec = "gzip"
	CodecNone Codec = "none"
)

func (c Codec) check() (Codec, error) {
	switch c {
	case "":
		return CodecZstd, nil
	case CodecZstd, CodecGzip, CodecNone:
		return c, nil
	}
	return c, fmt.Errorf("mboxfile: unknown codec %q", string(c))
}

// ErrShort means a file is shorter than its committed size: data that was
// durable is gone.
var ErrShort = errors.New("file is shorter than its committed size")

// ErrClosed is returned by the methods of a closed Writer.
var ErrClosed = errors.New("mboxfile: writer closed")

// Pos locates a byte of the decompressed stream: the file offset of the
// frame that holds it and the offset inside that frame's decompressed data.
// For CodecNone FrameOffset is the file offset and Offset is 0.
type Pos struct{ FrameOffset, Offset int64 }

// Options configure a Writer.
type Options struct {
	Codec Codec // CodecZstd when empty
	// FrameSize is the decompressed size at which a frame is closed and
	// the next begins; 4 MiB when 0. It bounds what a reader decompresses
	// and drops to reach a Pos.
	FrameSize int
	// Level is the compression level in the codec's own terms: zstd 1-22
	// (mapped to the nearest of klauspost's four levels: 1-2 SpeedFastest,
	// 3-5 SpeedDefault, 6-9 SpeedBetterCompression, 10+
	// SpeedBestCompression), gzip -3 to 9. 0 means the default: zstd
	// SpeedFastest, gzip BestSpeed. Every zstd level entropy-codes blocks
	// without matches, such as base64 attachments (bench
	// BenchmarkCompression: the corpus to 51.7% of the mail instead of
	// 63.1%, attachments to 52.5% instead of 64.9%, for 24% more CPU);
	// a negative zstd level is SpeedFastest with raw literals (the
	// earlier default), for CPU-starved machines.
	Level int
	// Root is the trusted directory (the archive) that path lies below:
	// no directory between Root and the file may be a symlink, and
	// missing ones are created below Root only. Empty means the nearest
	// existing directory above the file. Either way the file itself is never a symlink or a
	// special file (*safefs.UnsafeError).
	Root string
}

const (
	defaultFrameSize = 4 << 20
	zstdWindow       = 4 << 20 // encoder window: bounds writer and reader memory
	maxReadWindow    = 8 << 20 // largest window a reader accepts
	writeBuffer      = 256 << 10
	readBuffer       = 128 << 10
)

// Writer appends frames to a file. It is not safe for concurrent use.
type Writer struct {
	f         *os.File
	path      string
	opt       Options
	bw        *bufio.Writer
	cw        countWriter // counts the bytes given to bw: the file offset
	committed int64
	root      string   // the trusted directory; syncDirs and rel are below it
	syncDirs  []string // directories created with the file, synced at the first Sync (relative to root)
	err       error    // sticky until Abort

	zenc     *zstd.Encoder
	zkey     encKey // zenc's pool
	genc     *gzip.Writer
	enc      io.WriteCloser // encoder of the open frame; nil between frames
	frameOff int64          // file offset of the open frame
	frameLen int64          // bytes written into the open frame
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

// OpenAppend opens path for appending after committed bytes. A missing
// file is created (mode 0600, with missing parent directories, mode 0700)
// when committed is 0. A file longer than committed is truncated to it and
// fsynced; a shorter one (or a missing one when committed > 0) gives an
// error wrapping ErrShort and is left as it is.
func OpenAppend(path string, committed int64, opt Options) (*Writer, error) {
	codec, err := opt.Codec.check()
	if err != nil {
		return nil, err
	}
	opt.Codec = codec
	if opt.FrameSize <= 0 {
		opt.FrameSize = defaultFrameSize
	}
	if committed < 0 {
		return nil, fmt.Errorf("mboxfile %s: negative committed size %d", path, committed)
	}
	w := &Writer{path: path, opt: opt, committed: committed}
	if err := w.newEncoder(); err != nil { // checks the options before the file is touched
		return nil, fmt.Errorf("mboxfile %s: %w", path, err)
	}
	root, rel, err := split(opt.Root, path)
	if err != nil {
		return nil, fmt.Errorf("mboxfile %s: %w", path, err)
	}
	var syncDirs []string
	if _, err := safefs.Lstat(root, rel); errors.Is(err, os.ErrNotExist) {
		if committed > 0 {
			return nil, fmt.Errorf("mboxfile %s: missing, but %d bytes were committed: %w", path, committed, ErrShort)
		}
		var changed []string
		if err := safefs.MkdirAll(root, filepath.Dir(rel), 0o700, &changed); err != nil {
			return nil, fmt.Errorf("mboxfile %s: %w", path, err)
		}
		// The file's directory gets a new entry; each created directory's
		// parent got one.
		syncDirs = append(syncDirs, filepath.Dir(rel))
		for _, d := range changed {
			r, err := safefs.Rel(root, d)
			if err != nil {
				return nil, fmt.Errorf("mboxfile %s: %w", path, err)
			}
			syncDirs = append(syncDirs, r)
		}
	} else if err != nil {
		return nil, fmt.Errorf("mboxfile %s: %w", path, err)
	}
	f, err := safefs.OpenFile(root, rel, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mboxfile: %w", err)
	}
	fail := func(format string, args ...any) (*Writer, error) {
		f.Close()
		return nil, fmt.Errorf("mboxfile %s: "+format, append([]any{path}, args...)...)
	}
	st, err := f.Stat()
	if err != nil {
		return fail("%w", err)
	}
	if !st.Mode().IsRegular() {
		return fail("not a regular file")
	}
	switch {
	case st.Size() < committed:
		return fail("%d bytes on disk, %d committed: %w", st.Size(), committed, ErrShort)
	case st.Size() > committed:
		if err := f.Truncate(committed); err != nil {
			return fail("cutting an uncommitted tail of %d bytes: %w", st.Size()-committed, err)
		}
		if err := f.Sync(); err != nil {
			return fail("%w", err)
		}
	}
	if _, err := f.Seek(committed, io.SeekStart); err != nil {
		return fail("%w", err)
	}
	w.f, w.syncDirs, w.root = f, syncDirs, root
	w.bw = writeBuffers.Get().(*bufio.Writer)
	w.bw.Reset(f)
	w.cw = countWriter{w: w.bw, n: committed}
	return w, nil
}

// split returns the trusted root and path relative to it.
func split(root, path string) (string, string, error) {
	if root == "" {
		// The nearest existing directory above path is trusted.
		root = filepath.Dir(path)
		for {
			if _, err := os.Stat(root); err == nil || filepath.Dir(root) == root {
				break
			}
			root = filepath.Dir(root)
		}
	}
	rel, err := safefs.Rel(root, path)
	if err != nil {
		return "", "", err
	}
	return root, rel, nil
}

func (w *Writer) newEncoder() error {
	if err := CheckLevel(w.opt.Codec, w.opt.Level); err != nil {
		return err
	}
	switch w.opt.Codec {
	case CodecZstd:
		level, allLit := zstd.SpeedFastest, true
		switch {
		case w.opt.Level < 0:
			allLit = false
		case w.opt.Level > 0:
			level = zstd.EncoderLevelFromZstd(w.opt.Level)
		}
		// Concurrency 1: blocks are compressed on the writing goroutine.
		// Concurrency 2 (each block compressed and written out on
		// goroutines of the encoder's, behind the reader) cost 5-15%
		// more CPU on the bench corpus and was slower on a busy 2-core
		// machine: the encoder's window and tables move between cores at
		// every 128 KiB block, and every block waits for a goroutine to
		// be scheduled; a backup already writes several folders at once.
		// Frames are independent, so the encoder is reused with Reset.
		w.zkey = encKey{level, allLit}
		if enc, ok := encoderPool(w.zkey).Get().(*zstd.Encoder); ok {
			w.zenc = enc
			return nil
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true), zstd.WithAllLitEntropyCompression(allLit))
		if err != nil {
			return err
		}
		w.zenc = enc
	case CodecGzip:
		level := gzip.BestSpeed
		if w.opt.Level != 0 {
			level = w.opt.Level
		}
		enc, err := gzip.NewWriterLevel(io.Discard, level)
		if err != nil {
			return err
		}
		w.genc = enc
	}
	return nil
}

// ErrLevel is returned (wrapped) for a compression level the codec does
// not have.
var ErrLevel = errors.New("compression level out of range")

// CheckLevel says whether level is an Options.Level of codec: zstd -1 to
// 22, gzip -3 to 9; 0 (the default) for every codec, and nothing else for
// CodecNone.
func CheckLevel(c Codec, level int) error {
	lo, hi := 0, 0
	switch c {
	case CodecZstd, "":
		lo, hi = -1, 22
	case CodecGzip:
		lo, hi = -3, 9
	}
	if level < lo || level > hi {
		if lo == hi {
			return fmt.Errorf("%w: the format is not compressed", ErrLevel)
		}
		return fmt.Errorf("%w: %s level %d, want %d to %d", ErrLevel, c, level, lo, hi)
	}
	return nil
}

// Pos returns where the next written byte will be.
func (w *Writer) Pos() Pos {
	if w.enc == nil {
		return Pos{FrameOffset: w.cw.n}
	}
	return Pos{FrameOffset: w.frameOff, Offset: w.frameLen}
}

func (w *Writer) startFrame() {
	w.frameOff, w.frameLen = w.cw.n, 0
	switch w.opt.Codec {
	case CodecZstd:
		w.zenc.Reset(&w.cw)
		w.enc = w.zenc
	case CodecGzip:
		w.genc.Reset(&w.cw)
		w.enc = w.genc
	}
}

func (w *Writer) endFrame() error {
	if w.enc == nil {
		return nil
	}
	err := w.enc.Close()
	w.enc = nil
	if err != nil {
		return fmt.Errorf("mboxfile %s: closing the frame at %d: %w", w.path, w.frameOff, err)
	}
	return nil
}

// Write appends p to the open frame. When the frame's decompressed size
// reaches FrameSize it is closed and a new one begins, even in the middle
// of a message (or of p). After an error the Writer refuses everything but
// Abort and Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.opt.Codec == CodecNone {
		n, err := w.cw.Write(p)
		if err != nil {
			w.err = fmt.Errorf("mboxfile %s: %w", w.path, err)
			return n, w.err
		}
		return n, nil
	}
	n := 0
	for len(p) > 0 {
		if w.enc == nil {
			w.startFrame()
		}
		k := min(len(p), w.opt.FrameSize-int(w.frameLen))
		m, err := w.enc.Write(p[:k])
		n += m
		w.frameLen += int64(m)
		if err != nil {
			w.err = fmt.Errorf("mboxfile %s: %w", w.path, err)
			return n, w.err
		}
		p = p[k:]
		if w.frameLen >= int64(w.opt.FrameSize) {
			if err := w.endFrame(); err != nil {
				w.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// Sync closes the open frame, writes out everything and fsyncs the file
// (and, the first time after OpenAppend created it, its directory and
// those created with it). It returns the file size, which is now a safe
// point to truncate back to: the caller records it as committed.
func (w *Writer) Sync() (committed int64, err error) {
	if w.err != nil {
		return 0, w.err
	}
	defer func() {
		if err != nil {
			w.err = err
		}
	}()
	if err := w.endFrame(); err != nil {
		return 0, err
	}
	if w.cw.n == w.committed && w.syncDirs == nil {
		return w.committed, nil // nothing new
	}
	if err := w.bw.Flush(); err != nil {
		return 0, fmt.Errorf("mboxfile %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return 0, fmt.Errorf("mboxfile %s: %w", w.path, err)
	}
	for _, d := range w.syncDirs {
		if err := safefs.SyncDir(w.root, d); err != nil {
			return 0, fmt.Errorf("mboxfile %s: %w", w.path, err)
		}
	}
	w.syncDirs = nil
	w.committed = w.cw.n
	return w.committed, nil
}

// Cut closes the open frame and writes out the buffer, without an fsync,
// and returns the file size: a frame boundary that SyncTo can make durable
// on another goroutine while Write goes on appending behind it. After an
// error the Writer refuses everything but Abort and Close.
func (w *Writer) Cut() (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.endFrame(); err != nil {
		w.err = err
		return 0, err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("mboxfile %s: %w", w.path, err)
		return 0, w.err
	}
	return w.cw.n, nil
}

// SyncTo fsyncs the file (and, the first time after OpenAppend created
// it, its directory and those created with it), so that its first size
// bytes, a size Cut returned, are durable; on success size is the
// committed size that Abort truncates back to. It may run on another
// goroutine while Write appends (it touches only the file and those
// fields); the caller must not call Cut, Sync, Abort or Close, nor SyncTo
// again, until it has returned. An error leaves the committed size as it
// was and is not sticky: the caller Aborts.
func (w *Writer) SyncTo(size int64) error {
	if size < w.committed {
		return fmt.Errorf("mboxfile %s: sync to %d, below the committed %d", w.path, size, w.committed)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("mboxfile %s: %w", w.path, err)
	}
	for _, d := range w.syncDirs {
		if err := safefs.SyncDir(w.root, d); err != nil {
			return fmt.Errorf("mboxfile %s: %w", w.path, err)
		}
	}
	w.syncDirs = nil
	w.committed = size
	return nil
}

// Abort drops everything written since the last Sync (or OpenAppend): the
// file is truncated back to the committed size and the encoder starts
// afresh, whether or not frames were closed in between. It clears an error
// from Write or Sync.
func (w *Writer) Abort() error {
	if w.f == nil {
		return ErrClosed
	}
	if w.enc != nil {
		// Waits for a block being compressed in the background, which
		// still writes to w.cw; the buffer is dropped after that.
		switch w.opt.Codec {
		case CodecZstd:
			w.zenc.Reset(io.Discard)
		case CodecGzip:
			w.genc.Reset(io.Discard)
		}
		w.enc = nil
	}
	w.bw.Reset(w.f)
	w.cw.n = w.committed
	w.err = nil
	if err := w.f.Truncate(w.committed); err != nil {
		w.err = fmt.Errorf("mboxfile %s: abort: %w", w.path, err)
		return w.err
	}
	if _, err := w.f.Seek(w.committed, io.SeekStart); err != nil {
		w.err = fmt.Errorf("mboxfile %s: abort: %w", w.path, err)
		return w.err
	}
	return nil
}

// Close drops data written since the last Sync, as Abort does, and closes
// the file.
func (w *Writer) Close() error {
	if w.f == nil {
		return ErrClosed
	}
	err := w.Abort()
	if w.zenc != nil {
		// Every method but Abort and Close stops at w.err, which Close
		// leaves at ErrClosed, and those two at w.f == nil: the encoder
		// and the buffer go back to their pools.
		w.zenc.Reset(io.Discard)
		encoderPool(w.zkey).Put(w.zenc)
		w.zenc = nil
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("mboxfile %s: %w", w.path, cerr)
	}
	w.bw.Reset(nil)
	writeBuffers.Put(w.bw)
	w.bw = nil
	w.f = nil
	w.err = ErrClosed
	return err
}

// encoders and writeBuffers hold zstd encoders (by level and literal
// compression) and write buffers between writers: a backup opens a writer
// for each folder that has new mail, and a first backup of thousands of
// small folders allocated (and cleared) an encoder's tables and a 256 KiB
// buffer for each, most of its garbage. An encoder is Reset at each frame.
var (
	encoders     sync.Map // encKey -> *sync.Pool
	writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBuffer) }}
)

type encKey struct {
	level  zstd.EncoderLevel
	allLit bool
}

func encoderPool(k encKey) *sync.Pool {
	if p, ok := encoders.Load(k); ok {
		return p.(*sync.Pool)
	}
	p, _ := encoders.LoadOrStore(k, new(sync.Pool))
	return p.(*sync.Pool)
}

// OpenReader returns the decompressed stream of the file at path from pos
// on: decoding goes on across the following frames to the end of the file.
// Memory is bounded whatever the file: zstd is decoded synchronously
// (concurrency 1, low-memory mode) holding one window, and frames asking
// for a window above 8 MiB are refused (Writer uses 4 MiB); gzip holds
// 32 KiB. Reaching pos.Offset decompresses and drops at most one frame.
// The file must be a regular file, not a symlink (*safefs.UnsafeError);
// OpenReaderIn also checks the directories on the way.
func OpenReader(path string, codec Codec, pos Pos) (io.ReadCloser, error) {
	return OpenReaderIn(filepath.Dir(path), filepath.Base(path), codec, pos)
}

// OpenReaderIn is OpenReader of the file rel below the trusted directory
// root (the archive): no directory on the way may be a symlink.
func OpenReaderIn(root, rel string, codec Codec, pos Pos) (io.ReadCloser, error) {
	path := filepath.Join(root, rel)
	codec, err := codec.check()
	if err != nil {
		return nil, err
	}
	if pos.FrameOffset < 0 || pos.Offset < 0 {
		return nil, fmt.Errorf("mboxfile %s: bad position %+v", path, pos)
	}
	f, err := safefs.Open(root, rel)
	if err != nil {
		return nil, fmt.Errorf("mboxfile: %w", err)
	}
	start := pos.FrameOffset
	if codec == CodecNone {
		start += pos.Offset
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("mboxfile %s: %w", path, err)
	}
	rd := &reader{f: f, path: path, pos: pos}
	br := bufio.NewReaderSize(f, readBuffer)
	switch codec {
	case CodecZstd:
		d, err := getDecoder(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("mboxfile %s: %w", path, err)
		}
		rd.r, rd.dec = d, func() { putDecoder(d) }
	case CodecGzip:
		g, err := gzip.NewReader(br)
		switch {
		case err == io.EOF: // at the end of the file: an empty stream
			rd.r = br
		case err != nil:
			f.Close()
			return nil, fmt.Errorf("mboxfile %s: frame at %d: %w", path, pos.FrameOffset, err)
		default:
			rd.r, rd.dec = g, func() { g.Close() }
		}
	default:
		rd.r = br
	}
	if codec != CodecNone && pos.Offset > 0 {
		if _, err := io.CopyN(io.Discard, rd.r, pos.Offset); err != nil {
			rd.Close()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("mboxfile %s: skipping to %d in the frame at %d: %w", path, pos.Offset, pos.FrameOffset, err)
		}
	}
	return rd, nil
}

// decoders holds zstd decoders between readers: a new one allocates and
// clears its window buffers, which cost more than reading the few messages
// of a small folder (verify and export open a reader per folder).
var decoders sync.Pool

func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err == nil {
			return d, nil
		}
		d.Close()
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxReadWindow))
}

// putDecoder keeps d for the next reader, holding no reference to its
// input.
func putDecoder(d *zstd.Decoder) {
	if err := d.Reset(nil); err != nil {
		d.Close()
		return
	}
	decoders.Put(d)
}

type reader struct {
	f    *os.File
	path string
	pos  Pos
	r    io.Reader
	dec  func()
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("mboxfile %s: reading from frame %d: %w", r.path, r.pos.FrameOffset, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.dec != nil {
		r.dec()
		r.dec = nil
	}
	return r.f.Close()
}
