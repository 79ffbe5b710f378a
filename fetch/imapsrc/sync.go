package imapsrc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/provlimit"
)

// bodyChunk is how many messages one UID FETCH of bodies asks for. Chunks
// are sent one after the other, never pipelined: Dovecot may answer
// pipelined FETCH commands interleaved, and go-imap v2 blocks its reader on
// a literal until it is consumed, so a message of the second command
// arriving while the first is being read would deadlock the connection.
var bodyChunk = 1000

// srvMsg is a message's metadata as the server reports it.
type srvMsg struct {
	uid    imap.UID
	flags  []string
	date   time.Time
	size   int64
	modseq uint64
	msgID  string
}

// syncFolder brings one folder of the archive up to date with the server.
// A returned error means the folder (or the connection) failed; failures of
// single messages are recorded and the rest continue.
func (b *backup) syncFolder(c *imapclient.Client, j *folderJob) error {
	f := j.cat
	all, err := b.a.Cat.All(f.ID)
	if err != nil {
		return err
	}
	// Send the metadata FETCH right behind SELECT when STATUS lets us
	// predict it (same UIDVALIDITY, messages present): one round trip less
	// per folder. If SELECT then disagrees, the answer is drained and the
	// folder is listed again.
	selCmd := c.Select(j.list.Mailbox, &imap.SelectOptions{ReadOnly: true, CondStore: b.condstore})
	var pre *imapclient.FetchCommand
	preFull := true
	st := j.status
	if st != nil && st.NumMessages != nil && *st.NumMessages > 0 && st.UIDValidity != 0 && !needsReset(all, st.UIDValidity) {
		if b.condstore && f.HighestModSeq > 0 && f.UIDValidity == st.UIDValidity {
			pre, preFull = b.listCmd(c, f.HighestModSeq, false), false
		} else {
			pre = b.listCmd(c, 0, false)
		}
	}
	sel, err := selCmd.Wait()
	if err != nil {
		if pre != nil {
			pre.Close()
		}
		return fmt.Errorf("EXAMINE: %w", err)
	}
	if sel.UIDValidity == 0 {
		if pre != nil {
			pre.Close()
		}
		return fmt.Errorf("server sent no UIDVALIDITY")
	}
	if pre != nil && (sel.UIDValidity != st.UIDValidity || sel.NumMessages == 0) {
		pre.Close()
		pre = nil
	}
	if needsReset(all, sel.UIDValidity) {
		if err := b.resetValidity(c, f, sel, all); err != nil {
			return fmt.Errorf("UIDVALIDITY changed to %d: %w", sel.UIDValidity, err)
		}
		if f, err = b.a.Cat.Folder(f.Name); err != nil {
			return err
		}
		if all, err = b.a.Cat.All(f.ID); err != nil {
			return err
		}
	}

	cur := map[imap.UID]*catalog.Message{}
	live := 0
	for _, m := range all {
		if m.UIDValidity == sel.UIDValidity && m.UID != 0 {
			cur[imap.UID(m.UID)] = m
			if m.ExpungedRun == 0 {
				live++
			}
		}
	}

	var listing []srvMsg
	full := true
	if pre != nil {
		full = preFull
		if listing, err = b.collect(c, pre, false); err != nil {
			return err
		}
		if full && uint32(len(listing)) != sel.NumMessages {
			return fmt.Errorf("server listed %d of its %d messages; nothing marked expunged, retry later", len(listing), sel.NumMessages)
		}
	} else if sel.NumMessages > 0 {
		if b.condstore && f.HighestModSeq > 0 && f.UIDValidity == sel.UIDValidity && sel.HighestModSeq > 0 {
			full = false
			listing, err = b.listMeta(c, f.HighestModSeq, false)
		} else {
			listing, err = b.listMeta(c, 0, false)
		}
		if err != nil {
			return err
		}
		if full && uint32(len(listing)) != sel.NumMessages {
			return fmt.Errorf("server listed %d of its %d messages; nothing marked expunged, retry later", len(listing), sel.NumMessages)
		}
	}

	var fresh []srvMsg
	var changes []catalog.FlagChange
	for _, s := range listing {
		m := cur[s.uid]
		if m == nil {
			fresh = append(fresh, s)
			continue
		}
		if m.ExpungedRun == 0 && catalog.JoinFlags(m.Flags) != catalog.JoinFlags(s.flags) {
			changes = append(changes, catalog.FlagChange{ID: m.ID, Flags: s.flags, ModSeq: s.modseq})
		}
	}

	// Expunges: a full listing shows them directly; after CHANGEDSINCE the
	// counts tell whether a UID SEARCH is needed.
	var present map[imap.UID]bool
	if full {
		present = make(map[imap.UID]bool, len(listing))
		for _, s := range listing {
			present[s.uid] = true
		}
	} else if sel.NumMessages != uint32(live+len(fresh)) {
		uids, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("UID SEARCH: %w", err)
		}
		present = map[imap.UID]bool{}
		for _, u := range uids.AllUIDs() {
			present[u] = true
		}
	}
	var gone []int64
	if present != nil {
		for uid, m := range cur {
			if m.ExpungedRun == 0 && !present[uid] {
				gone = append(gone, m.ID)
			}
		}
	}

	w, err := b.a.NewWriter(f, b.run)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			w.Close()
		}
	}()
	byID := make(map[int64]*catalog.Message, len(cur))
	for _, m := range cur {
		byID[m.ID] = m
	}
	if err := w.SetFlags(changes, byID); err != nil {
		return err
	}
	if err := b.a.Cat.MarkExpunged(b.run, gone); err != nil {
		return err
	}
	b.mu.Lock()
	b.stats.FlagChanges += len(changes)
	b.stats.Expunged += len(gone)
	b.mu.Unlock()

	failed, err := b.storeBudgeted(c, w, sel.UIDValidity, fresh) // limits.go
	closed = true
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	n, by := w.Stored()
	b.mu.Lock()
	b.stats.Fetched += n
	b.stats.Bytes += by
	b.mu.Unlock()
	if err != nil {
		return err
	}
	b.log.Debug("folder synced", "account", b.acct, "folder", f.Name, "new", n, "bytes", by, "flags", len(changes), "expunged", len(gone))
	if failed {
		return nil // leave the folder's status unrecorded so the next run looks again
	}
	return b.a.Cat.SetFolderStatus(f.ID, sel.UIDValidity, uint32(sel.UIDNext), sel.NumMessages, sel.HighestModSeq)
}

// needsReset reports whether live messages were stored under another
// UIDVALIDITY than the server's current one, or have no UID at all (rows
// that reindex rebuilt from the files alone): both are recognised by
// resetValidity instead of being fetched and stored again.
func needsReset(all []*catalog.Message, uidValidity uint32) bool {
	for _, m := range all {
		if m.ExpungedRun != 0 {
			continue
		}
		if (m.UID != 0 && m.UIDValidity != uidValidity) || (m.UID == 0 && m.UIDL == "") {
			return true
		}
	}
	return false
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
	name := w.Folder().Name
	store := func(uid imap.UID, r io.Reader) error {
		s := meta[uid]
		_, err := w.Add(&archive.Incoming{UIDValidity: uidValidity, UID: uint32(uid), ModSeq: s.modseq, InternalDate: s.date, Flags: s.flags}, r)
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
			if _, ok := err.(*imap.Error); !ok || provlimit.KindOf(err) == provlimit.DailyLimit {
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
func (b *backup) resetValidity(c *imapclient.Client, f *catalog.Folder, sel *imap.SelectData, all []*catalog.Message) error {
	type key struct {
		size  int64
		date  int64
		msgID string
	}
	cands := map[key][]*catalog.Message{}
	for _, m := range all {
		if m.UIDValidity != sel.UIDValidity {
			k := key{m.Size, m.InternalDate.Unix(), m.MessageID}
			cands[k] = append(cands[k], m)
		}
	}
	var listing []srvMsg
	if sel.NumMessages > 0 {
		var err error
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
	_, _, err := fetchBodies(c, hashUIDs, func(uid imap.UID, r io.Reader) error {
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
	if err := b.a.Cat.ResetValidity(f.ID, b.run, sel.UIDValidity, rekeys); err != nil {
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
