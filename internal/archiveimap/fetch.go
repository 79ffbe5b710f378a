package archiveimap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// ErrTooLarge answers a FETCH item that would hold more of a message in
// memory than the configured bound.
var ErrTooLarge = errors.New("message too large for this request")

func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opt *imap.FetchOptions) error {
	snap := ss.sel
	if snap == nil {
		return noSelection()
	}
	return snap.each(numSet, func(seq uint32, e *entry) error {
		// Refuse what the bound forbids before the response starts: a
		// FETCH response cannot be taken back half written.
		if needsWhole(opt) && e.m.Size > ss.s.cfg.MaxBuffered {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: fmt.Sprintf("folder %q uid %d: %d bytes, over the %d a part section may hold", snap.mb.folder, e.uid, e.m.Size, ss.s.cfg.MaxBuffered)}
		}
		rw := w.CreateMessage(seq)
		if err := ss.fetchOne(rw, snap, e, opt); err != nil {
			err = fmt.Errorf("archive %s folder %q uid %d: %w", snap.mb.ar.a.Dir, snap.mb.folder, e.m.UID, err)
			ss.s.log.Error("serve: fetch failed mid-response: closing the connection", "err", err)
			// The client is inside a literal or a FETCH item: only
			// closing the connection tells it that this went wrong.
			ss.conn.NetConn().Close()
			return err
		}
		return rw.Close()
	})
}

// needsWhole says whether a FETCH needs messages in hand (part sections,
// BINARY), which the MaxBuffered bound limits.
func needsWhole(opt *imap.FetchOptions) bool {
	if len(opt.BinarySection) > 0 || len(opt.BinarySectionSize) > 0 {
		return true
	}
	for _, bs := range opt.BodySection {
		if len(bs.Part) > 0 || bs.Specifier == imap.PartSpecifierMIME {
			return true
		}
	}
	return false
}

// msgReader reads one message: its header once, then the rest streamed.
type msgReader struct {
	s      *Server
	ss     *session
	e      *entry
	snap   *snapshot
	header []byte // raw header with the blank line, once read (bounded)
	// headerLen is the header's full length; headerTruncated says that
	// header holds only its first MaxHeader bytes.
	headerLen       int64
	headerTruncated bool
}

func (r *msgReader) open() (io.ReadCloser, error) {
	return r.ss.open(r.snap, r.e.m)
}

// readHeader reads the header from br, through its blank line. It keeps
// at most MaxHeader bytes of it (whole lines; truncated says it dropped
// the rest) and returns its full length n.
func (r *msgReader) readHeader(br *bufio.Reader) (kept []byte, n int64, truncated bool, err error) {
	var buf bytes.Buffer
	inLine := false // the previous piece did not end a line
	for {
		line, err := br.ReadSlice('\n')
		n += int64(len(line))
		if !truncated && int64(buf.Len()+len(line)) <= r.s.cfg.MaxHeader {
			buf.Write(line)
		} else if !truncated {
			truncated = true
		}
		if err == bufio.ErrBufferFull {
			inLine = true
			continue
		}
		if err == io.EOF {
			return buf.Bytes(), n, truncated, nil
		}
		if err != nil {
			return nil, 0, false, err
		}
		if !inLine && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			return buf.Bytes(), n, truncated, nil
		}
		inLine = false
	}
}

// getHeader returns the header as readHeader keeps it.
func (r *msgReader) getHeader() ([]byte, error) {
	if r.header != nil {
		return r.header, nil
	}
	rc, err := r.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, n, trunc, err := r.readHeader(bufio.NewReader(rc))
	if err != nil {
		return nil, err
	}
	r.setHeader(h, n, trunc)
	return h, nil
}

func (r *msgReader) setHeader(h []byte, n int64, truncated bool) {
	if h == nil {
		h = []byte{}
	}
	r.header, r.headerLen, r.headerTruncated = h, n, truncated
}

// buffered opens the message for processing that needs all of it in hand,
// refusing messages above the bound.
func (r *msgReader) buffered() (io.ReadCloser, error) {
	if r.e.m.Size > r.s.cfg.MaxBuffered {
		return nil, fmt.Errorf("%d bytes, bound %d: %w", r.e.m.Size, r.s.cfg.MaxBuffered, ErrTooLarge)
	}
	return r.open()
}

func (ss *session) fetchOne(w *imapserver.FetchResponseWriter, snap *snapshot, e *entry, opt *imap.FetchOptions) error {
	s := ss.s
	w.WriteUID(e.uid)
	if opt.Flags {
		w.WriteFlags(e.flags)
	}
	if opt.InternalDate {
		w.WriteInternalDate(e.m.InternalDate)
	}
	if opt.RFC822Size {
		w.WriteRFC822Size(e.m.Size)
	}
	r := &msgReader{s: s, ss: ss, e: e, snap: snap}
	if opt.Envelope {
		h, err := r.getHeader()
		if err != nil {
			return err
		}
		w.WriteEnvelope(imapserver.ExtractEnvelope(parseHeader(h)))
	}
	if opt.BodyStructure != nil {
		rc, err := r.open()
		if err != nil {
			return err
		}
		src, err := r.lenient(rc)
		if err != nil {
			rc.Close()
			return err
		}
		bs := bodyStructure(src)
		rc.Close()
		w.WriteBodyStructure(bs)
	}
	for _, bs := range opt.BodySection {
		if err := s.fetchSection(w, r, bs); err != nil {
			return err
		}
	}
	for _, bs := range opt.BinarySection {
		rc, err := r.buffered()
		if err != nil {
			return err
		}
		buf := imapserver.ExtractBinarySection(rc, bs)
		rc.Close()
		if err := writeLiteral(w.WriteBinarySection(bs, int64(len(buf))), bytes.NewReader(buf), int64(len(buf))); err != nil {
			return err
		}
	}
	for _, bss := range opt.BinarySectionSize {
		rc, err := r.buffered()
		if err != nil {
			return err
		}
		n := imapserver.ExtractBinarySectionSize(rc, bss)
		rc.Close()
		w.WriteBinarySectionSize(bss, n)
	}
	return nil
}

// fetchSection writes one BODY[...] item: whole message, TEXT and plain
// HEADER straight from the archive (streamed), the rest with imapserver's
// MIME helpers.
func (s *Server) fetchSection(w *imapserver.FetchResponseWriter, r *msgReader, bs *imap.FetchItemBodySection) error {
	size := r.e.m.Size
	switch {
	case len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone:
		rc, err := r.open()
		if err != nil {
			return err
		}
		defer rc.Close()
		return streamPartial(w, bs, rc, size)
	case len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierText:
		rc, err := r.open()
		if err != nil {
			return err
		}
		defer rc.Close()
		br := bufio.NewReader(rc)
		h, n, trunc, err := r.readHeader(br)
		if err != nil {
			return err
		}
		r.setHeader(h, n, trunc)
		return streamPartial(w, bs, br, size-n)
	case len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierHeader:
		h, err := r.getHeader()
		if err != nil {
			return err
		}
		if len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
			if !r.headerTruncated {
				return streamPartial(w, bs, bytes.NewReader(h), int64(len(h)))
			}
			// A header over the bound streams from the archive.
			rc, err := r.open()
			if err != nil {
				return err
			}
			defer rc.Close()
			return streamPartial(w, bs, rc, r.headerLen)
		}
		buf := imapserver.ExtractBodySection(bytes.NewReader(cleanHeader(h)), bs)
		if !endsInBlankLine(h) {
			// Without a blank line the message is all header: no blank
			// line to give back either (as Dovecot).
			if t, ok := bytes.CutSuffix(buf, []byte("\r\n\r\n")); ok {
				buf = append(t, "\r\n"...)
			}
		}
		return writeLiteral(w.WriteBodySection(bs, int64(len(buf))), bytes.NewReader(buf), int64(len(buf)))
	}
	rc, err := r.buffered()
	if err != nil {
		return err
	}
	defer rc.Close()
	src, err := r.lenient(rc)
	if err != nil {
		return err
	}
	buf := imapserver.ExtractBodySection(src, bs)
	return writeLiteral(w.WriteBodySection(bs, int64(len(buf))), bytes.NewReader(buf), int64(len(buf)))
}

// lenient returns the message of rc with its header cleaned for go-message
// (see cleanHeader); the body follows unchanged, streamed.
func (r *msgReader) lenient(rc io.Reader) (io.Reader, error) {
	br := bufio.NewReader(rc)
	h, n, trunc, err := r.readHeader(br)
	if err != nil {
		return nil, err
	}
	r.setHeader(h, n, trunc)
	clean := cleanHeader(h)
	if trunc {
		// What was kept of a header over the bound, ended as a header.
		clean = append(clean, "\r\n"...)
	}
	return io.MultiReader(bytes.NewReader(clean), br), nil
}

// cleanHeader drops the lines of a raw header that are neither fields nor
// continuations (an mbox "From " line kept at the top of a message, stray
// text), which would stop go-message's parser at the first line; servers
// such as Dovecot skip them the same way.
func cleanHeader(h []byte) []byte {
	var out []byte
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line = h[:i+1]
		}
		h = h[len(line):]
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 || trimmed[0] == ' ' || trimmed[0] == '\t' {
			out = append(out, line...)
			continue
		}
		colon := bytes.IndexByte(trimmed, ':')
		if colon <= 0 || bytes.ContainsAny(trimmed[:colon], " \t") {
			continue
		}
		out = append(out, line...)
	}
	return out
}

func endsInBlankLine(h []byte) bool {
	return bytes.HasSuffix(h, []byte("\n\n")) || bytes.HasSuffix(h, []byte("\n\r\n"))
}

// parseHeader parses a raw header leniently (an empty one when it does not
// parse at all).
func parseHeader(raw []byte) textproto.Header {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(cleanHeader(raw))))
	if err != nil && h.Len() == 0 {
		return textproto.Header{}
	}
	return h
}

// streamPartial writes src (size bytes) or its <offset.length> part.
func streamPartial(w *imapserver.FetchResponseWriter, bs *imap.FetchItemBodySection, src io.Reader, size int64) error {
	if size < 0 {
		size = 0
	}
	n := size
	if p := bs.Partial; p != nil {
		if p.Offset >= size {
			n = 0
		} else {
			if _, err := io.CopyN(io.Discard, src, p.Offset); err != nil {
				return err
			}
			n = min(size-p.Offset, p.Size)
		}
	}
	return writeLiteral(w.WriteBodySection(bs, n), src, n)
}

// writeLiteral copies exactly n bytes of src into wc and closes it.
func writeLiteral(wc io.WriteCloser, src io.Reader, n int64) error {
	_, err := io.CopyN(wc, src, n)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}
