package imapsrc

import (
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/uidpage"
)

// Servers that show a partial view of a large folder. Yahoo shows only
// the newest 10,000 messages of a folder (imap.mail.yahoo.com; 100,000 on
// export.imap.yahoo.com) to SELECT, FETCH 1:* and SEARCH unless the
// client sends ENABLE UIDONLY (RFC 9586), which go-imap beta.8 cannot
// speak; STATUS MESSAGES still counts them all. When a full listing
// returned fewer messages than STATUS counted, the folder is paged through
// by explicit UID ranges (UID FETCH a:b, never "*"): each answer's highest
// UID starts the next range, so a server that answers at most N messages
// a command (RFC 9738's MESSAGELIMIT) costs one command per N messages.
// Paging stops once every counted message was seen, or the range reaches
// UIDNEXT, or a range comes back empty. The messages found are compared
// with the catalog like the listing's, and count as present for the
// expunge step: a message hidden by the view is never marked expunged.
// The paging itself is internal/uidpage's, which restore uses as well.

// pageHidden pages through the UIDs a full listing did not show when
// STATUS (st, read before EXAMINE under the same UIDVALIDITY) counted
// more messages.
func (s *folderSync) pageHidden(st *imap.StatusData, full bool) error {
	if !full || st == nil || st.NumMessages == nil || st.UIDValidity != s.sel.UIDValidity {
		return nil
	}
	want := uint64(*st.NumMessages)
	s.present.normalize()
	listed := s.present.count()
	if listed >= want {
		return nil
	}
	top := uidpage.Top(uint32(s.sel.UIDNext), uint32(st.UIDNext))
	b := s.b
	b.log.Info("the server listed fewer messages than STATUS counts: paging through UID ranges", "account", b.acct, "folder", s.f.Name, "listed", listed, "status", want)
	opt := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, ModSeq: b.condstore}
	found := 0
	pages, err := uidpage.Ranges(top, want, func() uint64 { return listed }, func(r imap.UIDRange) (uidpage.Answer, error) {
		start, top := r.Start, r.Stop
		cmd := s.c.Fetch(imap.UIDSet{r}, opt)
		var batch []srvMsg
		var a uidpage.Answer
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			buf, err := msg.Collect()
			if err != nil {
				abandonOne(s.c, cmd)
				return a, fmt.Errorf("UID FETCH %d:%d metadata: %w", start, top, err)
			}
			if buf.UID == 0 || buf.UID < start || buf.UID > top {
				continue // not asked for: a broken server
			}
			a.N++
			a.High = max(a.High, buf.UID)
			if s.present.has(buf.UID) {
				continue
			}
			batch = append(batch, srvMsg{uid: buf.UID, flags: flagStrings(buf.Flags), date: buf.InternalDate, size: buf.RFC822Size, modseq: buf.ModSeq})
		}
		if err := cmd.Close(); err != nil {
			return a, fmt.Errorf("UID FETCH %d:%d metadata: %w", start, top, err)
		}
		for i := 0; i < len(batch); i += listBatch {
			if err := s.compare(batch[i:min(i+listBatch, len(batch))]); err != nil {
				return a, err
			}
		}
		for _, m := range batch {
			s.present.add(m.uid)
		}
		s.present.normalize()
		listed = s.present.count()
		found += len(batch)
		return a, nil
	})
	if err != nil {
		return err
	}
	b.log.Info("paged through UID ranges", "account", b.acct, "folder", s.f.Name, "commands", pages, "found", found, "seen", listed, "status", want)
	return nil
}

// count is the number of UIDs in the set (after normalize).
func (u *uidRanges) count() uint64 {
	var n uint64
	for _, r := range u.r {
		n += uint64(r.Stop) - uint64(r.Start) + 1
	}
	return n
}
