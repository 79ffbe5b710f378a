package restore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Yahoo refuses an APPEND whose message does not end in CRLF: "BAD
// [CLIENTBUG] Additional arguments found after last expected argument"
// (imapsync FAQ.Yahoo and imapsync issue #209; MailKit issue #251). An
// archived message can lack it (a message cut by its sender, a source
// mbox without a final newline). Such a message, when the server refuses
// it with [CLIENTBUG], is sent once more with a CRLF added, and stored:
// the destination's copy is then the archived bytes plus CRLF. The
// warning names it (folder and message) and --verify reports it altered
// ("line ends"), never exact. Once the destination has refused one
// message so in a run, every later message of the run that lacks the
// final CRLF gets it before its first APPEND (with the same warning): one
// refused APPEND a run, not one a message. A message refused with [CLIENTBUG] that
// does end in CRLF (or that is too large to be held in memory) is refused
// as before.

// clientBug reports whether err is a tagged BAD or NO with [CLIENTBUG].
func clientBug(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && strings.EqualFold(string(ie.Code), "CLIENTBUG")
}

// againCRLF sends p once more with a final CRLF when the server refused it
// with [CLIENTBUG] and it lacks one; it reports whether it took p over
// (then an error is the folder's).
func (fr *folderRun) againCRLF(p *pendingAppend, err error) (bool, error) {
	if !clientBug(err) || p.crlf || p.src.Open == nil {
		return false, nil
	}
	b, lerr := load(p.src)
	if lerr != nil {
		fr.damaged(p.src, lerr)
		return true, nil
	}
	if b.buf == nil || bytes.HasSuffix(b.buf, []byte("\r\n")) {
		return false, nil
	}
	fr.r.crlfFirst.Store(true)
	q, serr := fr.send(withCRLF(b), p.flags)
	if serr != nil {
		fr.cn.close()
		return true, &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, serr)}
	}
	q.src, q.tries, q.crlf = p.src, p.tries, true
	q.key = p.key
	if p.msg.Open != nil {
		q.msg = p.msg // verify compares the destination with the archived bytes
	}
	fr.r.log.Warn("the destination refused a message without a final CRLF; sent again with one added: its copy differs from the archive by that CRLF",
		"folder", fr.f.Name, "message", fr.r.msgName(fr.f.Name, p.key), "answer", err.Error())
	fr.pending = append(fr.pending, q)
	return true, nil
}

// withCRLF is b (in memory, without a final CRLF) with CRLF added.
func withCRLF(b *body) *body {
	fixed := *b
	orig := b.source()
	fixed.orig = &orig
	fixed.buf = append(b.buf[:len(b.buf):len(b.buf)], '\r', '\n')
	fixed.m.Size += 2
	fixed.crlfSize, fixed.crlfSum = 0, ""
	return &fixed
}

// crlfUpFront adds the final CRLF to b before its first APPEND once the
// destination has refused a message without one in this run.
func (fr *folderRun) crlfUpFront(b *body) *body {
	if !fr.r.crlfFirst.Load() || b.buf == nil || b.orig != nil || bytes.HasSuffix(b.buf, []byte("\r\n")) {
		return b
	}
	fr.r.log.Warn("the destination refuses messages without a final CRLF: sent with one added; its copy differs from the archive by that CRLF",
		"folder", fr.f.Name, "message", fr.r.msgName(fr.f.Name, b.m.Key))
	return withCRLF(b)
}
