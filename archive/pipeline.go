package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
)

// The mbox formats store a folder's messages through a pipeline of two
// goroutines: Add, on the caller's goroutine (the one reading the server's
// socket), reads each message into chunks and queues them; a worker
// goroutine hashes them (SHA-256), escapes them (mboxrd) and compresses them
// (mboxfile). Reading the network and compressing so overlap on two cores.
// The queue is bounded in bytes (queueChunks x chunkSize, 1 MiB), whatever
// the size of a message: a message larger than that streams through it.
//
// Nothing about durability changes: Commit first waits for the worker to
// finish every queued message, then syncs the file, then commits the
// catalog; Abort waits for it too before cutting the file back.
const (
	chunkSize   = 128 << 10
	queueChunks = 8
)

// chunks keeps chunk buffers between writers: an account of many small
// folders opens a writer per folder.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// errWorker stops reading a message once the worker has failed.
var errWorker = errors.New("archive: the writer failed")

type itemKind uint8

const (
	itemStart itemKind = iota // a message begins: m, sender
	itemData                  // buf, a chunk of it (returned to free after use)
	itemEnd                   // the message is complete
	itemDrain                 // reply on ack when everything before is done
)

type item struct {
	kind   itemKind
	m      *catalog.Message
	sender string
	buf    []byte
	ack    chan error
}

// pipeline is the queue between Add and the worker.
type pipeline struct {
	items  chan item
	free   chan []byte // chunk buffers not in the queue (nil: not taken from the pool yet): bounds the bytes queued
	ack    chan error
	failed atomic.Bool // the worker has an error that the next drain returns
}

func (w *FolderWriter) startPipeline() {
	p := &pipeline{items: make(chan item, 2*queueChunks+8), free: make(chan []byte, queueChunks), ack: make(chan error, 1)}
	for range queueChunks {
		p.free <- nil
	}
	w.pipe = p
	go w.work(p)
}

// work runs the worker: it alone touches w.mw, w.enc and w.h between
// drains.
func (w *FolderWriter) work(p *pipeline) {
	var err error
	var cur *catalog.Message
	fail := func(e error) {
		err = fmt.Errorf("folder %q %s: %w", w.f.Name, msgName(cur), e)
		p.failed.Store(true)
	}
	for it := range p.items {
		switch it.kind {
		case itemStart:
			cur = it.m
			if err != nil {
				continue
			}
			pos := w.mw.Pos()
			cur.FrameOffset, cur.FramePos = pos.FrameOffset, pos.Offset
			w.h.Reset()
			if _, e := io.WriteString(w.mw, mboxrd.FromLine(it.sender, cur.InternalDate)); e != nil {
				fail(e)
				continue
			}
			w.enc.Reset(w.mw)
		case itemData:
			if err == nil {
				w.h.Write(it.buf)
				if _, e := w.enc.Write(it.buf); e != nil {
					fail(e)
				}
			}
			p.free <- it.buf[:cap(it.buf)]
		case itemEnd:
			if err != nil {
				continue
			}
			if e := w.enc.Close(); e != nil {
				fail(e)
				continue
			}
			cur.SHA256 = hex.EncodeToString(w.h.Sum(nil))
		case itemDrain:
			it.ack <- err
			err = nil
			p.failed.Store(false)
		}
	}
}

// drain waits until the worker has stored every queued message and
// returns its first error since the last drain. The caller must Abort
// after an error.
func (w *FolderWriter) drain() error {
	if w.pipe == nil {
		return nil
	}
	w.pipe.items <- item{kind: itemDrain, ack: w.pipe.ack}
	return <-w.pipe.ack
}

// stopPipeline ends the worker (after it finished the queue) and returns
// the chunk buffers to the pool.
func (w *FolderWriter) stopPipeline() {
	p := w.pipe
	if p == nil {
		return
	}
	w.drain()
	close(p.items)
	for range queueChunks {
		if b := <-p.free; b != nil {
			chunks.Put(&b)
		}
	}
	w.pipe = nil
}

// queueMbox reads a message from src into the queue: its From line's
// sender, then its bytes. It returns the message's size; a read error
// leaves the message unfinished in the queue (the caller aborts).
func (w *FolderWriter) queueMbox(m *catalog.Message, sender string, src io.Reader) (int64, error) {
	p := w.pipe
	p.items <- item{kind: itemStart, m: m, sender: sender}
	var n int64
	for {
		if p.failed.Load() {
			return n, errWorker // the worker's own error comes from the drain
		}
		buf := <-p.free
		if buf == nil {
			buf = *chunks.Get().(*[]byte)
		}
		k, err := io.ReadFull(src, buf)
		if k > 0 {
			n += int64(k)
			p.items <- item{kind: itemData, buf: buf[:k]}
		} else {
			p.free <- buf
		}
		switch err {
		case nil:
			continue
		case io.EOF, io.ErrUnexpectedEOF:
			p.items <- item{kind: itemEnd}
			return n, nil
		}
		return n, err
	}
}
