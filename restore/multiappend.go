package restore

import (
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// Batches of MULTIAPPEND (RFC 3502). Where the raw connection's server
// offers MULTIAPPEND and LITERAL+, the messages of a folder are streamed
// into APPEND commands of up to maxBatchMsgs messages or maxBatchBytes
// bytes each: the server stores each command in one transaction, which
// on Dovecot's Maildir is what keeps a big folder's restore linear (every
// transaction there re-reads and rewrites the folder's whole
// dovecot-uidlist). One batch may await its answer while the next is
// sent. The APPENDUID of a batch's OK gives every message its UID, and
// each is recorded then, one by one, as after a single APPEND. A NO (or
// BAD) rejects the whole batch (RFC 3502): its messages are then sent
// again one APPEND each, so that the one the server refuses is named and
// the others arrive. Messages over 1 MB (read again while sent, see
// body.writeTo) go in single APPENDs between batches, so that a damaged
// second read drops no batch with them.
//
// maxBatchText bounds the command's text outside the literals (flags and
// dates, 40 to a few hundred bytes a message): servers bound a command's
// line and may count it across literals (Dovecot does not: 1,000 messages
// with 300 bytes of keywords each, 300 KB, went in one command).
var (
	maxBatchMsgs        = 1000
	maxBatchBytes int64 = 32 << 20
	maxBatchText        = 64 << 10
)

// batchSent, when set (tests), is called with the size of each batch sent.
var batchSent func(n int)

// appendBatch is one MULTIAPPEND command, sent or being sent.
type appendBatch struct {
	raw  AppendConn
	tag  string
	n    int   // messages in it
	size int64 // their bytes
	text int   // bytes of the command outside the literals

	done     bool
	validity uint32
	uids     []uint32 // by message, when the APPENDUID covers all of them
	err      error
	fellBack bool // its messages were sent again one by one
}

// result reads the batch's tagged answer, once.
func (b *appendBatch) result() error {
	if b.done {
		return b.err
	}
	b.done = true
	_, text, err := b.raw.ReadTagged(b.tag)
	if err != nil {
		b.err = err
		return b.err
	}
	if v, uids, ok := imapconn.AppendUIDs(text, b.n); ok && len(uids) == b.n {
		b.validity, b.uids = v, uids
	}
	return nil
}

// wait returns the outcome of the batch's i-th message.
func (b *appendBatch) wait(i int) (*imap.AppendData, error) {
	if err := b.result(); err != nil {
		return nil, err
	}
	d := &imap.AppendData{}
	if b.uids != nil {
		d.UIDValidity, d.UID = b.validity, imap.UID(b.uids[i])
	}
	return d, nil
}

// multiRaw returns the raw connection when the folder's messages go in
// MULTIAPPEND batches, else nil.
func (fr *folderRun) multiRaw() AppendConn {
	raw := fr.r.rawConn(fr.cn)
	if raw == nil || !raw.CanMultiAppend() || fr.r.opt.NoMultiAppend {
		return nil
	}
	return raw
}

// sendBatched writes message b into the open batch (opening one), ending
// the batch when it is full and then waiting for the one before it.
func (fr *folderRun) sendBatched(raw AppendConn, b *body, flags []imap.Flag) error {
	m := b.m
	if fr.batch == nil {
		tag, err := raw.StartAppend(fr.dst)
		if err != nil {
			return err
		}
		fr.batch = &appendBatch{raw: raw, tag: tag}
	}
	bt := fr.batch
	fl := make([]string, len(flags))
	for i, f := range flags {
		fl[i] = string(f)
	}
	if err := raw.AppendMessage(fl, m.InternalDate, m.Size, func(w io.Writer) error { return b.writeTo(w) }); err != nil {
		return err
	}
	i := bt.n
	bt.n++
	bt.size += m.Size
	bt.text += 48 + len(strings.Join(fl, " "))
	p := &pendingAppend{key: m.Key, size: m.Size, flags: flags, batch: bt, src: b.source(), crlf: b.orig != nil}
	if fr.r.opt.Verify {
		p.msg = b.source()
	}
	p.wait = func() (*imap.AppendData, error) { return bt.wait(i) }
	fr.pending = append(fr.pending, p)
	first := !fr.batched
	if !first && bt.n < maxBatchMsgs && bt.size < maxBatchBytes && bt.text < maxBatchText {
		return nil
	}
	if err := fr.endBatch(); err != nil {
		return err
	}
	if first {
		// The folder's first batch is its first message alone, recorded
		// before any other batch goes: a rerun that finds no record for
		// the folder knows no batch can be in flight there (see quiet).
		fr.batched = true
		return fr.flush(0)
	}
	return fr.flush(bt.n) // the batches before this one
}

// endBatch ends the open batch's command, if any.
func (fr *folderRun) endBatch() error {
	bt := fr.batch
	if bt == nil {
		return nil
	}
	fr.batch = nil
	if batchSent != nil {
		batchSent(bt.n)
	}
	if err := bt.raw.EndAppend(); err != nil {
		return fmt.Errorf("APPEND to %q: %w", fr.dst, err)
	}
	return nil
}

// fallBack sends the messages of a refused batch again, one APPEND each,
// queued behind what is in flight: the server names the one it refuses.
// first is the batch's message whose answer was the refusal (taken off
// the queue already); the batch's others are taken off here.
func (fr *folderRun) fallBack(first *pendingAppend, err error) error {
	bt := first.batch
	bt.fellBack = true
	fr.r.log.Warn("the server refused a MULTIAPPEND batch; sending its messages one by one", "folder", fr.dst, "messages", bt.n, "err", err)
	again := []*pendingAppend{first}
	rest := fr.pending[:0:0]
	for _, p := range fr.pending {
		if p.batch == bt {
			again = append(again, p)
		} else {
			rest = append(rest, p)
		}
	}
	fr.pending = rest
	raw := bt.raw
	for _, p := range again {
		b, lerr := load(p.src)
		if lerr != nil {
			fr.damaged(p.src, lerr)
			continue
		}
		b = fr.crlfUpFront(b) // crlf.go
		tag, werr := rawAppend(raw, fr.dst, p.flags, p.src.InternalDate, b)
		if werr != nil {
			// In memory and checked: a write error is the connection's.
			fr.cn.close()
			return &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, werr)}
		}
		single := *p
		single.batch = nil
		single.crlf = p.crlf || b.orig != nil
		single.wait = func() (*imap.AppendData, error) { return rawWait(raw, tag) }
		fr.pending = append(fr.pending, &single)
	}
	return nil
}
