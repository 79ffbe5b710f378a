package gmailtest

import (
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// System labels, as X-GM-LABELS spells them (Gmail IMAP extensions:
// "\Inbox", "\Sent", "\Important", "\Starred", "\Draft"). \Spam and
// \Trash are how the double marks a message that is in [Gmail]/Spam or
// [Gmail]/Trash: such a message is in no other folder (Gmail: All Mail
// holds every message except Spam and Trash, imapsync FAQ.Gmail).
const (
	LabelInbox     = `\Inbox`
	LabelSent      = `\Sent`
	LabelDraft     = `\Draft`
	LabelImportant = `\Important`
	LabelStarred   = `\Starred`
	LabelSpam      = `\Spam`
	LabelTrash     = `\Trash`
)

// Folder names of the Gmail system folders (English account).
const (
	Inbox     = "INBOX"
	Root      = "[Gmail]"
	AllMail   = "[Gmail]/All Mail"
	Drafts    = "[Gmail]/Drafts"
	Important = "[Gmail]/Important"
	SentMail  = "[Gmail]/Sent Mail"
	Spam      = "[Gmail]/Spam"
	Starred   = "[Gmail]/Starred"
	Trash     = "[Gmail]/Trash"
)

type folderKind int

const (
	kindLabel    folderKind = iota // messages with label (not in Spam/Trash unless label is \Spam/\Trash)
	kindAll                        // every message not in Spam or Trash
	kindNoSelect                   // [Gmail]
)

type msg struct {
	id, thr uint64
	labels  map[string]bool
	flags   map[imap.Flag]bool
	body    []byte
	date    time.Time
	modseq  uint64
	deleted bool // expunged from Trash or Spam: gone
}

type entry struct {
	uid imap.UID
	m   *msg
}

type folder struct {
	name        string
	kind        folderKind
	label       string
	use         imap.MailboxAttr
	uidValidity uint32
	uidNext     imap.UID
	l           []entry
	tracker     *imapserver.MailboxTracker
	subscribed  bool
	modseq      uint64 // HIGHESTMODSEQ: the last change to a message in it, or to its membership
}

func (f *folder) contains(m *msg) bool {
	if m.deleted {
		return false
	}
	hidden := m.labels[LabelSpam] || m.labels[LabelTrash]
	switch f.kind {
	case kindAll:
		return !hidden
	case kindLabel:
		if f.label == LabelSpam || f.label == LabelTrash {
			return m.labels[f.label]
		}
		return m.labels[f.label] && !hidden
	}
	return false
}

func (f *folder) index(m *msg) int {
	for i, e := range f.l {
		if e.m == m {
			return i
		}
	}
	return -1
}

func (f *folder) uidOf(m *msg) imap.UID {
	if i := f.index(m); i >= 0 {
		return f.l[i].uid
	}
	return 0
}

// systemFolders are the folders every Gmail account has, with their
// SPECIAL-USE attribute (Gmail IMAP extensions, "Special-Use Extension of
// the LIST command": Starred, Important, Sent Items, Drafts, Spam, All
// Mail, Trash).
var systemFolders = []struct {
	name  string
	kind  folderKind
	label string
	use   imap.MailboxAttr
}{
	{Inbox, kindLabel, LabelInbox, ""},
	{Root, kindNoSelect, "", ""},
	{AllMail, kindAll, "", imap.MailboxAttrAll},
	{Drafts, kindLabel, LabelDraft, imap.MailboxAttrDrafts},
	{Important, kindLabel, LabelImportant, imap.MailboxAttrImportant},
	{SentMail, kindLabel, LabelSent, imap.MailboxAttrSent},
	{Spam, kindLabel, LabelSpam, imap.MailboxAttrJunk},
	{Starred, kindLabel, LabelStarred, imap.MailboxAttrFlagged},
	{Trash, kindLabel, LabelTrash, imap.MailboxAttrTrash},
}

// account is the one mailbox a Server holds. Every field is guarded by
// Server.mu.
type account struct {
	msgs     []*msg
	byID     map[uint64]*msg
	folders  map[string]*folder
	nextID   uint64
	modseq   uint64
	validity uint32
}

// firstMsgID is above 2^63, so that a client keeping X-GM-MSGID in an
// int64 fails the tests (Gmail's are unsigned 64-bit numbers).
const firstMsgID = 9300000000000000001

func newAccount() *account {
	a := &account{byID: map[uint64]*msg{}, folders: map[string]*folder{}, nextID: firstMsgID, modseq: 1, validity: 600}
	for _, sf := range systemFolders {
		f := a.newFolder(sf.name, sf.kind, sf.label)
		f.use = sf.use
		f.subscribed = sf.kind != kindNoSelect
	}
	return a
}

func (a *account) newFolder(name string, kind folderKind, label string) *folder {
	a.validity++
	f := &folder{name: name, kind: kind, label: label, uidValidity: a.validity, uidNext: 1, tracker: imapserver.NewMailboxTracker(0), modseq: 1}
	a.folders[name] = f
	return f
}

// labelFolders makes the folder of a user label, and of its parents: a
// nested label "A/B" lives under a label "A", as in Gmail's label list.
func (a *account) labelFolders(label string) {
	for i := 0; i <= len(label); i++ {
		if i == len(label) || label[i] == '/' {
			if name := label[:i]; name != "" && a.folders[name] == nil {
				a.newFolder(name, kindLabel, name).subscribed = true
			}
		}
	}
}

// folder finds a folder by name (INBOX in any case).
func (a *account) folder(name string) *folder {
	if strings.EqualFold(name, Inbox) {
		name = Inbox
	}
	return a.folders[name]
}

func (a *account) sortedFolders() []*folder {
	var out []*folder
	for _, f := range a.folders {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].name == Inbox) != (out[j].name == Inbox) {
			return out[i].name == Inbox
		}
		return out[i].name < out[j].name
	})
	return out
}

// bump gives m a new modification sequence.
func (a *account) bump(m *msg) {
	a.modseq++
	m.modseq = a.modseq
	for _, f := range a.folders {
		if f.index(m) >= 0 {
			f.modseq = a.modseq
		}
	}
}

// setLabel adds or removes a label; a user label without a folder gets
// one (Gmail creates a label that a STORE +X-GM-LABELS names). \Starred
// and the \Flagged flag are one thing ([Gmail]/Starred has SPECIAL-USE
// \Flagged: starring a message flags it).
func (a *account) setLabel(m *msg, label string, on bool) {
	if label == "" || m.labels[label] == on {
		return
	}
	if on {
		m.labels[label] = true
	} else {
		delete(m.labels, label)
	}
	if label == LabelStarred {
		if on {
			m.flags[imap.FlagFlagged] = true
		} else {
			delete(m.flags, imap.FlagFlagged)
		}
	}
	if on && !strings.HasPrefix(label, `\`) {
		a.labelFolders(label)
	}
	a.bump(m)
}

// syncFlagsToLabels keeps \Starred in step with \Flagged after a flag
// change.
func (a *account) syncFlagsToLabels(m *msg) {
	if m.flags[imap.FlagFlagged] {
		m.labels[LabelStarred] = true
	} else {
		delete(m.labels, LabelStarred)
	}
}

// place puts m into every folder that should show it and takes it out of
// every folder that should not, telling the folders' sessions.
func (a *account) place(m *msg) {
	for _, f := range a.sortedFolders() {
		i := f.index(m)
		should := f.contains(m)
		switch {
		case should && i < 0:
			f.modseq = a.modseq
			f.l = append(f.l, entry{uid: f.uidNext, m: m})
			f.uidNext++
			f.tracker.QueueNumMessages(uint32(len(f.l)))
		case !should && i >= 0:
			f.modseq = a.modseq
			f.l = append(f.l[:i], f.l[i+1:]...)
			f.tracker.QueueExpunge(uint32(i) + 1)
		}
	}
}

// flagsChanged tells every folder showing m that its flags changed;
// source is the acting session in its selected folder (it gets its own
// FETCH answer instead).
func (a *account) flagsChanged(m *msg, sel *folder, source *imapserver.SessionTracker) {
	for _, f := range a.folders {
		i := f.index(m)
		if i < 0 {
			continue
		}
		var src *imapserver.SessionTracker
		if f == sel {
			src = source
		}
		f.tracker.QueueMessageFlags(uint32(i)+1, f.l[i].uid, flagList(m), src)
	}
}

func flagList(m *msg) []imap.Flag {
	out := []imap.Flag{}
	for f := range m.flags {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func labelList(m *msg) []string {
	out := []string{}
	for l := range m.labels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// canonicalFlag spells system flags as RFC 3501 does.
func canonicalFlag(f imap.Flag) imap.Flag {
	for _, s := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft} {
		if strings.EqualFold(string(f), string(s)) {
			return s
		}
	}
	return f
}

// canonicalLabel spells system labels as Gmail does; the other labels are
// case-sensitive names.
func canonicalLabel(l string) string {
	for _, s := range []string{LabelInbox, LabelSent, LabelDraft, LabelImportant, LabelStarred, LabelSpam, LabelTrash} {
		if strings.EqualFold(l, s) {
			return s
		}
	}
	if strings.EqualFold(l, "INBOX") {
		return LabelInbox
	}
	return l
}
