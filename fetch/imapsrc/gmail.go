package imapsrc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// Gmail mode (issue 13). Gmail's folders are labels over one message
// store: [Gmail]/All Mail (special use \All) holds every message except
// Spam (\Junk) and Trash (\Trash), and INBOX, [Gmail]/Sent Mail,
// [Gmail]/Starred and each user label show the same messages again, so a
// folder-by-folder backup downloads a message once per label. When the
// server offers X-GM-EXT-1 and Options.Gmail is set, a backup
//
//   - synchronises All Mail, Spam and Trash as ordinary folders (UIDs,
//     flags, expunges, CONDSTORE), and records for each message its
//     X-GM-MSGID, X-GM-THRID and X-GM-LABELS: the new messages' are read
//     (on a raw connection, gmailext: go-imap cannot parse them) before
//     their bodies and committed with them; label changes of known
//     messages come with the same FETCH, CHANGEDSINCE the folder's last
//     HIGHESTMODSEQ (a label change bumps MODSEQ), and are written with
//     catalog.SetGmail. Messages stored without ids (an archive backed up
//     folder by folder before) get them by one FETCH of the whole folder,
//     without bodies;
//   - makes every other listed folder a view (catalog.EnsureViews): its
//     name shows All Mail's messages carrying its label, nothing is
//     downloaded for it. A folder that held messages of its own keeps
//     them, renamed to catalog.FrozenName ("[before Gmail mode]/INBOX");
//   - recognises a message that comes back to a folder it left (All Mail
//     after Trash or Spam) by its X-GM-MSGID and revives its old row under
//     the new UID instead of downloading it again. A message moved to Trash
//     or Spam is downloaded into that folder (its own file: a row pointing
//     into All Mail's file would break the per-file accounting of verify
//     and repair); its All Mail row is marked expunged as usual.
//
// Without an \All folder among the selected folders (excluded by
// --exclude, or hidden from IMAP in Gmail's settings) the backup stays
// folder by folder, with a warning.

// capGmail is Gmail's capability for its IMAP extensions.
const capGmail = "X-GM-EXT-1"

// rawDialer is what Gmail mode needs of Options.Account beside Server: a
// raw connection for the X-GM-EXT-1 FETCH items (imapconn.Config has it).
type rawDialer interface {
	DialRaw(ctx context.Context) (*imapconn.Raw, error)
}

// gmailState is a Gmail-mode run's view of the account.
type gmailState struct {
	all    *catalog.Folder
	synced map[string]bool // All Mail, Spam, Trash by catalog name
	force  map[int64]bool  // folders to list in full although STATUS shows no change (ids missing)
	dial   rawDialer
}

// forced reports whether folder f must be synchronised although STATUS
// shows no change: some of its messages have no X-GM-MSGID yet.
func (g *gmailState) forced(f *catalog.Folder) bool {
	return g != nil && g.force[f.ID]
}

// gmailLabel is the label a Gmail folder shows, as X-GM-LABELS names it.
func gmailLabel(name, specialUse string) string {
	if name == "INBOX" {
		return `\Inbox`
	}
	switch strings.ToLower(specialUse) {
	case `\sent`:
		return `\Sent`
	case `\drafts`:
		return `\Draft`
	case `\flagged`:
		return `\Starred`
	case `\important`:
		return `\Important`
	}
	return name
}

// gmailSetup turns Gmail mode on when it applies: the server has
// X-GM-EXT-1, Options.Gmail is set, the account can dial raw connections
// and All Mail is among the listed folders. It makes the label folders
// views (before plan, which then skips them) and notes the folders whose
// messages lack Gmail ids.
func (b *backup) gmailSetup(c *imapclient.Client, jobs []*folderJob) error {
	if !b.opt.Gmail || !c.Caps().Has(imap.Cap(capGmail)) {
		return nil
	}
	dial, ok := b.opt.Account.(rawDialer)
	if !ok {
		b.log.Warn("Gmail: the account offers no raw connection; backing up folder by folder", "account", b.acct)
		return nil
	}
	var allJob *folderJob
	for _, j := range jobs {
		if strings.EqualFold(specialUse(j.list.Attrs), `\All`) {
			allJob = j
			break
		}
	}
	if allJob == nil {
		b.log.Warn("Gmail: no \\All folder (All Mail) among the folders backed up; backing up folder by folder", "account", b.acct)
		return nil
	}
	known, err := b.a.Cat.Folders(b.ctx)
	if err != nil {
		return err
	}
	g := &gmailState{synced: map[string]bool{}, force: map[int64]bool{}, dial: dial}
	var own []*folderJob
	var views []catalog.View
	for _, j := range jobs {
		name := normInbox(j.list.Mailbox, j.list.Delim)
		su := specialUse(j.list.Attrs)
		switch strings.ToLower(su) {
		case `\all`, `\junk`, `\trash`:
			if j == allJob || !strings.EqualFold(su, `\All`) {
				own = append(own, j)
				g.synced[name] = true
			}
			continue
		}
		views = append(views, catalog.View{Name: name, Delim: j.list.Delim, SpecialUse: su, Label: gmailLabel(name, su)})
	}
	cats, err := b.ensureFolders(own, folderIndex(known))
	if err != nil {
		return err
	}
	for i, j := range own {
		f := cats[i]
		if j == allJob {
			g.all = f
		}
		if f.UIDValidity == 0 {
			continue
		}
		miss, err := b.gmailMissing(f, f.UIDValidity)
		if err != nil {
			return err
		}
		if miss {
			g.force[f.ID] = true
		}
	}
	if _, err := b.a.Cat.EnsureViews(b.ctx, g.all.ID, views); err != nil {
		return err
	}
	b.gm = g
	b.log.Info("Gmail mode: All Mail, Spam and Trash backed up, labels kept as views", "account", b.acct, "folders", len(own), "labels", len(views))
	return nil
}

// skipView reports whether plan leaves folder f alone: a Gmail label view
// has nothing of its own to synchronise. Outside Gmail mode such a folder
// (the archive was backed up in Gmail mode) is not backed up folder by
// folder either: its messages are in All Mail.
func (b *backup) skipView(f *catalog.Folder) bool {
	if !f.IsView() {
		return false
	}
	if b.gm == nil {
		b.log.Warn("folder is a Gmail label view in this archive (backed up in Gmail mode); not backed up folder by folder", "account", b.acct, "folder", f.Name)
	}
	return true
}

// gmailSync reads the Gmail ids and labels of a synchronised Gmail folder
// after its listing: the fresh messages' (kept on s.fresh, committed with
// their bodies), the label changes of known ones (written now) and, when
// some known ones have none, every message's. A fresh message whose
// X-GM-MSGID the folder has already archived (it left and came back) is
// revived instead of fetched again.
func (b *backup) gmailSync(s *folderSync) error {
	if b.gm == nil || !b.gm.synced[s.f.Name] || s.sel.NumMessages == 0 {
		return nil
	}
	missing, err := b.gmailMissing(s.f, s.sel.UIDValidity)
	if err != nil {
		return err
	}
	var since uint64
	if !missing && b.incremental(s.f, s.sel.UIDValidity) && s.sel.HighestModSeq > 0 {
		since = s.f.HighestModSeq
		if since >= s.sel.HighestModSeq && len(s.fresh) == 0 {
			return nil // nothing changed
		}
	}
	raw, err := b.gm.dial.DialRaw(b.ctx)
	if err != nil {
		return fmt.Errorf("X-GM-MSGID, X-GM-LABELS: %w", err)
	}
	stop := context.AfterFunc(b.ctx, func() { raw.Close() })
	defer func() {
		stop()
		raw.Close()
	}()
	if err := examineRaw(raw, s.f.Name, s.sel.UIDValidity); err != nil {
		return fmt.Errorf("X-GM-MSGID, X-GM-LABELS: %w", err)
	}
	gc := gmailext.NewBuffered(raw.R, raw.W, nil)
	fresh := make(map[uint32]int, len(s.fresh))
	for i, m := range s.fresh {
		fresh[uint32(m.uid)] = i
	}
	got := 0
	var batch []gmailext.Message
	each := func(m gmailext.Message) error {
		if i, ok := fresh[m.UID]; ok {
			if s.fresh[i].gm == nil {
				got++
			}
			mm := m
			s.fresh[i].gm = &mm
			return nil
		}
		batch = append(batch, m)
		if len(batch) == catalog.MaxUIDBatch {
			err := b.gmailChanges(s, batch)
			batch = batch[:0]
			return err
		}
		return nil
	}
	opt := gmailext.FetchOptions{ModSeq: b.condstore, ChangedSince: since}
	if _, err := gc.FetchMetaEach(b.ctx, "1:*", opt, each); err != nil {
		return fmt.Errorf("X-GM-MSGID, X-GM-LABELS: %w", err)
	}
	if err := b.gmailChanges(s, batch); err != nil {
		return err
	}
	// Fresh messages CHANGEDSINCE did not answer for (none expected) are
	// asked for by UID.
	if got < len(fresh) {
		var uids []uint32
		for _, m := range s.fresh {
			if m.gm == nil {
				uids = append(uids, uint32(m.uid))
			}
		}
		for len(uids) > 0 {
			n := min(len(uids), catalog.MaxUIDBatch)
			if _, err := gc.FetchMetaEach(b.ctx, uidSet(uids[:n]), gmailext.FetchOptions{ModSeq: b.condstore}, each); err != nil {
				return fmt.Errorf("X-GM-MSGID, X-GM-LABELS: %w", err)
			}
			uids = uids[n:]
		}
	}
	raw.Logout()
	// Every message of the folder has its ids once the fresh ones are
	// stored (gmailDone records it then).
	s.gmComplete = true
	for _, m := range s.fresh {
		s.gmComplete = s.gmComplete && m.gm != nil
	}
	return b.gmailRevive(s)
}

// gmailDone runs after a Gmail folder synchronised without a failure:
// when every message then had its ids, the next runs look for missing
// ones only among messages stored after it.
func (b *backup) gmailDone(s *folderSync) error {
	if b.gm == nil || !b.gm.synced[s.f.Name] || !s.gmComplete {
		return nil
	}
	return b.setGmailComplete(s.f, s.sel.UIDValidity, uint32(s.sel.UIDNext), true)
}

// gmailMetaKey is the meta key that records that every message of a
// folder stored under a UIDVALIDITY below a UID has its Gmail ids (value
// "UIDVALIDITY:UIDNEXT"), so that a run looks for missing ones only among
// the messages stored since (a run with gmail = false stores them
// without).
func gmailMetaKey(f *catalog.Folder) string { return "gmail_ids_folder_" + strconv.FormatInt(f.ID, 10) }

// gmailMissing reports whether some live messages of folder f under
// uidValidity lack their Gmail ids (backed up before Gmail mode, or not
// answered for): then the folder is listed in full once.
func (b *backup) gmailMissing(f *catalog.Folder, uidValidity uint32) (bool, error) {
	v, err := b.a.Cat.Meta(b.ctx, gmailMetaKey(f))
	if err != nil {
		return false, err
	}
	var after uint32
	if uv, next, ok := strings.Cut(v, ":"); ok && uv == strconv.FormatUint(uint64(uidValidity), 10) {
		if n, err := strconv.ParseUint(next, 10, 32); err == nil && n > 0 {
			after = uint32(n - 1)
		}
	}
	return b.a.Cat.GmailMissing(b.ctx, f.ID, uidValidity, after)
}

// setGmailComplete records (or forgets) that every message of f under
// uidValidity below uidNext has its Gmail ids.
func (b *backup) setGmailComplete(f *catalog.Folder, uidValidity, uidNext uint32, complete bool) error {
	v := ""
	if complete {
		v = strconv.FormatUint(uint64(uidValidity), 10) + ":" + strconv.FormatUint(uint64(uidNext), 10)
	}
	old, err := b.a.Cat.Meta(b.ctx, gmailMetaKey(f))
	if err != nil || old == v {
		return err
	}
	return b.a.Cat.SetMeta(b.ctx, gmailMetaKey(f), v)
}

// gmailChanges compares Gmail's ids and labels of known messages with the
// catalog's and records the differences.
func (b *backup) gmailChanges(s *folderSync, batch []gmailext.Message) error {
	if len(batch) == 0 {
		return nil
	}
	uids := make([]uint32, len(batch))
	for i, m := range batch {
		uids[i] = m.UID
	}
	known, err := b.a.Cat.ByUIDs(b.ctx, s.f.ID, s.sel.UIDValidity, uids)
	if err != nil {
		return err
	}
	var metas []catalog.GmailMeta
	for _, m := range batch {
		k := known[m.UID]
		if k == nil || k.ExpungedRun != 0 {
			continue
		}
		labels := m.Labels
		if labels == nil {
			labels = []string{}
		}
		if k.GmailMsgID == m.MsgID && k.GmailThrID == m.ThrID && k.Labels != nil && sameLabels(k.Labels, labels) {
			continue
		}
		metas = append(metas, catalog.GmailMeta{ID: k.ID, MsgID: m.MsgID, ThrID: m.ThrID, Labels: labels})
	}
	if err := b.a.Cat.SetGmail(b.ctx, metas); err != nil {
		return err
	}
	s.labelChanges += len(metas)
	return nil
}

func sameLabels(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// gmailRevive revives, instead of fetching them again, the fresh messages
// whose X-GM-MSGID the folder already holds as expunged (a message that
// went to Trash or Spam and came back).
func (b *backup) gmailRevive(s *folderSync) error {
	var ids []uint64
	for _, m := range s.fresh {
		if m.gm != nil && m.gm.MsgID != 0 {
			ids = append(ids, m.gm.MsgID)
		}
	}
	old := map[uint64]*catalog.Message{}
	for len(ids) > 0 {
		n := min(len(ids), catalog.MaxUIDBatch)
		got, err := b.a.Cat.ByGmailMsgIDs(b.ctx, s.f.ID, ids[:n])
		if err != nil {
			return err
		}
		for k, v := range got {
			old[k] = v
		}
		ids = ids[n:]
	}
	var rv []catalog.Revive
	keep := s.fresh[:0]
	for _, m := range s.fresh {
		if m.gm != nil {
			if o := old[m.gm.MsgID]; o != nil && o.ExpungedRun != 0 && o.Size == m.size {
				rv = append(rv, catalog.Revive{ID: o.ID, UIDValidity: s.sel.UIDValidity, UID: uint32(m.uid), Flags: m.flags, ModSeq: m.modseq, ThrID: m.gm.ThrID, Labels: m.gm.Labels})
				delete(old, m.gm.MsgID)
				continue
			}
		}
		keep = append(keep, m)
	}
	s.fresh = keep
	if err := b.a.Cat.ReviveMessages(b.ctx, b.run, rv); err != nil {
		return err
	}
	if len(rv) > 0 {
		b.log.Info("Gmail: messages back in the folder revived, not fetched again", "account", b.acct, "folder", s.f.Name, "messages", len(rv))
		s.live += len(rv)
		b.mu.Lock()
		b.stats.Rekeyed += len(rv)
		b.mu.Unlock()
	}
	return nil
}

// setGmail gives a message about to be stored its Gmail ids and labels.
func (m *srvMsg) setGmail(in *archive.Incoming) {
	if m.gm == nil {
		return
	}
	in.GmailMsgID, in.GmailThrID, in.Labels = m.gm.MsgID, m.gm.ThrID, m.gm.Labels
	if in.Labels == nil {
		in.Labels = []string{}
	}
}

// examineRaw selects a folder read-only on a raw connection and checks
// that its UIDVALIDITY is the one the folder was listed under.
func examineRaw(raw *imapconn.Raw, name string, uidValidity uint32) error {
	lines, err := raw.Cmd("EXAMINE " + imapconn.Mailbox(name))
	if err != nil {
		return fmt.Errorf("EXAMINE: %w", err)
	}
	for _, l := range lines {
		i := strings.Index(strings.ToUpper(l), "[UIDVALIDITY ")
		if i < 0 {
			continue
		}
		v, _, _ := strings.Cut(l[i+len("[UIDVALIDITY "):], "]")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("EXAMINE: bad UIDVALIDITY %q", v)
		}
		if uint32(n) != uidValidity {
			return fmt.Errorf("EXAMINE: %w (%d, listed under %d)", errValidityMoved, n, uidValidity)
		}
		return nil
	}
	return fmt.Errorf("EXAMINE: server sent no UIDVALIDITY")
}

var errValidityMoved = errors.New("UIDVALIDITY changed during the run; the next run re-keys the folder")

// uidSet writes UIDs as an IMAP set ("4,7,9").
func uidSet(uids []uint32) string {
	var sb strings.Builder
	for i, u := range uids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(u), 10))
	}
	return sb.String()
}
