package restore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// errRefused marks an APPEND the server refused before its literal was
// sent (go-imap's client cannot be used after that).
var errRefused = errors.New("APPEND refused")

// isRefusal reports whether an APPEND's error is the server's tagged NO or
// BAD (the connection is still good), not a lost connection.
func isRefusal(err error) bool {
	var ie *imap.Error // go-imap's, and the raw connection's (imapconn.Raw)
	return errors.As(err, &ie)
}

// send starts the APPEND of b with flags: pipelined over the raw
// connection when there is one, else through go-imap (which waits for the
// server's continuation request unless the literal is small and the server
// offers LITERAL-). The returned pendingAppend's wait gives the outcome.
func (fr *folderRun) send(b *body, flags []imap.Flag) (*pendingAppend, error) {
	m := b.m
	p := &pendingAppend{key: m.Key, size: m.Size, flags: flags, crlf: b.orig != nil}
	if fr.r.opt.Verify {
		p.msg = b.source() // verify compares the destination with the archived bytes
	}
	if raw := fr.r.rawConn(fr.cn); raw != nil {
		tag, err := rawAppend(raw, fr.dst, flags, m.InternalDate, b)
		if err != nil {
			return nil, err
		}
		p.wait = func() (*imap.AppendData, error) { return rawWait(raw, tag) }
		return p, nil
	}
	// Never into the folder this connection has selected (UW IMAP drops
	// keywords then): a second connection, which selects nothing.
	ac, err := fr.r.appendClient(fr.cn)
	if err != nil {
		return nil, err
	}
	cmd := ac.Append(fr.dst, m.Size, &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
	if err := b.writeTo(cmd); err != nil {
		var de *damageError
		if errors.As(err, &de) {
			return nil, err // the caller drops the connection, literal unfinished
		}
		var ie *imap.Error
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("%w by the server: %w", errRefused, err)
		}
		return nil, err
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	p.wait = cmd.Wait
	return p, nil
}

// rawAppend writes one APPEND with a LITERAL+ literal, without waiting for
// its answer.
func rawAppend(raw AppendConn, dst string, flags []imap.Flag, date time.Time, b *body) (string, error) {
	tag := raw.NextTag()
	fl := make([]string, len(flags))
	for i, f := range flags {
		fl[i] = string(f)
	}
	raw.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	var sb strings.Builder
	sb.WriteString(tag + " APPEND " + imapconn.Mailbox(dst) + " (" + strings.Join(fl, " ") + ") ")
	if !date.IsZero() {
		sb.WriteString(`"` + date.Format("_2-Jan-2006 15:04:05 -0700") + `" `)
	}
	sb.WriteString("{" + strconv.FormatInt(b.m.Size, 10) + "+}\r\n")
	if _, err := raw.Writer().WriteString(sb.String()); err != nil {
		return "", err
	}
	if err := b.writeTo(raw.Writer()); err != nil {
		return "", err
	}
	if _, err := raw.Writer().WriteString("\r\n"); err != nil {
		return "", err
	}
	return tag, raw.Writer().Flush()
}

// rawWait reads the answer to an APPEND sent by rawAppend.
func rawWait(raw AppendConn, tag string) (*imap.AppendData, error) {
	_, text, err := raw.ReadTagged(tag)
	if err != nil {
		return nil, err // a tagged NO or BAD is an *imap.Error (isRefusal)
	}
	var d imap.AppendData
	if rest, ok := strings.CutPrefix(text, "[APPENDUID "); ok {
		var v, uid uint32
		if _, err := fmt.Sscanf(rest, "%d %d", &v, &uid); err == nil {
			d.UIDValidity, d.UID = v, imap.UID(uid)
		}
	}
	return &d, nil
}
