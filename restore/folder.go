package restore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/uidpage"
	"github.com/mailkeep/mailkeep/provlimit"
)

// appendWindow is how many APPENDs may await their OK at once.
const appendWindow = 32

// settleDelay is how long a folder's message count must stay put before
// its contents are indexed.
var settleDelay = 150 * time.Millisecond

// batchSettleDelay is settleDelay where APPENDs go in MULTIAPPEND batches
// (see folderRun.quiet).
var batchSettleDelay = 2 * time.Second

// folderRun restores one source folder into dst over one conn.
type folderRun struct {
	r   *run
	cn  *conn
	f   Folder
	dst string

	uidValidity uint32
	selUIDNext  uint32                    // UIDNEXT of the SELECT
	status      destStatus                // STATUS before the SELECT (hidden.go)
	allowKw     map[string]bool           // PERMANENTFLAGS, lower case
	allowAll    bool                      // PERMANENTFLAGS has \*
	present     map[presentKey][]imap.UID // by Message-ID, size, date
	bySize      map[presentKey][]imap.UID // every message by size and date (msgID "")
	used        map[imap.UID]bool         // destination messages matched already
	dropped     map[string]bool
	pending     []*pendingAppend
	batch       *appendBatch // the MULTIAPPEND being sent (multiappend.go)
	batched     bool         // its first message went, alone, and was answered

	prepared          bool // selected and indexed
	appended, skipped int

	// The progress record of this folder, checked on the destination
	// (check.go). lister: the Progress is a Lister (recs may be nil).
	lister       bool
	recs         map[string]Restored
	verified     map[string]bool   // recorded and found on the destination
	verifiedUIDs map[imap.UID]bool // their UIDs
	missing      int               // recorded but restored again
	selected     bool              // selected by checkRecorded
	selectedN    uint32            // its message count then

	sent   []sentMsg   // appended with APPENDUID, checked by checkStored
	unsent []unsentMsg // appended without (Options.Verify)
	report FolderReport
	tries  int // throttling answers to the message being sent (go-imap path)

	// Onto Gmail: the labels to store by message key, and the UIDs of
	// those messages on the destination (gmail.go).
	labels map[string][]string
	uidOf  map[string]imap.UID
}

// presentKey identifies a message for the already-present rule.
type presentKey struct {
	msgID string
	size  int64
	date  int64 // Unix seconds
}

type pendingAppend struct {
	wait  func() (*imap.AppendData, error)
	key   string
	size  int64
	flags []imap.Flag
	msg   Message // with Options.Verify

	batch *appendBatch // the MULTIAPPEND it went in, or nil
	src   Message      // to send it again alone (a refused batch, a throttled APPEND)
	tries int          // times sent again after a throttling answer
	crlf  bool         // sent again with a final CRLF added (crlf.go)
}

// sentMsg is an appended message and the UIDVALIDITY of its APPENDUID.
type sentMsg struct {
	appendedMsg
	validity uint32
}

// restore runs the folder. Per-message failures are recorded and the folder
// goes on; the error returned ends the folder (and its connection).
func (fr *folderRun) restore() error {
	r := fr.r
	start := time.Now()
	fr.dropped = map[string]bool{}
	err := fr.checkRecorded()
	if err == nil {
		err = r.src.Messages(r.ctx, fr.f, fr.message)
	}
	if ferr := fr.flush(0); err == nil || errors.Is(err, errStopped) && ferr != nil {
		err = ferr
	}
	// Stopped at the daily limit: what was appended has its flags and
	// labels seen to all the same, where the connection is still good.
	good := func() bool {
		return err == nil || errors.Is(err, errStopped) && fr.cn != nil && !fr.cn.closed
	}
	after := func(step func() error) {
		if !good() || r.opt.DryRun {
			return
		}
		if serr := step(); serr != nil {
			if r.stopAt(fr.f.Name, serr) {
				serr = errStopped
			}
			if err == nil || !errors.Is(serr, errStopped) {
				err = serr
			}
		}
	}
	after(fr.checkStored)
	if r.gmail {
		after(fr.storeLabels)
	}
	if len(fr.dropped) > 0 {
		var kws []string
		for k := range fr.dropped {
			kws = append(kws, k)
		}
		sort.Strings(kws)
		fr.report.FlagsNotSent = kws
		r.log.Warn("flags not restored: the destination folder does not allow them (PERMANENTFLAGS), or they are not valid IMAP keywords", "folder", fr.dst, "flags", strings.Join(kws, " "))
	}
	fr.report.Folder, fr.report.Dest, fr.report.Appended = fr.f.Name, fr.dst, fr.appended
	if (fr.appended > 0 || len(fr.report.Refused) > 0) && !r.opt.DryRun {
		r.count(func(s *Stats) { s.Reports = append(s.Reports, fr.report) })
		if fr.report.Lossy() {
			r.log.Warn("the destination did not keep everything as sent", "report", fr.report.String())
		}
	}
	if fr.missing > 0 {
		r.log.Warn("messages recorded as restored were missing from the destination and were restored again", "folder", fr.dst, "missing", fr.missing)
	}
	r.log.Info("restored folder", "folder", fr.f.Name, "to", fr.dst, "appended", fr.appended, "skipped", fr.skipped, "missing", fr.missing, "seconds", time.Since(start).Seconds(), "err", err)
	if err != nil && !errors.Is(err, errStopped) {
		var fe *FolderError
		if !errors.As(err, &fe) {
			err = &FolderError{Folder: fr.f.Name, Err: err}
		}
	}
	return err
}

// prepare readies the destination folder for the first message to
// restore: it is selected and indexed only now, so a rerun over a folder
// restored in full costs no command at all.
func (fr *folderRun) prepare() error {
	fr.prepared = true
	if fr.r.opt.DryRun && !fr.r.existing[fr.dst] {
		fr.allowAll = true // a folder yet to be created: assume it takes keywords
		return fr.index(0)
	}
	n := fr.selectedN
	if !fr.selected {
		var err error
		if n, err = fr.selectFolder(); err != nil {
			return err
		}
	}
	return fr.index(fr.settle(n))
}

// quiet is how long a folder's message count must stay put before it is
// indexed. A MULTIAPPEND batch that a killed run left in flight is stored
// in one transaction and shows up all at once, when the server commits it
// (about a second for a batch of 1,000 small messages on a slow disk), so
// where batches may have gone the wait is longer, for an empty folder too.
// Batches may have gone where the progress record has messages restored
// into the folder: its first message goes alone and is recorded before
// any batch (multiappend.go). With a Progress that cannot list, every
// folder this run did not create is watched so.
func (fr *folderRun) quiet(n uint32) time.Duration {
	batches := false
	if fr.multiRaw() != nil {
		if fr.lister {
			batches = len(fr.recs) > 0
		} else {
			batches = !fr.r.created[fr.dst]
		}
	}
	switch {
	case batches:
		return batchSettleDelay
	case n > 0:
		return settleDelay
	}
	return 0
}

// selectFolder SELECTs dst and learns which flags it keeps. SELECT, not
// EXAMINE: a read-only mailbox reports no permanent flags. go-imap cannot
// tell an absent PERMANENTFLAGS from an empty one; both mean no keywords.
func (fr *folderRun) selectFolder() (uint32, error) {
	fr.statusBeforeSelect()
	sel, err := fr.cn.c.Select(fr.dst, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("SELECT %q: %w", fr.dst, err)
	}
	fr.uidValidity, fr.selUIDNext = sel.UIDValidity, uint32(sel.UIDNext)
	fr.allowKw = map[string]bool{}
	for _, p := range sel.PermanentFlags {
		if p == imap.FlagWildcard {
			fr.allowAll = true
		}
		fr.allowKw[strings.ToLower(string(p))] = true
	}
	return sel.NumMessages, nil
}

// settle waits, for a folder that already holds mail, until its message
// count stops changing: a restore killed with APPENDs in flight leaves the
// server storing them for a moment after the restart, and the
// already-present check must see them. It returns the settled count.
func (fr *folderRun) settle(n uint32) uint32 {
	wait := fr.quiet(n)
	if wait == 0 {
		return n
	}
	c := fr.cn.c
	for i := 0; i < 40; i++ {
		select {
		case <-time.After(wait):
		case <-fr.r.ctx.Done():
			return n
		}
		if err := c.Noop().Wait(); err != nil {
			return n
		}
		mb := c.Mailbox()
		if mb == nil || mb.NumMessages == n {
			return n
		}
		n = mb.NumMessages
	}
	return n
}

// index lists what the destination folder already holds, with one
// UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]),
// then by UID ranges where the folder shows fewer messages than STATUS
// counted (hidden.go).
func (fr *folderRun) index(n uint32) error {
	fr.present = map[presentKey][]imap.UID{}
	fr.bySize = map[presentKey][]imap.UID{}
	fr.used = map[imap.UID]bool{}
	for uid := range fr.verifiedUIDs {
		fr.used[uid] = true // the copy of a recorded message: not another's
	}
	if n == 0 {
		return nil
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	opt := &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}
	seen := map[imap.UID]bool{}
	list := func(set imap.UIDSet) (uidpage.Answer, error) {
		return fr.fetchSet(set, opt, func(msg *imapclient.FetchMessageData, in func(imap.UID) bool) imap.UID {
			m, err := msg.Collect()
			if err != nil {
				return 0 // reported by Close
			}
			if m.UID == 0 || m.InternalDate.IsZero() {
				return 0 // unsolicited FETCH (a flag change by another session)
			}
			if seen[m.UID] {
				return m.UID // listed already
			}
			seen[m.UID] = true
			id := parseMessageID(m.FindBodySection(sec))
			k := presentKey{id, m.RFC822Size, m.InternalDate.Unix()}
			if id != "" {
				fr.present[k] = append(fr.present[k], m.UID)
			}
			k.msgID = ""
			fr.bySize[k] = append(fr.bySize[k], m.UID)
			return m.UID
		})
	}
	if _, err := list(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}); err != nil {
		return fmt.Errorf("listing destination folder %q: %w", fr.dst, err)
	}
	// A folder larger than the server shows (hidden.go).
	if want := max(uint64(fr.status.messages), uint64(n)); fr.hiding(uint64(len(seen))) {
		fr.r.log.Info("the destination folder shows fewer messages than STATUS counts: paging through UID ranges", "folder", fr.dst, "listed", len(seen), "status", fr.status.messages)
		cmds, err := uidpage.Ranges(fr.top(), want, func() uint64 { return uint64(len(seen)) }, func(r imap.UIDRange) (uidpage.Answer, error) {
			return list(imap.UIDSet{r})
		})
		if err != nil {
			return fmt.Errorf("listing destination folder %q by UID ranges: %w", fr.dst, err)
		}
		fr.r.log.Info("paged through UID ranges", "folder", fr.dst, "commands", cmds, "seen", len(seen), "status", fr.status.messages)
	}
	return nil
}

// parseMessageID returns the first Message-ID in a header block, without
// angle brackets.
func parseMessageID(b []byte) string {
	s := string(b)
	_, v, ok := strings.Cut(s, ":")
	if !ok {
		return ""
	}
	// The value ends at the first line not starting with white space.
	var sb strings.Builder
	for i, line := range strings.Split(v, "\n") {
		line = strings.TrimRight(line, "\r")
		if i > 0 && (line == "" || (line[0] != ' ' && line[0] != '\t')) {
			break
		}
		sb.WriteString(line)
	}
	return normID(sb.String())
}

// normID is a Message-ID without white space and angle brackets.
func normID(s string) string {
	return strings.Trim(strings.TrimSpace(s), "<> \t")
}

// message restores one message (the Source's callback).
func (fr *folderRun) message(m Message) error {
	r := fr.r
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if r.halted.Load() {
		return errStopped // the daily limit or the budget: no more APPENDs (limits.go)
	}
	fr.noteLabels(m)
	// The progress record is a hint: only a copy confirmed on the
	// destination (checkRecorded) is skipped unseen. Other recorded
	// messages go through the already-present rule like the rest.
	var recorded bool
	if fr.lister {
		if fr.verified[m.Key] {
			fr.skip()
			return nil
		}
		_, recorded = fr.recs[m.Key]
	} else {
		done, err := r.prog.IsRestored(r.ctx, r.dest, m.Key)
		if err != nil {
			return &FolderError{Folder: fr.f.Name, Key: m.Key, Err: fmt.Errorf("reading progress: %w", err)}
		}
		recorded = done
	}
	if !fr.prepared {
		if err := fr.prepare(); err != nil {
			return err
		}
	}
	id := normID(m.MessageID)
	k := presentKey{id, m.Size, m.InternalDate.Unix()}
	if id != "" {
		if uid := fr.take(k); uid != 0 {
			return fr.alreadyPresent(m, uid)
		}
	}
	b, err := load(m)
	if err != nil {
		fr.damaged(m, err)
		return nil
	}
	// The destination may hold it with its bare LFs made CRLF.
	kc := presentKey{id, b.crlfSize, k.date}
	if id != "" && kc != k {
		if uid := fr.take(kc); uid != 0 {
			return fr.alreadyPresent(m, uid)
		}
	}
	// A message without Message-ID is compared by its bytes with those of
	// the same size and date (whether they have a Message-ID or not).
	if id == "" {
		for i, c := range []struct {
			k   presentKey
			sum string
		}{{k, b.sum}, {kc, b.crlfSum}} {
			if len(fr.bySize[c.k]) == 0 || c.sum == "" || i == 1 && kc == k {
				continue
			}
			uid, err := fr.sameAsDest(c.k, c.sum)
			if err != nil {
				return &FolderError{Folder: fr.f.Name, Key: m.Key, Err: err}
			}
			if uid != 0 {
				return fr.alreadyPresent(m, uid)
			}
		}
	}
	if recorded {
		fr.missing++
		r.count(func(s *Stats) { s.Missing++ })
	}
	if r.limit > 0 && m.Size > r.limit && !ignoreAppendLimit {
		fr.tooBig(m.Key, m.Size, r.limit, nil)
		return nil
	}
	flags := fr.flags(m.Flags)
	if r.opt.DryRun {
		r.dryRunf("would append to %q from %q: %s, %d bytes, %s, flags %v\n", fr.dst, fr.f.Name, r.msgName(fr.f.Name, m.Key), m.Size, m.InternalDate.Format(time.RFC3339), flags)
		r.count(func(s *Stats) { s.Appended++; s.Bytes += m.Size })
		fr.appended++
		return nil
	}
	if !r.budgeted(fr.f.Name, m.Size) {
		return errStopped // Options.Budget (limits.go)
	}
	b = fr.crlfUpFront(b) // crlf.go
	if b.inMemory() {
		if raw := fr.multiRaw(); raw != nil {
			if err := fr.sendBatched(raw, b, flags); err != nil {
				var fe *FolderError
				if errors.As(err, &fe) {
					return err
				}
				fr.cn.close()
				return &FolderError{Folder: fr.f.Name, Key: m.Key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, err)}
			}
			return nil
		}
	} else {
		// Settle what is in flight first: if the second read turns out
		// damaged, the connection is dropped, and nothing else with it.
		if err := fr.flush(0); err != nil {
			return err
		}
	}
	p, err := fr.send(b, flags)
	var de *damageError
	switch {
	case errors.As(err, &de):
		fr.cn.close()
		fr.damaged(m, err)
		return fr.reconnect()
	case errors.Is(err, errRefused):
		// go-imap: the server answered NO instead of a continuation; the
		// client cannot go on. Collect the OKs in flight, then reconnect.
		if err := fr.flush(0); err != nil {
			return err
		}
		fr.cn.close()
		if r.stopAt(fr.f.Name, err) || r.halted.Load() {
			return errStopped // not stored; the next run sends it
		}
		switch e := limitOf(err); {
		case e != nil && e.Kind == provlimit.MessageTooBig:
			fr.tooBig(m.Key, m.Size, 0, err)
		case retryable(e) && fr.r.wait(e, fr.tries):
			fr.tries++
			if err := fr.reconnect(); err != nil {
				return err
			}
			return fr.message(m)
		default:
			fr.refused(m.Key, err)
			r.fail(&FolderError{Folder: fr.f.Name, Key: m.Key, Err: err})
		}
		fr.tries = 0
		return fr.reconnect()
	case err != nil:
		// The connection is broken: drop it, so that waiting for the
		// APPENDs in flight fails at once.
		fr.cn.close()
		return &FolderError{Folder: fr.f.Name, Key: m.Key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, err)}
	}
	p.src = m
	fr.tries = 0
	fr.pending = append(fr.pending, p)
	return fr.flush(appendWindow)
}

// refused records a message the server refused, for the folder's report.
func (fr *folderRun) refused(key string, err error) {
	text := err.Error()
	var ie *imap.Error
	if errors.As(err, &ie) {
		text = string(ie.Type) + " " + ie.Text
	}
	fr.report.Refused = append(fr.report.Refused, Refusal{Message: fr.r.msgName(fr.f.Name, key), Text: text})
}

func (fr *folderRun) skip() {
	fr.skipped++
	fr.r.count(func(s *Stats) { s.Skipped++ })
}

func (fr *folderRun) damaged(m Message, err error) {
	fr.r.count(func(s *Stats) { s.Damaged++ })
	fr.r.fail(&FolderError{Folder: fr.f.Name, Key: m.Key, Err: err})
}

// alreadyPresent records a message the destination holds already.
func (fr *folderRun) alreadyPresent(m Message, uid imap.UID) error {
	fr.skip()
	if fr.r.opt.DryRun {
		return nil
	}
	fr.placed(m.Key, uid)
	rd := Restored{Folder: fr.dst, UIDValidity: fr.uidValidity, UID: uint32(uid)}
	if err := fr.r.mark(m.Key, rd); err != nil {
		return &FolderError{Folder: fr.f.Name, Key: m.Key, Err: fmt.Errorf("recording progress: %w", err)}
	}
	return nil
}

// reconnect replaces a dropped connection and selects the folder again.
func (fr *folderRun) reconnect() error {
	fr.cn = nil
	cn, err := fr.r.connect()
	if err != nil {
		return fmt.Errorf("reconnecting: %w", err)
	}
	fr.cn = cn
	_, err = fr.selectFolder()
	return err
}

// take returns an unmatched destination message with key k and marks it
// matched, or 0.
func (fr *folderRun) take(k presentKey) imap.UID {
	for i, uid := range fr.present[k] {
		if !fr.used[uid] {
			fr.present[k] = fr.present[k][i+1:]
			fr.used[uid] = true
			return uid
		}
	}
	return 0
}

// sameAsDest looks for an unmatched destination message of k's size and
// date whose bytes have SHA-256 sum, streaming each candidate through the
// hash. A match is marked; it returns 0 when there is none.
func (fr *folderRun) sameAsDest(k presentKey, sum string) (imap.UID, error) {
	for _, uid := range fr.bySize[k] {
		if fr.used[uid] {
			continue
		}
		cmd := fr.cn.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		got := ""
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if bs, ok := item.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
					h := sha256.New()
					if _, err := io.Copy(h, bs.Literal); err == nil {
						got = hex.EncodeToString(h.Sum(nil))
					}
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return 0, fmt.Errorf("fetching UID %d of %q to compare: %w", uid, fr.dst, err)
		}
		if got == sum {
			fr.used[uid] = true
			return uid, nil
		}
	}
	return 0, nil
}

// systemFlags are the flags every server must accept in APPEND (\Recent
// is never sent: the server sets it).
var systemFlags = map[string]bool{`\seen`: true, `\answered`: true, `\flagged`: true, `\deleted`: true, `\draft`: true}

// flags returns the flags to APPEND: the system flags, and the keywords the
// folder's PERMANENTFLAGS allow. The rest are dropped, counted and logged.
func (fr *folderRun) flags(in []string) []imap.Flag {
	var out []imap.Flag
	seen := map[string]bool{}
	for _, fl := range in {
		low := strings.ToLower(fl)
		if seen[low] || low == `\recent` || fl == "" {
			continue
		}
		seen[low] = true
		switch {
		case systemFlags[low]:
			out = append(out, imap.Flag(fl))
		case !validFlag(fl):
			fr.drop(fl)
		case strings.HasPrefix(fl, `\`):
			// A system flag this engine does not know: only where the
			// folder lists it (\* allows new keywords, not system flags).
			if fr.allowKw[low] {
				out = append(out, imap.Flag(fl))
			} else {
				fr.drop(fl)
			}
		case fr.allowAll || fr.allowKw[low]:
			out = append(out, imap.Flag(fl))
		default:
			fr.drop(fl)
		}
	}
	return out
}

func (fr *folderRun) drop(fl string) {
	fr.dropped[fl] = true
	fr.r.count(func(s *Stats) { s.KeywordsDropped++ })
}

// validFlag reports whether fl is a flag-keyword (an atom) or a
// flag-extension (`\` atom).
func validFlag(fl string) bool {
	s := strings.TrimPrefix(fl, `\`)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// flush waits for the OKs of all but keep pending APPENDs, recording each
// restored message. A server's NO fails that message; a lost connection
// ends the folder.
func (fr *folderRun) flush(keep int) error {
	r := fr.r
	if keep < len(fr.pending) {
		// A MULTIAPPEND still open is answered only once ended.
		if err := fr.endBatch(); err != nil {
			fr.cn.close()
			fr.pending = nil
			return &FolderError{Folder: fr.f.Name, Err: err}
		}
	}
	// A throttling answer through go-imap fails the folder, but only once
	// the APPENDs in flight behind it are settled and recorded: the rerun
	// (at once when the wait is short) must not index the destination
	// while the server still stores one of them (limits.go).
	var throttled error
	stopped := false
	for len(fr.pending) > keep || (throttled != nil || stopped) && len(fr.pending) > 0 {
		p := fr.pending[0]
		fr.pending = fr.pending[1:]
		data, err := p.wait()
		if err != nil {
			// The daily limit (limits.go): the message was not stored and
			// is left for the next run, as is every APPEND refused after
			// the stop; those in flight are still collected and recorded.
			if r.stopAt(fr.f.Name, err) || r.stoppedLeft(err) {
				stopped = true
				continue
			}
			if p.batch != nil && p.batch.n > 1 && isRefusal(err) {
				if err := fr.fallBack(p, err); err != nil {
					fr.pending = nil
					return err
				}
				continue
			}
			if e := limitOf(err); e != nil && e.Kind == provlimit.MessageTooBig {
				fr.tooBig(p.key, p.size, 0, err)
				continue
			}
			// Sent again here only on the raw connection: go-imap's
			// client can be mid-command (a literal awaiting its
			// continuation); there the folder fails with the throttling
			// answer and the worker runs it again after the wait.
			if e := limitOf(err); retryable(e) && r.rawConn(fr.cn) == nil {
				if throttled == nil {
					throttled = &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q: %w", fr.dst, err)}
				}
				continue
			}
			if e := limitOf(err); retryable(e) && p.src.Open != nil && r.wait(e, p.tries) {
				if err := fr.again(p); err != nil {
					fr.pending = nil
					return err
				}
				continue
			}
			if again, err := fr.againCRLF(p, err); again { // crlf.go
				if err != nil {
					fr.pending = nil
					return err
				}
				continue
			}
			if isRefusal(err) {
				fr.refused(p.key, err)
				r.fail(&FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q refused: %w", fr.dst, err)})
				continue
			}
			unknown := len(fr.pending)
			fr.pending = nil
			return &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("APPEND to %q: %w (this and %d more APPENDs unconfirmed; a rerun finds those the server stored)", fr.dst, err, unknown)}
		}
		rd := Restored{Folder: fr.dst}
		if data != nil && data.UID != 0 {
			rd.UIDValidity, rd.UID = data.UIDValidity, uint32(data.UID)
			fr.placed(p.key, data.UID)
			fr.sent = append(fr.sent, sentMsg{appendedMsg{uid: data.UID, key: p.key, size: p.size, flags: p.flags, msg: p.msg}, data.UIDValidity})
		} else {
			fr.report.Unchecked++
			if r.opt.Verify {
				fr.unsent = append(fr.unsent, unsentMsg{p.msg, p.flags})
			}
		}
		if err := r.mark(p.key, rd); err != nil {
			return &FolderError{Folder: fr.f.Name, Key: p.key, Err: fmt.Errorf("recording progress: %w", err)}
		}
		fr.appended++
		r.count(func(s *Stats) { s.Appended++; s.Bytes += p.size })
		if r.opt.Progress != nil {
			r.opt.Progress(Event{Folder: fr.f.Name, Bytes: p.size})
		}
	}
	if throttled != nil {
		fr.cn.close()
		return throttled
	}
	if stopped {
		return errStopped
	}
	return nil
}
