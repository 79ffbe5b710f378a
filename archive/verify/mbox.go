package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// mboxFolder verifies one folder of an mbox archive.
func (v *verifier) mboxFolder(f *catalog.Folder) error {
	s := &mboxScan{v: v, f: f, codec: v.a.Format.Codec(), buf: make([]byte, 64<<10), h: sha256.New()}
	defer s.closeStream()
	committed, n := f.CommittedSize, 0
	err := eachMsg(v.ctx, v.a.Cat, f, func(m *msg, c int64) error {
		committed = c
		n++
		if err := v.canceled(); err != nil {
			return err
		}
		s.check(m)
		return nil
	})
	if err != nil {
		return err
	}
	s.finishFile(committed)
	v.mboxFile(f, committed, n)
	return nil
}

// mboxFile checks the folder's file against its committed size.
func (v *verifier) mboxFile(f *catalog.Folder, committed int64, msgs int) {
	st, err := safefs.StatRegular(v.a.Dir, f.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if committed > 0 && msgs == 0 { // otherwise each message says so
			v.add(Finding{Folder: f.Name, File: f.Path, Kind: Missing, Detail: fmt.Sprintf("the mbox file is missing (%d bytes were committed)", committed)}, true)
		}
	case err != nil:
		v.add(Finding{Folder: f.Name, File: f.Path, Kind: Unreadable, Detail: err.Error()}, true)
	case !st.Mode().IsRegular():
		v.add(Finding{Folder: f.Name, File: f.Path, Kind: Unreadable, Detail: "not a regular file"}, true)
	case st.Size() < committed:
		v.add(Finding{Folder: f.Name, File: f.Path, Kind: Truncated, Detail: fmt.Sprintf("the file is %d bytes but %d were committed: data is lost", st.Size(), committed)}, true)
	case st.Size() > committed:
		why := "no backup is pending, so mailkeep did not write them: look at them before the next backup, which cuts them off"
		if v.isPending() {
			why = "left by a backup that is running or was interrupted; the next backup cuts them off"
		}
		v.add(Finding{Folder: f.Name, File: f.Path, Kind: Tail, Detail: fmt.Sprintf("%d bytes past the committed size %d: %s", st.Size()-committed, committed, why)}, !v.pending)
	}
}

// mboxScan reads one folder's messages in storage order.
type mboxScan struct {
	v     *verifier
	f     *catalog.Folder
	codec mboxfile.Codec
	buf   []byte
	h     hash.Hash

	file    string // current file, relative to the archive
	size    int64  // its size; -1 when it cannot be read
	sizeErr string

	st   *stream // open stream, positioned after prev
	prev *msg

	gapAfter *msg // a verified message followed by bytes the catalog does not list

	skipping  bool // after a decompression error: the rest of skipFrame is lost
	skipFrame int64
	skipCause string
}

// stream is a decompressed mbox file read from a recorded position.
type stream struct {
	rc  io.ReadCloser
	rec *errRecorder
	dec *mboxrd.Decoder
}

// errRecorder remembers an error of the decompressor or the file, to tell
// damaged data from a message that merely does not match.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// failed reports whether err is the file's or decompressor's own error.
// One seen only by read-ahead (a frame checksum after good data) is not:
// the bytes before it may still verify.
func (e *errRecorder) failed(err error) bool {
	return e.err != nil && errors.Is(err, e.err)
}

// result is the outcome of reading one message.
type result struct {
	kind      Kind // "" when the message verified
	detail    string
	decodeErr bool // the file or decompressor failed: the rest of the frame is lost
	broken    bool // the message verified but the stream cannot go on
	gap       bool // ... because the file holds more bytes after the message
}

func (r result) ok() bool { return r.kind == "" }

func (s *mboxScan) closeStream() {
	if s.st != nil {
		s.st.rc.Close()
		s.st, s.prev = nil, nil
	}
}

func (s *mboxScan) openFile(file string) {
	s.file, s.size, s.sizeErr = file, -1, ""
	s.skipping = false
	st, err := safefs.StatRegular(s.v.a.Dir, file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.sizeErr = "the mbox file is missing"
	case err != nil:
		s.sizeErr = err.Error()
	case !st.Mode().IsRegular():
		s.sizeErr = "the mbox file is not a regular file"
	default:
		s.size = st.Size()
	}
}

// check verifies one message.
func (s *mboxScan) check(m *msg) {
	defer s.v.checked(s.f.Name, m.size)
	if m.file != s.file {
		s.finishFile(-1)
		s.openFile(m.file)
	}
	if s.skipping && m.frameOffset == s.skipFrame {
		s.report(m, result{kind: Unreadable, detail: fmt.Sprintf("the frame at offset %d is damaged before this message (%s)", m.frameOffset, s.skipCause)})
		return
	}
	s.skipping = false
	switch {
	case s.size < 0:
		s.report(m, result{kind: Missing, detail: s.sizeErr})
		return
	case m.frameOffset >= s.size:
		s.report(m, result{kind: Missing, detail: fmt.Sprintf("stored at offset %d, past the end of the file (%d bytes)", m.frameOffset, s.size)})
		return
	}
	gap := s.gapAfter
	s.gapAfter = nil
	if s.st != nil && m.after(s.prev) {
		prev := s.prev
		res := s.read(m)
		if res.ok() {
			s.advance(m, res)
			return
		}
		// Read again from the message's own position: a damaged message
		// fails again, a stream that lost its place does not.
		s.closeStream()
		fresh := s.readFresh(m)
		if fresh.ok() {
			s.gap(fmt.Sprintf("between %s and %s the file holds data the catalog does not list, or damage outside any message (reading on from %s: %s); both messages verify", prev.name(), m.name(), prev.name(), res.detail))
			s.advance(m, fresh)
			return
		}
		s.fail(m, fresh)
		return
	}
	s.closeStream()
	res := s.readFresh(m)
	if !res.ok() {
		s.fail(m, res) // explains the bytes after gap too
		return
	}
	if gap != nil && m.after(gap) {
		s.gap(fmt.Sprintf("between %s and %s the file holds bytes the catalog does not list; both messages verify", gap.name(), m.name()))
	}
	s.advance(m, res)
}

func (m *msg) name() string {
	if m.uidl != "" {
		return fmt.Sprintf("uidl %q", m.uidl)
	}
	return fmt.Sprintf("uid %d", m.uid)
}

// advance records a verified message.
func (s *mboxScan) advance(m *msg, res result) {
	s.prev = m
	if res.gap {
		s.gapAfter = m
	}
	if res.broken {
		s.closeStream()
	}
}

// fail reports m and decides where reading goes on: after a decompression
// error, at the next frame; otherwise at the next message's position.
func (s *mboxScan) fail(m *msg, res result) {
	s.report(m, res)
	s.closeStream()
	if res.decodeErr && s.codec != mboxfile.CodecNone {
		s.skipping, s.skipFrame, s.skipCause = true, m.frameOffset, res.detail
	}
}

// gap reports data between messages: no message is damaged, so the
// finding names none (its detail names the neighbours).
func (s *mboxScan) gap(detail string) {
	s.v.add(Finding{Folder: s.f.Name, File: s.file, Kind: Gap, Detail: detail}, true)
}

func (s *mboxScan) report(m *msg, res result) {
	s.v.add(m.finding(s.f, res.kind, res.detail), true)
}

// readFresh opens the file at m's recorded position and reads m.
func (s *mboxScan) readFresh(m *msg) result {
	rc, err := mboxfile.OpenReaderIn(s.v.a.Dir, m.file, s.codec, mboxfile.Pos{FrameOffset: m.frameOffset, Offset: m.framePos})
	if err != nil {
		return result{kind: Unreadable, detail: err.Error(), decodeErr: true}
	}
	rec := &errRecorder{r: rc}
	s.st = &stream{rc: rc, rec: rec, dec: mboxrd.NewDecoder(rec)}
	res := s.read(m)
	if !res.ok() {
		s.closeStream()
	}
	return res
}

// read reads the next message of the stream as m: its From line, exactly
// m.size bytes that must hash to m.sha, and then the end of the message.
func (s *mboxScan) read(m *msg) result {
	st := s.st
	_, _, body, err := st.dec.Next()
	switch {
	case err == io.EOF:
		return result{kind: Missing, detail: "the file ends before this message"}
	case err != nil && st.rec.failed(err):
		return result{kind: Unreadable, detail: err.Error(), decodeErr: true}
	case err != nil:
		return result{kind: Unreadable, detail: fmt.Sprintf("no mbox message where the catalog places it: %v", err)}
	}
	s.h.Reset()
	lw := &lastByte{w: s.h}
	n, err := io.CopyBuffer(lw, io.LimitReader(body, m.size), s.buf)
	if err != nil {
		return result{kind: Unreadable, detail: fmt.Sprintf("after %d of %d bytes: %v", n, m.size, err), decodeErr: st.rec.failed(err)}
	}
	if n < m.size {
		return result{kind: Size, detail: fmt.Sprintf("the file holds %d of its %d bytes", n, m.size)}
	}
	if sum := hex.EncodeToString(s.h.Sum(nil)); sum != m.sha {
		return result{kind: Checksum, detail: fmt.Sprintf("the bytes read back hash to %s, the catalog says %s", sum, m.sha)}
	}
	// mbox adds a newline to a message that lacks a final one; anything
	// more means the message in the file is longer than catalogued.
	var more [2]byte
	k, err := io.ReadFull(body, more[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return result{broken: true}
	}
	if k == 2 || k == 1 && (more[0] != '\n' || m.size > 0 && lw.last == '\n') {
		// Its own bytes verify; the next message (or the end of the
		// file) tells whether those bytes are damage or extra data.
		return result{broken: true, gap: true}
	}
	return result{}
}

// finishFile ends the current file: when the stream is still in step and
// the file has no uncommitted tail, nothing may follow the last message.
// committed < 0: unknown (not the folder's own file).
func (s *mboxScan) finishFile(committed int64) {
	defer s.closeStream()
	if g := s.gapAfter; g != nil && g.file == s.file {
		s.gapAfter = nil
		s.gap(fmt.Sprintf("after %s the file holds bytes the catalog does not list; the message itself verifies", g.name()))
		return
	}
	if s.st == nil || s.prev == nil || committed < 0 || s.size != committed || s.v.isPending() || s.file != s.f.Path {
		return
	}
	_, date, _, err := s.st.dec.Next()
	switch {
	case err == nil:
		s.gap(fmt.Sprintf("after %s, the last catalogued message, the file holds a message the catalog does not list (From line dated %s)", s.prev.name(), date.Format("2006-01-02 15:04:05")))
	case err != io.EOF:
		s.v.add(Finding{Folder: s.f.Name, File: s.file, Kind: Unreadable, Detail: fmt.Sprintf("damaged data after %s, the last catalogued message: %v", s.prev.name(), err)}, true)
	}
}

// lastByte passes writes on and remembers the last byte written.
type lastByte struct {
	w    io.Writer
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.last = p[len(p)-1]
	}
	return l.w.Write(p)
}
