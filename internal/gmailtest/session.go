package gmailtest

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// session is one connection's IMAP session over the account.
type session struct {
	srv      *Server
	conn     *imapserver.Conn
	tap      *tap
	loggedIn bool
	sel      *folder
	st       *imapserver.SessionTracker
	readOnly bool
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func noSuchFolder(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Unknown Mailbox: " + name + " (Failure)"}
}

func (s *session) Close() error {
	s.unselect()
	if s.loggedIn {
		s.srv.mu.Lock()
		s.srv.conns--
		s.srv.connsChanged()
		s.srv.mu.Unlock()
	}
	return nil
}

// Login checks the password and the cap on simultaneous connections
// (Gmail: 15 per account; the 16th login is answered "NO [ALERT] Too
// many simultaneous connections. (Failure)", as imapsync FAQ.Gmail and
// issue 13 report).
func (s *session) Login(username, password string) error {
	if username != s.srv.user || password != s.srv.pass {
		return errInvalidCredentials
	}
	return s.account()
}

// account counts a logged-in connection against the cap.
func (s *session) account() error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.conns >= s.srv.opt.MaxConns {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: "Too many simultaneous connections. (Failure)"}
	}
	s.srv.conns++
	s.srv.connsChanged()
	s.loggedIn = true
	return nil
}

func (s *session) AppendLimit() uint32 { return s.srv.opt.AppendLimit }

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

func (s *session) unselect() {
	if s.st != nil {
		s.st.Close()
	}
	s.sel, s.st = nil, nil
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	f := s.srv.acct.folder(name)
	if f == nil || f.kind == kindNoSelect {
		return nil, noSuchFolder(name)
	}
	s.sel, s.st, s.readOnly = f, f.tracker.NewSession(), options.ReadOnly
	return &imap.SelectData{
		Flags:          []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagDeleted, imap.FlagSeen, "$NotPhishing", "$Phishing"},
		PermanentFlags: []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagDeleted, imap.FlagSeen, "$NotPhishing", "$Phishing", imap.FlagWildcard},
		NumMessages:    uint32(len(f.l)),
		UIDNext:        f.uidNext,
		UIDValidity:    f.uidValidity,
	}, nil
}

func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = strings.TrimRight(name, "/")
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.acct.folder(name) != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Folder name conflicts with existing folder name. (Failure)"}
	}
	if strings.HasPrefix(name, Root+"/") || name == "" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid folder name (Failure)"}
	}
	s.srv.acct.labelFolders(name)
	return nil
}

// userLabel returns a folder that is a user label, or an error.
func (s *session) userLabel(name string) (*folder, error) {
	f := s.srv.acct.folder(name)
	if f == nil {
		return nil, noSuchFolder(name)
	}
	if strings.HasPrefix(f.label, `\`) || f.kind != kindLabel {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Cannot change system folder (Failure)"}
	}
	return f, nil
}

// Delete removes a user label from every message and drops its folder.
func (s *session) Delete(name string) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	f, err := s.userLabel(name)
	if err != nil {
		return err
	}
	a := s.srv.acct
	for _, m := range a.msgs {
		if m.labels[f.label] {
			a.setLabel(m, f.label, false)
			a.place(m)
		}
	}
	delete(a.folders, f.name)
	return nil
}

// Rename renames a user label on every message; the folder keeps its
// UIDs.
func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	f, err := s.userLabel(oldName)
	if err != nil {
		return err
	}
	a := s.srv.acct
	if a.folder(newName) != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Folder name conflicts with existing folder name. (Failure)"}
	}
	for _, m := range a.msgs {
		if m.labels[f.label] {
			delete(m.labels, f.label)
			m.labels[newName] = true
			a.bump(m)
		}
	}
	delete(a.folders, f.name)
	f.name, f.label = newName, newName
	a.folders[newName] = f
	return nil
}

func (s *session) Subscribe(name string) error   { return s.subscribe(name, true) }
func (s *session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *session) subscribe(name string, on bool) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	f := s.srv.acct.folder(name)
	if f == nil {
		return noSuchFolder(name)
	}
	f.subscribed = on
	return nil
}

// List lists the folders with their SPECIAL-USE attributes on every
// response (Gmail IMAP extensions: "All LIST responses contain these
// Special-Use attributes").
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	s.srv.mu.Lock()
	var out []*imap.ListData
	a := s.srv.acct
	for _, f := range a.sortedFolders() {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(f.name, '/', ref, p) {
				match = true
				break
			}
		}
		if !match || (options.SelectSubscribed && !f.subscribed) || (options.SelectSpecialUse && f.use == "") {
			continue
		}
		d := &imap.ListData{Mailbox: f.name, Delim: '/'}
		children := false
		for n := range a.folders {
			if strings.HasPrefix(n, f.name+"/") {
				children = true
			}
		}
		if children {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if f.kind == kindNoSelect {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		if f.use != "" {
			d.Attrs = append(d.Attrs, f.use)
		}
		if f.subscribed && options.SelectSubscribed {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil && f.kind != kindNoSelect {
			d.Status = status(f, options.ReturnStatus)
		}
		out = append(out, d)
	}
	s.srv.mu.Unlock()
	for _, d := range out {
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func status(f *folder, options *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: f.name}
	if options.NumMessages {
		n := uint32(len(f.l))
		d.NumMessages = &n
	}
	if options.UIDNext {
		d.UIDNext = f.uidNext
	}
	if options.UIDValidity {
		d.UIDValidity = f.uidValidity
	}
	if options.NumUnseen {
		var n uint32
		for _, e := range f.l {
			if !e.m.flags[imap.FlagSeen] {
				n++
			}
		}
		d.NumUnseen = &n
	}
	if options.Size {
		var n int64
		for _, e := range f.l {
			n += int64(len(e.m.body))
		}
		d.Size = &n
	}
	return d
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	f := s.srv.acct.folder(name)
	if f == nil || f.kind == kindNoSelect {
		return nil, noSuchFolder(name)
	}
	return status(f, options), nil
}

// Append stores a new message in All Mail with the label of the folder it
// is appended to (Gmail: a label is a folder; APPEND to "Work" makes a
// message labelled Work, to [Gmail]/All Mail one without labels). A
// message over APPENDLIMIT never gets here: imapserver answers TOOBIG
// and the tap rewrites it as Gmail says it (see Server). Past the daily
// upload quota nothing is stored and the answer is Gmail's.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	body, err := memimap.WholeLiteral(r) // imapserver checked APPENDLIMIT
	if err != nil {
		return nil, err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	a := s.srv.acct
	f := a.folder(mailbox)
	if f == nil || f.kind == kindNoSelect {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "Folder doesn't exist. (Failure)"}
	}
	var labels []string
	if f.kind == kindLabel {
		labels = []string{f.label}
	}
	if !s.srv.spendUpload(s.srv.opt.Now(), int64(len(body))) {
		return nil, errUploadQuota
	}
	date := options.Time
	if date.IsZero() {
		date = s.srv.opt.Now()
	}
	m := s.srv.addLocked(body, labels, options.Flags, date, 0)
	return &imap.AppendData{UIDValidity: f.uidValidity, UID: f.uidOf(m)}, nil
}

func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.st == nil {
		return nil
	}
	return s.st.Poll(w, allowExpunge)
}

func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.st == nil {
		<-stop
		return nil
	}
	return s.st.Idle(w, stop)
}

// hit is one message a command addresses in the selected folder.
type hit struct {
	seq uint32 // as this session numbers it
	uid imap.UID
	m   *msg
}

// hits resolves numSet in the selected folder. The caller holds srv.mu.
func (s *session) hits(numSet imap.NumSet) []hit {
	f := s.sel
	var out []hit
	switch set := numSet.(type) {
	case imap.SeqSet:
		set = staticSeq(set, uint32(len(f.l)))
		for i, e := range f.l {
			seq := s.st.EncodeSeqNum(uint32(i) + 1)
			if seq != 0 && set.Contains(seq) {
				out = append(out, hit{seq, e.uid, e.m})
			}
		}
	case imap.UIDSet:
		set = staticUID(set, f.uidNext-1)
		for i, e := range f.l {
			seq := s.st.EncodeSeqNum(uint32(i) + 1)
			if seq != 0 && set.Contains(e.uid) {
				out = append(out, hit{seq, e.uid, e.m})
			}
		}
	}
	return out
}

func staticSeq(set imap.SeqSet, max uint32) imap.SeqSet {
	out := make(imap.SeqSet, len(set))
	copy(out, set)
	for i := range out {
		staticRange(&out[i].Start, &out[i].Stop, max)
	}
	return out
}

func staticUID(set imap.UIDSet, max imap.UID) imap.UIDSet {
	out := make(imap.UIDSet, len(set))
	copy(out, set)
	for i := range out {
		staticRange((*uint32)(&out[i].Start), (*uint32)(&out[i].Stop), uint32(max))
	}
	return out
}

func staticRange(start, stop *uint32, max uint32) {
	dyn := false
	if *start == 0 {
		*start, dyn = max, true
	}
	if *stop == 0 {
		*stop, dyn = max, true
	}
	if dyn && *start > *stop {
		*start, *stop = *stop, *start
	}
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "EXPUNGE failed: folder is read-only (Failure)"}
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	a, f := s.srv.acct, s.sel
	var gone []*msg
	for _, e := range f.l {
		if e.m.flags[imap.FlagDeleted] && (uids == nil || uids.Contains(e.uid)) {
			gone = append(gone, e.m)
		}
	}
	// Gmail's default IMAP settings (Gmail settings, "Forwarding and
	// POP/IMAP": auto-expunge on; "When a message is marked as deleted and
	// expunged from the last visible IMAP folder: archive"): expunging from
	// a label removes the label; from All Mail it goes to Trash; from Spam
	// or Trash it is gone.
	for _, m := range gone {
		delete(m.flags, imap.FlagDeleted)
		switch {
		case f.kind == kindAll:
			a.setLabel(m, LabelTrash, true)
		case f.label == LabelSpam || f.label == LabelTrash:
			m.deleted = true
			a.bump(m)
		default:
			a.setLabel(m, f.label, false)
		}
		a.place(m)
		a.flagsChanged(m, nil, nil)
	}
	return nil
}

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	all := s.hits(imap.SeqSet{{Start: 1, Stop: 0}})
	for _, h := range all {
		ok, err := s.match(h, criteria)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		n := h.seq
		if kind == imapserver.NumKindUID {
			n = uint32(h.uid)
		}
		seqs.AddNum(h.seq)
		uids.AddNum(h.uid)
		if data.Min == 0 || n < data.Min {
			data.Min = n
		}
		if n > data.Max {
			data.Max = n
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return &data, nil
}

var errSearch = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "gmailtest: SEARCH key not supported by the double"}

func (s *session) match(h hit, c *imap.SearchCriteria) (bool, error) {
	for _, set := range c.SeqNum {
		st := staticSeq(set, uint32(len(s.sel.l)))
		if !st.Contains(h.seq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		st := staticUID(set, s.sel.uidNext-1)
		if !st.Contains(h.uid) {
			return false, nil
		}
	}
	day := func(t time.Time) time.Time { y, m, d := t.Date(); return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	if !c.Since.IsZero() && day(h.m.date).Before(day(c.Since)) {
		return false, nil
	}
	if !c.Before.IsZero() && !day(h.m.date).Before(day(c.Before)) {
		return false, nil
	}
	for _, f := range c.Flag {
		if !h.m.flags[canonicalFlag(f)] {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if h.m.flags[canonicalFlag(f)] {
			return false, nil
		}
	}
	if c.Larger > 0 && int64(len(h.m.body)) <= c.Larger {
		return false, nil
	}
	if c.Smaller > 0 && int64(len(h.m.body)) >= c.Smaller {
		return false, nil
	}
	for _, t := range append(append([]string(nil), c.Body...), c.Text...) {
		if !bytes.Contains(bytes.ToLower(h.m.body), bytes.ToLower([]byte(t))) {
			return false, nil
		}
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() || c.ModSeq != nil {
		return false, errSearch
	}
	for i := range c.Not {
		ok, err := s.match(h, &c.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for _, or := range c.Or {
		a, err := s.match(h, &or[0])
		if err != nil {
			return false, err
		}
		b, err := s.match(h, &or[1])
		if err != nil {
			return false, err
		}
		if !a && !b {
			return false, nil
		}
	}
	return true, nil
}

// fetched is what one FETCH response writes, copied under the lock.
type fetched struct {
	hit
	flags  []imap.Flag
	extra  string
	body   []byte
	date   time.Time
	modseq uint64
}

// Fetch answers FETCH. The Gmail items and MODSEQ (which imapserver does
// not parse) were taken out of the command by the tap and come here as
// the tap's pending request; their values are added to each response
// after its UID by the tap.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	req := s.tap.takeFetch()
	if req == nil {
		req = &fetchReq{}
	}
	s.srv.mu.Lock()
	a := s.srv.acct
	hs := s.hits(numSet)
	if req.store != nil {
		if s.readOnly {
			s.srv.mu.Unlock()
			return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "STORE failed: folder is read-only (Failure)"}
		}
		for _, h := range hs {
			s.storeLabels(h.m, req.store, s.st)
		}
	}
	markSeen := false
	for _, bs := range options.BodySection {
		markSeen = markSeen || !bs.Peek
	}
	var out []fetched
	var quotaErr error
	now := s.srv.opt.Now()
	for _, h := range hs {
		if req.changedSince > 0 && h.m.modseq <= req.changedSince {
			continue
		}
		if len(options.BodySection) > 0 || len(options.BinarySection) > 0 {
			// Gmail's IMAP download limit (support.google.com/a/answer/
			// 1071518, "Gmail bandwidth limits": 2,500 MB a day): once it is
			// spent, FETCH answers NO [OVERQUOTA] (as seen in the wild:
			// "FETCH => [OVERQUOTA] Account exceeded command or bandwidth
			// limits.", ha-email-sensor #16) or the session ends with BYE.
			if !s.srv.spend(now, int64(len(h.m.body))) {
				quotaErr = errOverQuota
				break
			}
			if markSeen && !h.m.flags[imap.FlagSeen] {
				h.m.flags[imap.FlagSeen] = true
				a.bump(h.m)
				a.flagsChanged(h.m, s.sel, s.st)
			}
		}
		out = append(out, fetched{hit: h, flags: flagList(h.m), body: h.m.body, date: h.m.date, modseq: h.m.modseq, extra: req.extra(h.m)})
	}
	s.srv.mu.Unlock()

	if req.store != nil && !req.labels {
		return nil // STORE X-GM-LABELS.SILENT answers nothing
	}
	for _, f := range out {
		if f.extra != "" {
			s.tap.inject(f.uid, f.extra)
		}
		rw := w.CreateMessage(f.seq)
		if options.UID || f.extra != "" {
			rw.WriteUID(f.uid)
		}
		if options.Flags {
			rw.WriteFlags(f.flags)
		}
		if options.InternalDate {
			rw.WriteInternalDate(f.date)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(int64(len(f.body)))
		}
		if options.Envelope || options.BodyStructure != nil {
			if err := writeStructure(rw, f.body, options); err != nil {
				return err
			}
		}
		for _, bs := range options.BodySection {
			b := imapserver.ExtractBodySection(bytes.NewReader(f.body), bs)
			wc := rw.WriteBodySection(bs, int64(len(b)))
			if _, err := wc.Write(b); err != nil {
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
		}
		for _, bs := range options.BinarySection {
			b := imapserver.ExtractBinarySection(bytes.NewReader(f.body), bs)
			wc := rw.WriteBinarySection(bs, int64(len(b)))
			if _, err := wc.Write(b); err != nil {
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if quotaErr != nil && s.srv.opt.ByeOnQuota {
		s.conn.Bye("Session expired, please login again.")
	}
	return quotaErr
}

// errUploadQuota is Gmail's answer to an APPEND past its daily upload
// limit (imapsync FAQ.Gmail, GYB and IMAPClient users report it).
var errUploadQuota = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: "Account exceeded command or bandwidth limits. (Failure)"}

var errOverQuota = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "OVERQUOTA", Text: "Account exceeded command or bandwidth limits. (Failure)"}

func writeStructure(rw *imapserver.FetchResponseWriter, body []byte, options *imap.FetchOptions) error {
	if options.Envelope {
		h, err := headerOf(body)
		if err != nil {
			return err
		}
		rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(body)))
	}
	return nil
}

// storeLabels applies STORE [+-]X-GM-LABELS. The caller holds srv.mu.
func (s *session) storeLabels(m *msg, st *storeReq, source *imapserver.SessionTracker) {
	a := s.srv.acct
	before := fmt.Sprint(flagList(m))
	want := map[string]bool{}
	for _, l := range st.labels {
		want[l] = true
	}
	switch st.op {
	case imap.StoreFlagsAdd:
		for l := range want {
			a.setLabel(m, l, true)
		}
	case imap.StoreFlagsDel:
		for l := range want {
			a.setLabel(m, l, false)
		}
	case imap.StoreFlagsSet:
		for l := range m.labels {
			if !want[l] && l != LabelSpam && l != LabelTrash {
				a.setLabel(m, l, false)
			}
		}
		for l := range want {
			a.setLabel(m, l, true)
		}
	}
	a.place(m)
	if fmt.Sprint(flagList(m)) != before {
		a.flagsChanged(m, s.sel, source)
	}
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if s.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "STORE failed: folder is read-only (Failure)"}
	}
	s.srv.mu.Lock()
	a := s.srv.acct
	hs := s.hits(numSet)
	var out []fetched
	for _, h := range hs {
		before := fmt.Sprint(flagList(h.m))
		switch flags.Op {
		case imap.StoreFlagsSet:
			clear(h.m.flags)
			fallthrough
		case imap.StoreFlagsAdd:
			for _, f := range flags.Flags {
				h.m.flags[canonicalFlag(f)] = true
			}
		case imap.StoreFlagsDel:
			for _, f := range flags.Flags {
				delete(h.m.flags, canonicalFlag(f))
			}
		}
		if fmt.Sprint(flagList(h.m)) != before {
			a.syncFlagsToLabels(h.m)
			a.bump(h.m)
			a.place(h.m) // \Flagged moves it into or out of [Gmail]/Starred
			a.flagsChanged(h.m, s.sel, s.st)
		}
		out = append(out, fetched{hit: h, flags: flagList(h.m)})
	}
	s.srv.mu.Unlock()
	if flags.Silent {
		return nil
	}
	for _, f := range out {
		rw := w.CreateMessage(f.seq)
		rw.WriteUID(f.uid)
		rw.WriteFlags(f.flags)
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Copy adds the destination's label (Gmail: copying to a label folder
// labels the message; copying to All Mail takes it out of Spam/Trash).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.copyLocked(numSet, dest, false)
}

func (s *session) copyLocked(numSet imap.NumSet, dest string, move bool) (*imap.CopyData, error) {
	a := s.srv.acct
	d := a.folder(dest)
	if d == nil || d.kind == kindNoSelect {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "Folder doesn't exist. (Failure)"}
	}
	data := &imap.CopyData{UIDValidity: d.uidValidity}
	for _, h := range s.hits(numSet) {
		if d == s.sel {
			continue
		}
		switch d.kind {
		case kindAll:
			a.setLabel(h.m, LabelSpam, false)
			a.setLabel(h.m, LabelTrash, false)
		case kindLabel:
			if d.label != LabelSpam && d.label != LabelTrash {
				a.setLabel(h.m, LabelSpam, false)
				a.setLabel(h.m, LabelTrash, false)
			}
			a.setLabel(h.m, d.label, true)
		}
		if move && s.sel.kind == kindLabel {
			a.setLabel(h.m, s.sel.label, false)
		}
		a.place(h.m)
		if uid := d.uidOf(h.m); uid != 0 {
			data.SourceUIDs.AddNum(h.uid)
			data.DestUIDs.AddNum(uid)
		}
	}
	return data, nil
}

// Move is COPY plus taking the source folder's label away (Gmail: moving
// from a label to another relabels; moving out of All Mail only adds).
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	s.srv.mu.Lock()
	data, err := s.copyLocked(numSet, dest, true)
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	return w.WriteCopyData(data)
}
