package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// maxLiveQueue bounds the messages a live index holds waiting to be
// indexed. Past it, commits are no longer queued: the catch-up at the end
// of the backup indexes them.
var maxLiveQueue = 20000 // a variable for tests

// liveNice is the nice value of the thread that writes the index while
// the backup fetches (see textindex.UpdateOptions.Nice): the fetch and the
// server keep the CPU they need, the index takes what they leave.
const liveNice = 10

// maxLiveText bounds the text a live index holds parsed (of messages
// stored but not yet committed, or committed but not yet indexed). Past
// it, messages are not parsed as they are stored but read back later.
const maxLiveText = 64 << 20

// liveIndex keeps an archive's search index up with a running backup. The
// archive hands it every commit (archive.Options.OnCommit); a goroutine
// indexes the committed messages while the fetch goes on, reading back
// only them, so that the backup's waits on the server pay for most of the
// indexing. Only committed messages reach it, so the index never names a
// message the catalog does not hold. Mail of earlier runs that the index
// lacks (an index made now, a run killed before it indexed) is caught up
// by a full Update the goroutine runs first, while the fetch begins; at
// the end, finish runs another only when the live part missed something
// (a commit past the queue's bound, a folder it failed on), so that the
// backup does not end with a pass over the whole catalog.
// Indexing never fails the backup: a problem is logged and the next
// backup or "mailkeep index" catches up.
type liveIndex struct {
	active atomic.Bool // set by start once the index is open
	missed atomic.Bool // a commit was not indexed live: finish runs Update

	mu     sync.Mutex
	queue  []liveCommit
	queued int // messages in queue
	// held is the size of the parsed text the live index holds (see
	// maxLiveText). Text of messages whose writer failed is never given
	// back: past failures only make the bound tighter.
	held atomic.Int64

	parses chan struct{} // capacity maxAsyncParses: the parses under way off the writer's path

	wake chan struct{} // capacity 1: there is work
	stop chan struct{} // closed by finish: the fetch is over
	done chan struct{} // closed by the goroutine when it returns

	ix  *textindex.Index
	a   *archive.Archive
	log *slog.Logger
	st  textindex.Stats // the goroutine's, read after done
}

// liveCommit is one commit of a folder writer.
type liveCommit struct {
	f    catalog.Folder
	msgs []*catalog.Message
	ext  []any // Extract's results beside msgs (see resolve)
}

func textSize(m *textindex.Message) int64 {
	if m == nil {
		return 0
	}
	return int64(len(m.Plain) + len(m.HTML) + len(m.Subject) + len(m.From) + len(m.To) + len(m.Cc) + len(m.ReplyTo))
}

// A message of at most maxAsyncMsg bytes is copied aside as it is stored
// and parsed on a goroutine of its own, so that the archive's writer,
// which waits for its Extract function, does not wait for the parse; at
// most maxAsyncParses are parsed so at once (their copies held meanwhile).
// A bigger message, or one stored while that many are being parsed, is
// parsed as it streams by, as the writer stores it.
const (
	maxAsyncMsg    = 256 << 10
	maxAsyncParses = 4
)

// parsing is a message being parsed off the writer's path: an Extract
// result that the live goroutine waits for (see resolve).
type parsing struct {
	done chan struct{}
	msg  *textindex.Message // nil: not parsed (read back later)
}

var parseBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// extract is the archive's Extract hook: while the index is live, each
// message is parsed for it as it is stored, so that it is not read back
// and decompressed again.
func (l *liveIndex) extract(*catalog.Folder) func(io.Reader) any {
	if !l.active.Load() || l.held.Load() >= maxLiveText {
		return nil
	}
	return func(r io.Reader) any {
		select {
		case l.parses <- struct{}{}:
		default:
			return l.parse(r) // as many parses under way as allowed
		}
		buf := parseBufs.Get().(*bytes.Buffer)
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, maxAsyncMsg+1))
		if err != nil || n > maxAsyncMsg {
			// Not read whole (the writer failed) or too big to hold:
			// parsed as it streams by, from where the copy stopped.
			var res any
			if err == nil {
				res = l.parse(io.MultiReader(bytes.NewReader(buf.Bytes()), r))
			}
			parseBufs.Put(buf)
			<-l.parses
			return res
		}
		p := &parsing{done: make(chan struct{})}
		go func() {
			defer close(p.done)
			if msg, ok := l.parse(bytes.NewReader(buf.Bytes())).(*textindex.Message); ok {
				p.msg = msg
			}
			if buf.Cap() <= 4*maxAsyncMsg {
				parseBufs.Put(buf)
			}
			<-l.parses
		}()
		return p
	}
}

// parse parses one message for the index; nil when its bytes did not
// read (the message is read back later, or was not committed at all).
func (l *liveIndex) parse(r io.Reader) any {
	msg, err := textindex.Parse(r, textindex.ParseOptions{})
	if err != nil {
		return nil
	}
	l.held.Add(textSize(msg))
	return msg
}

// resolve turns Extract's results into parsed messages, waiting for
// those being parsed.
func resolve(extracted []any) []*textindex.Message {
	out := make([]*textindex.Message, len(extracted))
	for i, x := range extracted {
		switch v := x.(type) {
		case *textindex.Message:
			out[i] = v
		case *parsing:
			<-v.done
			out[i] = v.msg
		}
	}
	return out
}

// onCommit is the archive's OnCommit hook: it queues copies of the
// committed rows (the writer's caller may go on using its own) and never
// blocks the writer.
func (l *liveIndex) onCommit(f *catalog.Folder, msgs []*catalog.Message, extracted []any) {
	if len(msgs) == 0 {
		return
	}
	ext := make([]any, len(msgs))
	copy(ext, extracted)
	if !l.active.Load() {
		l.missed.Store(true)
		l.drop(ext)
		return
	}
	cp := make([]*catalog.Message, len(msgs))
	for i, m := range msgs {
		c := *m
		c.Flags = nil // not indexed; the writer's caller may change them
		cp[i] = &c
	}
	l.mu.Lock()
	if l.queued+len(cp) > maxLiveQueue {
		l.mu.Unlock()
		l.missed.Store(true)
		l.drop(ext)
		return // the catch-up indexes them
	}
	l.queue = append(l.queue, liveCommit{f: *f, msgs: cp, ext: ext})
	l.queued += len(cp)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// drop gives back the text bound's share of Extract results that are not
// indexed, once their parses are over (without blocking the writer).
func (l *liveIndex) drop(ext []any) {
	go l.release(resolve(ext))
}

// start opens the archive's index when it has one or want (--index) asks
// for one, and starts indexing commits as they come.
func (l *liveIndex) start(ctx context.Context, a *archive.Archive, want bool, log *slog.Logger) {
	if ctx.Err() != nil || (!want && !textindex.Exists(a.Dir)) {
		return
	}
	ix, err := textindex.Open(a.Dir)
	if err != nil {
		log.Warn("search index not updated", "archive", a.Dir, "err", err)
		return
	}
	l.ix, l.a, l.log = ix, a, log
	l.wake, l.stop, l.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	l.parses = make(chan struct{}, maxAsyncParses)
	l.active.Store(true)
	go l.run(ctx)
}

// take empties the queue, merging the commits of one folder (in order)
// so that each folder is read once per round.
func (l *liveIndex) take() []liveCommit {
	l.mu.Lock()
	q := l.queue
	l.queue, l.queued = nil, 0
	l.mu.Unlock()
	var out []liveCommit
	at := map[int64]int{}
	for _, c := range q {
		if i, ok := at[c.f.ID]; ok {
			out[i].msgs = append(out[i].msgs, c.msgs...)
			out[i].ext = append(out[i].ext, c.ext...)
			continue
		}
		at[c.f.ID] = len(out)
		out = append(out, c)
	}
	return out
}

// release gives back the text bound's share of parsed messages.
func (l *liveIndex) release(parsed []*textindex.Message) {
	var n int64
	for _, m := range parsed {
		n += textSize(m)
	}
	l.held.Add(-n)
}

func (l *liveIndex) run(ctx context.Context) {
	defer close(l.done)
	// Earlier runs' mail first (messages this run commits meanwhile are
	// indexed by it too; Add then skips them).
	st, err := l.ix.Update(ctx, l.a, textindex.UpdateOptions{Nice: liveNice})
	l.st.Indexed += st.Indexed
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		l.missed.Store(true)
		l.log.Debug("search index: catching up failed; tried again at the end", "archive", l.a.Dir, "err", err)
	}
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-l.stop:
			stopping = true
		case <-ctx.Done():
			return
		}
		// While the fetch goes on, the index is written at a lower
		// priority; once it is over, what is left at the normal one.
		opt := textindex.UpdateOptions{Nice: liveNice}
		if stopping {
			opt.Nice = 0
		}
		for _, c := range l.take() {
			parsed := resolve(c.ext)
			st, err := l.ix.Add(ctx, l.a, &c.f, c.msgs, parsed, opt)
			l.release(parsed)
			l.st.Indexed += st.Indexed
			l.log.Debug("indexed", "archive", l.a.Dir, "folder", c.f.Name, "messages", st.Indexed)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The catch-up at the end reads the folder again.
				l.missed.Store(true)
				l.log.Debug("search index: live update of a folder failed; caught up at the end", "folder", c.f.Name, "err", err)
			}
		}
		if stopping {
			return
		}
	}
}

// finish stops the live part once it has indexed what is queued, brings
// the index fully up to date (when the live part missed something) and
// closes it.
func (l *liveIndex) finish(ctx context.Context) {
	if !l.active.Load() {
		return
	}
	l.active.Store(false)
	close(l.stop)
	<-l.done
	defer l.ix.Close()
	if ctx.Err() != nil || !l.missed.Load() {
		return
	}
	st, err := l.ix.Update(ctx, l.a, textindex.UpdateOptions{})
	if err != nil {
		l.log.Warn("search index not fully updated (run mailkeep index)", "archive", l.a.Dir, "indexed", l.st.Indexed+st.Indexed, "err", err)
		return
	}
	l.log.Debug("search index updated", "archive", l.a.Dir, "indexed", l.st.Indexed+st.Indexed, "during the fetch", l.st.Indexed)
}
