package imapsrc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/provlimit"
)

// bodyChunk is how many messages one UID FETCH of bodies asks for. Chunks
// are sent one after the other, never pipelined: Dovecot may answer
// pipelined FETCH commands interleaved, and go-imap v2 blocks its reader on
// a literal until it is consumed, so a message of the second command
// arriving while the first is being read would deadlock the connection.
var bodyChunk = 1000

// listBatch is how many listed messages one catalog lookup compares.
var listBatch = catalog.MaxUIDBatch

// expungePage is how many catalogued UIDs one page of the expunge walk
// reads.
var expungePage = 5000

// srvMsg is a message's metadata as the server reports it.
type srvMsg struct {
	uid    imap.UID
	flags  []string
	date   time.Time
	size   int64
	modseq uint64
	msgID  string
	gm     *gmailext.Message // Gmail mode: ids and labels (gmail.go)
}

// folderSync is one folder being synchronised. Its memory follows what
// changed (new messages, changed flags, expunges), not the folder's size:
// the server's metadata listing is compared with the catalog in batches
// looked up by UID, and expunges are found by walking the catalog's UIDs
// page by page against the server's UID set kept as ranges.
type folderSync struct {
	b   *backup
	c   *imapclient.Client
	f   *catalog.Folder
	sel *imap.SelectData

	live    int                   // catalogued live messages under sel.UIDValidity
	present uidRanges             // UIDs of a full listing
	fresh   []srvMsg              // listed, not in the catalog
	w       *archive.FolderWriter // opened at the first write: an empty folder gets no file

	flagChanges, expunged int
	labelChanges          int  // Gmail mode: messages whose labels changed
	gmComplete            bool // Gmail mode: every message will have its ids (gmail.go)
	done                  bool // finish ran
	unsure                bool // expunges not marked (search.go): status left unrecorded
}

// syncFolder brings one folder of the archive up to date with the server.
// A returned error means the folder (or the connection) failed; failures of
// single messages are recorded and the rest continue.
func (b *backup) syncFolder(c *imapclient.Client, j *folderJob) error {
	ex, err := b.examine(c, j)
	if err != nil {
		return err
	}
	f := j.cat
	if ex.state.Stale {
		if f, ex.state, err = b.reset(c, f, ex.sel); err != nil {
			return err
		}
	}
	s := &folderSync{b: b, c: c, f: f, sel: ex.sel, live: ex.state.Live}
	behind := false // finish runs on a goroutine of its own
	defer func() {
		if !behind {
			s.abort()
		}
	}()
	full, err := s.list(ex)
	if err != nil {
		return err
	}
	if err := s.pageHidden(j.status, full); err != nil { // paging.go
		return err
	}
	if err := s.expunges(full); err != nil {
		return err
	}
	if err := b.gmailSync(s); err != nil { // gmail.go
		return err
	}
	failed, err := s.storeNew()
	if err == nil && s.w != nil {
		// The folder's last commit (fsync, then the catalog) and its
		// status run behind: the connection goes back to the pool and
		// takes the next folder meanwhile. Backup waits for them. At
		// most Connections run behind (see backup.behind): past that,
		// the connection waits for the oldest.
		select {
		case b.behind <- struct{}{}:
		default:
			if behindFull != nil {
				behindFull()
			}
			b.behind <- struct{}{}
		}
		behind = true
		b.finishing.Go(func() {
			defer func() { <-b.behind }()
			if behindStart != nil {
				defer behindStart()()
			}
			err := s.finish(failed || s.unsure, nil)
			if err == nil && !failed {
				err = b.gmailDone(s) // gmail.go
			}
			if err != nil && b.ctx.Err() == nil {
				b.fail(s.f.Name, 0, err)
			}
		})
		return nil
	}
	if err := s.finish(failed || s.unsure, err); err != nil || failed {
		return err
	}
	return b.gmailDone(s) // gmail.go
}

// behindStart and behindFull are test hooks: a commit behind starts
// (the function it returns is called as it ends); a folder waits for a
// commit behind to end.
var (
	behindStart func() (end func())
	behindFull  func()
)

// examined is a folder after EXAMINE.
type examined struct {
	sel     *imap.SelectData
	state   catalog.SyncState
	pre     *imapclient.FetchCommand // the metadata FETCH sent behind EXAMINE, or nil
	preFull bool                     // pre lists every message (no CHANGEDSINCE)
}

// examine selects the folder read-only. When STATUS lets it predict the
// outcome (messages present under the UIDVALIDITY the catalog's folder was
// synchronised under, or a folder never synchronised) it sends the metadata
// FETCH right behind, before it asks the catalog for the folder's state:
// that count reads every catalogued row of the folder, and runs while the
// server opens the mailbox (Dovecot re-reads a changed Maildir at EXAMINE)
// instead of before the FETCH is sent. If EXAMINE or the catalog then
// disagree (another UIDVALIDITY, an empty folder, messages to re-key),
// that answer is drained and the folder is listed again.
func (b *backup) examine(c *imapclient.Client, j *folderJob) (*examined, error) {
	f, st := j.cat, j.status
	selCmd := c.Select(j.list.Mailbox, &imap.SelectOptions{ReadOnly: true, CondStore: b.condstore})
	ex := &examined{}
	drop := func() {
		if ex.pre != nil {
			ex.pre.Close()
			ex.pre = nil
		}
	}
	var known uint32 // the UIDVALIDITY ex.state was computed for
	if st != nil && st.NumMessages != nil && *st.NumMessages > 0 && st.UIDValidity != 0 {
		if f.UIDValidity == 0 || f.UIDValidity == st.UIDValidity {
			ex.preFull = !b.incremental(f, st.UIDValidity)
			ex.pre = b.listCmd(c, b.changedSince(ex.preFull, f), false)
		}
		var err error
		if ex.state, err = b.a.Cat.SyncState(b.ctx, f.ID, st.UIDValidity); err != nil {
			selCmd.Wait()
			drop()
			return nil, err
		}
		known = st.UIDValidity
	}
	sel, err := selCmd.Wait()
	if err != nil {
		drop()
		return nil, fmt.Errorf("EXAMINE: %w", err)
	}
	if sel.UIDValidity == 0 {
		drop()
		return nil, fmt.Errorf("server sent no UIDVALIDITY")
	}
	ex.sel = sel
	if ex.pre != nil && (sel.UIDValidity != st.UIDValidity || sel.NumMessages == 0) {
		drop()
	}
	if known != sel.UIDValidity {
		if ex.state, err = b.a.Cat.SyncState(b.ctx, f.ID, sel.UIDValidity); err != nil {
			drop()
			return nil, err
		}
	}
	if ex.state.Stale {
		drop()
	}
	return ex, nil
}

// incremental reports whether the folder can be listed with CHANGEDSINCE.
func (b *backup) incremental(f *catalog.Folder, uidValidity uint32) bool {
	return b.condstore && f.HighestModSeq > 0 && f.UIDValidity == uidValidity
}

func (b *backup) changedSince(full bool, f *catalog.Folder) uint64 {
	if full {
		return 0
	}
	return f.HighestModSeq
}

// reset re-keys a folder whose UIDVALIDITY changed (or whose messages
// lack UIDs) and returns its new catalog state.
func (b *backup) reset(c *imapclient.Client, f *catalog.Folder, sel *imap.SelectData) (*catalog.Folder, catalog.SyncState, error) {
	var st catalog.SyncState
	if err := b.resetValidity(c, f, sel); err != nil {
		return nil, st, fmt.Errorf("UIDVALIDITY changed to %d: %w", sel.UIDValidity, err)
	}
	f, err := b.a.Cat.Folder(b.ctx, f.Name)
	if err != nil {
		return nil, st, err
	}
	st, err = b.a.Cat.SyncState(b.ctx, f.ID, sel.UIDValidity)
	return f, st, err
}

// list reads the server's metadata listing (the one examine pipelined, or
// a new one) and compares it with the catalog batch by batch: unknown
// UIDs become fresh, changed flags are recorded at once. It reports
// whether the listing was full (every message, no CHANGEDSINCE).
func (s *folderSync) list(ex *examined) (full bool, err error) {
	if ex.pre != nil {
		return ex.preFull, s.compareListing(ex.pre, ex.preFull)
	}
	if s.sel.NumMessages == 0 {
		return true, nil
	}
	full = !(s.b.incremental(s.f, s.sel.UIDValidity) && s.sel.HighestModSeq > 0)
	return full, s.compareListing(s.b.listCmd(s.c, s.b.changedSince(full, s.f), false), full)
}

// compareListing streams the answer to a metadata FETCH through compare,
// catalog.MaxUIDBatch messages at a time.
func (s *folderSync) compareListing(cmd *imapclient.FetchCommand, full bool) error {
	batch := make([]srvMsg, 0, listBatch)
	n := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			abandonOne(s.c, cmd)
			return fmt.Errorf("UID FETCH metadata: %w", err)
		}
		if buf.UID == 0 {
			continue
		}
		n++
		if full {
			s.present.add(buf.UID)
		}
		batch = append(batch, srvMsg{uid: buf.UID, flags: flagStrings(buf.Flags), date: buf.InternalDate, size: buf.RFC822Size, modseq: buf.ModSeq})
		if len(batch) == cap(batch) {
			if err := s.compare(batch); err != nil {
				abandonOne(s.c, cmd)
				return err
			}
			batch = batch[:0]
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("UID FETCH metadata: %w", err)
	}
	if err := s.compare(batch); err != nil {
		return err
	}
	if full && uint32(n) != s.sel.NumMessages {
		return fmt.Errorf("server listed %d of its %d messages; nothing marked expunged, retry later", n, s.sel.NumMessages)
	}
	return nil
}

// compare looks a batch of listed messages up in the catalog by UID: the
// unknown ones are fresh, the flag changes of live ones are written.
func (s *folderSync) compare(batch []srvMsg) error {
	if len(batch) == 0 {
		return nil
	}
	uids := make([]uint32, len(batch))
	for i, m := range batch {
		uids[i] = uint32(m.uid)
	}
	known, err := s.b.a.Cat.ByUIDs(s.b.ctx, s.f.ID, s.sel.UIDValidity, uids)
	if err != nil {
		return err
	}
	var changes []catalog.FlagChange
	byID := map[int64]*catalog.Message{}
	for _, sm := range batch {
		m := known[uint32(sm.uid)]
		if m == nil {
			s.fresh = append(s.fresh, sm)
			continue
		}
		if m.ExpungedRun == 0 && byID[m.ID] == nil && catalog.JoinFlags(m.Flags) != catalog.JoinFlags(sm.flags) {
			changes = append(changes, catalog.FlagChange{ID: m.ID, Flags: sm.flags, ModSeq: sm.modseq})
			byID[m.ID] = m
		}
	}
	return s.setFlags(changes, byID)
}

// setFlags records flag changes (and renames Maildir files).
func (s *folderSync) setFlags(changes []catalog.FlagChange, byID map[int64]*catalog.Message) error {
	if len(changes) == 0 {
		return nil
	}
	w, err := s.writer()
	if err != nil {
		return err
	}
	if err := w.SetFlags(changes, byID); err != nil {
		return err
	}
	s.flagChanges += len(changes)
	return nil
}

// expunges marks the catalogued messages the server no longer has. A
// full listing shows them directly; after CHANGEDSINCE the counts tell
// whether a UID SEARCH is needed. The catalog's UIDs are walked page by
// page in UID order against the server's UIDs kept as ranges.
func (s *folderSync) expunges(full bool) error {
	present := &s.present
	if !full {
		if s.sel.NumMessages == uint32(s.live+len(s.fresh)) {
			return nil
		}
		data, err := s.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("UID SEARCH: %w", err)
		}
		present = &uidRanges{}
		if set, ok := data.All.(imap.UIDSet); ok {
			for _, r := range set {
				present.addRange(r.Start, r.Stop)
			}
		}
		if !s.usableSearch(present) { // search.go
			return nil
		}
	}
	present.normalize()
	if full && s.live == 0 {
		return nil
	}
	var after uint32
	for {
		page, err := s.b.a.Cat.LiveUIDs(s.b.ctx, s.f.ID, s.sel.UIDValidity, after, expungePage)
		if err != nil {
			return err
		}
		var gone []int64
		for _, r := range page {
			if !present.has(imap.UID(r.UID)) {
				gone = append(gone, r.ID)
			}
		}
		if err := s.b.a.Cat.MarkExpunged(s.b.ctx, s.b.run, gone); err != nil {
			return err
		}
		s.expunged += len(gone)
		if len(page) < expungePage {
			return nil
		}
		after = page[len(page)-1].UID
	}
}

// writer opens the folder's writer at the first write.
func (s *folderSync) writer() (*archive.FolderWriter, error) {
	if s.w == nil {
		w, err := s.b.a.NewWriter(s.b.ctx, s.f, s.b.run)
		if err != nil {
			return nil, err
		}
		s.w = w
	}
	return s.w, nil
}

// storeNew fetches and stores the fresh messages.
func (s *folderSync) storeNew() (failed bool, err error) {
	if len(s.fresh) == 0 {
		return false, nil
	}
	w, err := s.writer()
	if err != nil {
		return false, err
	}
	return s.b.storeBudgeted(s.c, w, s.sel.UIDValidity, s.fresh) // limits.go
}

// finish closes the writer, adds the folder's figures to the run's stats
// and, when every message made it, records the folder's status.
func (s *folderSync) finish(failed bool, err error) error {
	b := s.b
	s.done = true
	var n int
	var by int64
	if s.w != nil {
		w := s.w
		s.w = nil
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
		n, by = w.Stored()
	}
	b.mu.Lock()
	b.stats.FlagChanges += s.flagChanges + s.labelChanges
	b.stats.Expunged += s.expunged
	b.stats.Fetched += n
	b.stats.Bytes += by
	b.mu.Unlock()
	if err != nil {
		return err
	}
	b.log.Debug("folder synced", "account", b.acct, "folder", s.f.Name, "new", n, "bytes", by, "flags", s.flagChanges, "expunged", s.expunged)
	if failed {
		return nil // leave the folder's status unrecorded so the next run looks again
	}
	return b.a.Cat.SetFolderStatus(s.b.ctx, s.f.ID, s.sel.UIDValidity, uint32(s.sel.UIDNext), s.sel.NumMessages, s.sel.HighestModSeq)
}

// abort counts what an interrupted sync did and closes its writer (which
// commits what is durable).
func (s *folderSync) abort() {
	if !s.done {
		s.finish(true, errAborted)
	}
}

var errAborted = errors.New("folder sync aborted")

// uidRanges is a set of UIDs as sorted, disjoint ranges: a folder's UIDs
// with few gaps cost a few ranges, not a word per message.
type uidRanges struct {
	r []imap.UIDRange
}

func (u *uidRanges) add(uid imap.UID) { u.addRange(uid, uid) }

func (u *uidRanges) addRange(start, stop imap.UID) {
	if stop == 0 { // "*": not expected in a server's answer; take it as start
		stop = start
	}
	if n := len(u.r); n > 0 {
		last := &u.r[n-1]
		if start >= last.Start && start <= last.Stop+1 {
			last.Stop = max(last.Stop, stop)
			return
		}
	}
	u.r = append(u.r, imap.UIDRange{Start: start, Stop: stop})
}

// normalize sorts and merges the ranges (a server may answer out of order).
func (u *uidRanges) normalize() {
	if slices.IsSortedFunc(u.r, func(a, b imap.UIDRange) int { return int(int64(a.Start) - int64(b.Start)) }) {
		if !u.overlapping() {
			return
		}
	}
	slices.SortFunc(u.r, func(a, b imap.UIDRange) int { return int(int64(a.Start) - int64(b.Start)) })
	out := u.r[:0]
	for _, x := range u.r {
		if n := len(out); n > 0 && x.Start <= out[n-1].Stop+1 {
			out[n-1].Stop = max(out[n-1].Stop, x.Stop)
			continue
		}
		out = append(out, x)
	}
	u.r = out
}

func (u *uidRanges) overlapping() bool {
	for i := 1; i < len(u.r); i++ {
		if u.r[i].Start <= u.r[i-1].Stop+1 {
			return true
		}
	}
	return false
}

// has reports whether uid is in the set (after normalize).
func (u *uidRanges) has(uid imap.UID) bool {
	i := sort.Search(len(u.r), func(i int) bool { return u.r[i].Stop >= uid })
	return i < len(u.r) && u.r[i].Start <= uid
}

// storeNew fetches the bodies of fresh messages and adds them to w. It
// reports whether any single message failed.
func (b *backup) storeNew(c *imapclient.Client, w *archive.FolderWriter, uidValidity uint32, fresh []srvMsg) (failed bool, err error) {
	if len(fresh) == 0 {
		return false, nil
	}
	meta := make(map[imap.UID]srvMsg, len(fresh))
	uids := make([]imap.UID, 0, len(fresh))
	for _, s := range fresh {
		meta[s.uid] = s
		uids = append(uids, s.uid)
	}
	slices.Sort(uids)
	uids = slices.Compact(uids) // a server may list a UID twice
	name := w.Folder().Name
	store := func(uid imap.UID, r io.Reader) error {
		s := meta[uid]
		in := &archive.Incoming{UIDValidity: uidValidity, UID: uint32(uid), ModSeq: s.modseq, InternalDate: s.date, Flags: s.flags}
		s.setGmail(in)
		_, err := w.Add(in, r)
		if err != nil {
			return err
		}
		if b.opt.Progress != nil {
			b.opt.Progress(name, 1, s.size)
		}
		return nil
	}
	missing, nilBodies, err := fetchBodies(c, uids, store)
	if err != nil {
		return true, err
	}
	if len(missing) > 0 { // ask once more, one message per command
		var again []imap.UID
		again, nb, err := fetchBodies(c, missing, store)
		if err != nil {
			return true, err
		}
		nilBodies = append(nilBodies, nb...)
		for _, u := range again {
			b.fail(name, uint32(u), fmt.Errorf("server did not return the message (asked twice)"))
			failed = true
		}
	}
	for _, u := range nilBodies {
		b.fail(name, uint32(u), fmt.Errorf("server returned no body (NIL)"))
		failed = true
	}
	return failed, nil
}

// fetchBodies streams BODY.PEEK[] of uids to fn, in chunks. It
// returns the UIDs the server did not answer and those it answered with
// NIL. An error from fn or the connection is returned after the connection
// has been abandoned (closed and drained), so the caller must not reuse c.
func fetchBodies(c *imapclient.Client, uids []imap.UID, fn func(imap.UID, io.Reader) error) (missing, nilBodies []imap.UID, err error) {
	opt := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	got := make(map[imap.UID]bool, len(uids))
	for i := 0; i < len(uids); i += bodyChunk {
		cmd := c.Fetch(imap.UIDSetNum(uids[i:min(i+bodyChunk, len(uids))]...), opt)
		if err := consumeBodies(cmd, got, &nilBodies, fn); err != nil {
			abandon(c, []*imapclient.FetchCommand{cmd})
			return nil, nil, err
		}
		if err := cmd.Close(); err != nil {
			// A NO for some messages is not fatal: they show up as missing.
			if _, ok := err.(*imap.Error); !ok || stopsFetch(provlimit.KindOf(err)) {
				abandon(c, nil)
				return nil, nil, fmt.Errorf("UID FETCH: %w", err)
			}
		}
	}
	for _, u := range uids {
		if !got[u] {
			missing = append(missing, u)
		}
	}
	return missing, nilBodies, nil
}

func consumeBodies(cmd *imapclient.FetchCommand, got map[imap.UID]bool, nilBodies *[]imap.UID, fn func(imap.UID, io.Reader) error) error {
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if uid == 0 || got[uid] {
					continue // unmatched or repeated: drained by msg.Next
				}
				got[uid] = true
				if it.Literal == nil {
					*nilBodies = append(*nilBodies, uid)
					continue
				}
				// go-imap ends a literal cut by a dropped connection with a
				// plain EOF: count the bytes, or a truncated message would
				// be archived as whole.
				lr := &sizedReader{r: it.Literal, left: it.Literal.Size()}
				if err := fn(uid, lr); err != nil {
					return fmt.Errorf("uid %d: %w", uid, err)
				}
				if lr.left != 0 {
					return fmt.Errorf("uid %d: %w", uid, io.ErrUnexpectedEOF)
				}
			}
		}
	}
	return nil
}

// abandon closes a connection whose responses are no longer wanted and
// drains the pending commands so go-imap's reader can exit.
func abandon(c *imapclient.Client, cmds []*imapclient.FetchCommand) {
	go c.Close()
	for _, cmd := range cmds {
		cmd.Close()
	}
}

// listMeta fetches UID, FLAGS, INTERNALDATE, RFC822.SIZE (and MODSEQ) of
// every message, or only of those changed since changedSince.
func (b *backup) listMeta(c *imapclient.Client, changedSince uint64, withMsgID bool) ([]srvMsg, error) {
	return b.collect(c, b.listCmd(c, changedSince, withMsgID), withMsgID)
}

var msgIDSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}

// listCmd sends the metadata FETCH.
func (b *backup) listCmd(c *imapclient.Client, changedSince uint64, withMsgID bool) *imapclient.FetchCommand {
	opt := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, ModSeq: b.condstore, ChangedSince: changedSince}
	if withMsgID {
		opt.BodySection = []*imap.FetchItemBodySection{msgIDSection}
	}
	return c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opt)
}

// collect reads the answer to listCmd.
func (b *backup) collect(c *imapclient.Client, cmd *imapclient.FetchCommand, withMsgID bool) ([]srvMsg, error) {
	var out []srvMsg
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			abandonOne(c, cmd)
			return nil, fmt.Errorf("UID FETCH metadata: %w", err)
		}
		if buf.UID == 0 {
			continue
		}
		s := srvMsg{uid: buf.UID, flags: flagStrings(buf.Flags), date: buf.InternalDate, size: buf.RFC822Size, modseq: buf.ModSeq}
		if withMsgID {
			s.msgID = parseMessageID(buf.FindBodySection(msgIDSection))
		}
		out = append(out, s)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("UID FETCH metadata: %w", err)
	}
	return out, nil
}

func abandonOne(c *imapclient.Client, cmd *imapclient.FetchCommand) {
	go c.Close()
	cmd.Close()
}

// flagStrings converts flags, dropping \Recent (session state, never archived).
func flagStrings(fl []imap.Flag) []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}

func parseMessageID(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Trim(strings.TrimSpace(s), "<>")
}

// resetValidity handles a UIDVALIDITY change: messages already archived
// are recognised (size, INTERNALDATE and Message-ID first, then the SHA-256
// of the bytes) and re-keyed to their new UIDs; the rest is fetched later as
// new mail.
func (b *backup) resetValidity(c *imapclient.Client, f *catalog.Folder, sel *imap.SelectData) error {
	type key struct {
		size  int64
		date  int64
		msgID string
	}
	cands := map[key][]*catalog.Message{}
	err := b.a.Cat.Each(b.ctx, f.ID, func(m *catalog.Message) error {
		if m.UIDValidity != sel.UIDValidity {
			k := key{m.Size, m.InternalDate.Unix(), m.MessageID}
			cands[k] = append(cands[k], m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var listing []srvMsg
	if sel.NumMessages > 0 {
		if listing, err = b.listMeta(c, 0, true); err != nil {
			return err
		}
		if uint32(len(listing)) != sel.NumMessages {
			return fmt.Errorf("server listed %d of its %d messages", len(listing), sel.NumMessages)
		}
	}
	meta := map[imap.UID]srvMsg{}
	var hashUIDs []imap.UID
	for _, s := range listing {
		if len(cands[key{s.size, s.date.Unix(), s.msgID}]) > 0 {
			meta[s.uid] = s
			hashUIDs = append(hashUIDs, s.uid)
		}
	}
	used := map[int64]bool{}
	var rekeys []catalog.Rekey
	_, _, err = fetchBodies(c, hashUIDs, func(uid imap.UID, r io.Reader) error {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		s := meta[uid]
		for _, m := range cands[key{s.size, s.date.Unix(), s.msgID}] {
			if !used[m.ID] && m.SHA256 == sum {
				used[m.ID] = true
				rekeys = append(rekeys, catalog.Rekey{ID: m.ID, UID: uint32(uid), Flags: s.flags, ModSeq: s.modseq})
				break
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := b.a.Cat.ResetValidity(b.ctx, f.ID, b.run, sel.UIDValidity, rekeys); err != nil {
		return err
	}
	b.log.Info("UIDVALIDITY changed; archived messages re-keyed", "account", b.acct, "folder", f.Name, "uidvalidity", sel.UIDValidity, "rekeyed", len(rekeys))
	b.mu.Lock()
	b.stats.Rekeyed += len(rekeys)
	b.mu.Unlock()
	return nil
}

// sizedReader fails with io.ErrUnexpectedEOF when its source ends before
// the announced size.
type sizedReader struct {
	r    io.Reader
	left int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		return n, fmt.Errorf("connection lost with %d bytes of the message unread: %w", s.left, io.ErrUnexpectedEOF)
	}
	return n, err
}
