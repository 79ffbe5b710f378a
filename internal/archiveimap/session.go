package archiveimap

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// session is one client connection.
type session struct {
	// ctx ends when the connection closes or Serve returns.
	ctx    context.Context
	cancel context.CancelFunc
	s      *Server
	conn   *imapserver.Conn
	sel    *snapshot
	cur    *cursor
	authd  bool
}

var _ imapserver.SessionNamespace = (*session)(nil)

func (ss *session) Close() error {
	ss.cancel()
	ss.cur.close()
	return nil
}

func (ss *session) Login(username, password string) error {
	if !ss.s.checkPassword(password) {
		ss.s.log.Warn("serve: failed login", "user", username, "remote", ss.conn.NetConn().RemoteAddr().String())
		return imapserver.ErrAuthFailed
	}
	ss.authd = true
	return nil
}

func (ss *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: Delim}}}, nil
}

func (ss *session) Select(name string, _ *imap.SelectOptions) (*imap.SelectData, error) {
	ss.sel = nil
	ss.cur.close()
	ss.cur = nil
	mb, err := ss.s.lookup(ss.ctx, name)
	if err != nil {
		return nil, err
	}
	if mb.folder == "" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "not a folder with messages: " + name}
	}
	snap, err := ss.s.load(ss.ctx, mb)
	if err != nil {
		ss.s.log.Error("serve: select", "folder", name, "err", err)
		return nil, err
	}
	ss.sel = snap
	return &imap.SelectData{
		Flags:          snap.flagList(),
		PermanentFlags: []imap.Flag{},
		NumMessages:    uint32(len(snap.msgs)),
		UIDNext:        snap.uidNext,
		UIDValidity:    snap.uidValidity,
	}, nil
}

// flagList is every flag used in the folder, and the system flags.
func (snap *snapshot) flagList() []imap.Flag {
	out := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	have := map[string]bool{}
	for _, f := range out {
		have[strings.ToLower(string(f))] = true
	}
	for _, e := range snap.msgs {
		for _, f := range e.flags {
			if k := strings.ToLower(string(f)); !have[k] {
				have[k] = true
				out = append(out, f)
			}
		}
	}
	return out
}

func (ss *session) Create(string, *imap.CreateOptions) error         { return ErrReadOnly }
func (ss *session) Delete(string) error                              { return ErrReadOnly }
func (ss *session) Rename(string, string, *imap.RenameOptions) error { return ErrReadOnly }
func (ss *session) Subscribe(string) error                           { return nil }
func (ss *session) Unsubscribe(string) error                         { return ErrReadOnly }
func (ss *session) Copy(imap.NumSet, string) (*imap.CopyData, error) { return nil, ErrReadOnly }
func (ss *session) Store(*imapserver.FetchWriter, imap.NumSet, *imap.StoreFlags, *imap.StoreOptions) error {
	return ErrReadOnly
}

func (ss *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, ErrReadOnly
}

// Expunge answers NO to EXPUNGE and UID EXPUNGE. CLOSE calls it too (with
// an ExpungeWriter not tied to the connection, its only mark): CLOSE must
// still close the folder, so it expunges nothing and succeeds.
func (ss *session) Expunge(w *imapserver.ExpungeWriter, _ *imap.UIDSet) error {
	if *w == (imapserver.ExpungeWriter{}) {
		return nil
	}
	return ErrReadOnly
}

func (ss *session) Unselect() error {
	ss.sel = nil
	ss.cur.close()
	ss.cur = nil
	return nil
}

func (ss *session) Poll(*imapserver.UpdateWriter, bool) error { return nil }

func (ss *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	<-stop
	return nil
}

func (ss *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim})
	}
	mbs, err := ss.s.mailboxes(ss.ctx)
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(mb.name, Delim, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		data := &imap.ListData{Mailbox: mb.name, Delim: Delim}
		if mb.folder == "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if mb.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if mb.specialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(mb.specialUse))
		}
		if options != nil && options.ReturnSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := ss.s.lookup(ss.ctx, name)
	if err != nil {
		return nil, err
	}
	if mb.folder == "" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "not a folder with messages: " + name}
	}
	snap, err := ss.s.load(ss.ctx, mb)
	if err != nil {
		return nil, err
	}
	data := &imap.StatusData{Mailbox: mb.name}
	n := uint32(len(snap.msgs))
	if options.NumMessages {
		data.NumMessages = &n
	}
	if options.UIDNext {
		data.UIDNext = snap.uidNext
	}
	if options.UIDValidity {
		data.UIDValidity = snap.uidValidity
	}
	if options.NumUnseen {
		var unseen uint32
		for _, e := range snap.msgs {
			if !hasFlag(e.flags, imap.FlagSeen) {
				unseen++
			}
		}
		data.NumUnseen = &unseen
	}
	if options.NumRecent {
		var zero uint32
		data.NumRecent = &zero
	}
	if options.Size {
		var size int64
		for _, e := range snap.msgs {
			size += e.m.Size
		}
		data.Size = &size
	}
	return data, nil
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

// each calls fn for the messages of numSet, in order.
func (snap *snapshot) each(numSet imap.NumSet, fn func(seq uint32, e *entry) error) error {
	switch set := numSet.(type) {
	case imap.SeqSet:
		max := uint32(len(snap.msgs))
		if max == 0 {
			return nil
		}
		set = staticSeq(set, max)
		for i := range snap.msgs {
			if set.Contains(uint32(i + 1)) {
				if err := fn(uint32(i+1), &snap.msgs[i]); err != nil {
					return err
				}
			}
		}
	case imap.UIDSet:
		max := uint32(snap.uidNext) - 1
		if n := len(snap.msgs); n > 0 {
			max = uint32(snap.msgs[n-1].uid)
		}
		set = staticUID(set, max)
		for i := range snap.msgs {
			if set.Contains(snap.msgs[i].uid) {
				if err := fn(uint32(i+1), &snap.msgs[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func staticSeq(set imap.SeqSet, max uint32) imap.SeqSet {
	out := make(imap.SeqSet, len(set))
	for i, r := range set {
		staticRange(&r.Start, &r.Stop, max)
		out[i] = r
	}
	return out
}

func staticUID(set imap.UIDSet, max uint32) imap.UIDSet {
	out := make(imap.UIDSet, len(set))
	for i, r := range set {
		staticRange((*uint32)(&r.Start), (*uint32)(&r.Stop), max)
		out[i] = r
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

func noSelection() error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "no folder selected"}
}
