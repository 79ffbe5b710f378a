package archiveimap

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
)

// maxSkip is how far (in message bytes) a cursor reads ahead to reach the
// next wanted message before reopening at its frame is cheaper.
const maxSkip = 8 << 20

// storedMsg is one message of a folder's mbox file, in storage order.
type storedMsg struct {
	id     int64
	file   string
	fo, fp int64
	size   int64
}

// storageOrder lists every message of an mbox folder (expunged ones too:
// the file holds them) in storage order. A Gmail label view's file is its
// All Mail's: the cursor counts every message of that file, not only the
// view's (else it would read a neighbour's bytes for a view's message).
func storageOrder(ctx context.Context, cat *catalog.Catalog, f *catalog.Folder) ([]storedMsg, map[int64]int, error) {
	id := f.ID
	if f.IsView() {
		id = f.ViewOf
	}
	all, err := cat.All(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	out := make([]storedMsg, len(all))
	for i, m := range all {
		out[i] = storedMsg{id: m.ID, file: m.File, fo: m.FrameOffset, fp: m.FramePos, size: m.Size}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.fo != b.fo {
			return a.fo < b.fo
		}
		return a.fp < b.fp
	})
	idx := make(map[int64]int, len(out))
	for i, m := range out {
		idx[m.id] = i
	}
	return out, idx, nil
}

// cursor is a session's open mbox stream: a client fetching messages in
// order (as mbsync and imaplib do) reads the folder's file front to back
// once instead of decompressing from a frame start for every message.
type cursor struct {
	snap *snapshot
	file string
	rc   io.ReadCloser
	dec  *mboxrd.Decoder
	next int // index in snap.stored of the message Next returns
}

func (c *cursor) close() {
	if c != nil && c.rc != nil {
		c.rc.Close()
		c.rc = nil
	}
}

// open returns a reader of a message's exact bytes, through the session's
// cursor for mbox archives. The reader is valid until the next open.
func (ss *session) open(snap *snapshot, m *catalog.Message) (io.ReadCloser, error) {
	a := snap.mb.ar.a
	j, ok := snap.storedIdx[m.ID]
	if a.Format == archive.Maildir || !ok {
		return a.Open(m)
	}
	c := ss.cur
	if c != nil && (c.snap != snap || c.rc == nil || c.file != m.File || c.next > j || snap.skipBytes(c.next, j) > maxSkip) {
		c.close()
		c = nil
	}
	if c == nil {
		rc, err := mboxfile.OpenReaderIn(a.Dir, m.File, a.Format.Codec(), mboxfile.Pos{FrameOffset: m.FrameOffset, Offset: m.FramePos})
		if err != nil {
			return nil, fmt.Errorf("message uid %d in %s: %w", m.UID, m.File, err)
		}
		c = &cursor{snap: snap, file: m.File, rc: rc, dec: mboxrd.NewDecoder(rc), next: j}
		ss.cur = c
	}
	for ; c.next <= j; c.next++ {
		_, _, body, err := c.dec.Next()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("message uid %d in %s at frame %d+%d: %w", m.UID, m.File, m.FrameOffset, m.FramePos, err)
		}
		if c.next == j {
			c.next++
			return &exactReader{r: body, left: m.Size, file: m.File, onErr: c.close}, nil
		}
	}
	return nil, fmt.Errorf("message uid %d in %s: cursor past it", m.UID, m.File)
}

func (snap *snapshot) skipBytes(from, to int) int64 {
	var n int64
	for k := from; k < to && n <= maxSkip; k++ {
		if snap.stored[k].file != snap.stored[to].file {
			return maxSkip + 1
		}
		n += snap.stored[k].size
	}
	return n
}

// exactReader yields exactly left bytes and fails if the stream has fewer.
type exactReader struct {
	r     io.Reader
	left  int64
	file  string
	onErr func()
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		e.onErr()
		return n, fmt.Errorf("%s: message truncated, %d bytes missing: %w", e.file, e.left, io.ErrUnexpectedEOF)
	}
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		e.onErr()
	}
	return n, err
}

func (e *exactReader) Close() error { return nil }
