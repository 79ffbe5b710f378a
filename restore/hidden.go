package restore

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/uidpage"
)

// A destination that shows only part of a large folder. Yahoo shows only
// the newest 10,000 messages of a folder to SELECT, FETCH 1:* and SEARCH
// unless the client sends ENABLE UIDONLY (RFC 9586), which go-imap beta.8
// cannot speak; STATUS MESSAGES counts them all, and a UID FETCH of an
// explicit range reaches any of them, at most so many a command (RFC
// 9738's MESSAGELIMIT). A restore's view of the destination must be
// complete, or a rerun appends the hidden messages again: so each
// destination folder is asked STATUS (MESSAGES UIDNEXT UIDVALIDITY) right
// before its SELECT, and where the folder shows fewer messages than
// STATUS counts,
//
//   - the index of what the folder holds (the already-present rule) pages
//     through explicit UID ranges after its UID FETCH 1:*, until every
//     counted message was seen (internal/uidpage, as backup does);
//   - recorded UIDs that the UID SEARCH of checkRecorded did not find are
//     looked for by UID FETCH of those UIDs;
//
// and every UID FETCH of a list of UIDs (the check of stored flags,
// --verify) asks again for what lies above the highest UID of a short
// answer. A STATUS that fails is not fatal: the folder is then taken as
// shown.

// destStatus is what STATUS said of the destination folder before its
// SELECT.
type destStatus struct {
	ok          bool
	messages    uint32
	uidNext     uint32
	uidValidity uint32
}

// statusBeforeSelect asks STATUS of dst; a failure leaves it unknown.
func (fr *folderRun) statusBeforeSelect() {
	fr.status = destStatus{}
	data, err := fr.cn.c.Status(fr.dst, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
	if err != nil || data.NumMessages == nil {
		fr.r.log.Debug("STATUS of the destination folder failed: its listing is taken as complete", "folder", fr.dst, "err", err)
		return
	}
	fr.status = destStatus{ok: true, messages: *data.NumMessages, uidNext: uint32(data.UIDNext), uidValidity: data.UIDValidity}
}

// hiding reports whether the selected folder, showing shown messages,
// hides some that STATUS counted.
func (fr *folderRun) hiding(shown uint64) bool {
	st := fr.status
	return st.ok && st.uidValidity == fr.uidValidity && uidpage.Short(shown, uint64(st.messages))
}

// top is the highest UID the selected folder can hold.
func (fr *folderRun) top() imap.UID {
	return uidpage.Top(max(fr.selUIDNext, fr.status.uidNext))
}

// fetchList UID FETCHes uids (sorted, distinct) with opt (UID set),
// asking again for the rest of a short answer, and calls fn with each
// message answered among them.
func (fr *folderRun) fetchList(uids []imap.UID, opt *imap.FetchOptions, fn func(*imapclient.FetchMessageBuffer)) error {
	return fr.streamList(uids, opt, func(msg *imapclient.FetchMessageData, in func(imap.UID) bool) imap.UID {
		m, err := msg.Collect()
		if err != nil || !in(m.UID) {
			return 0
		}
		fn(m)
		return m.UID
	})
}

// streamList is fetchList for a caller that reads each message's items
// itself: fn returns the message's UID, or 0 for a message not taken (in
// tells whether a UID was asked for by this command).
func (fr *folderRun) streamList(uids []imap.UID, opt *imap.FetchOptions, fn func(msg *imapclient.FetchMessageData, in func(imap.UID) bool) imap.UID) error {
	_, err := uidpage.List(uids, maxSearchRanges, func(set imap.UIDSet) (uidpage.Answer, error) {
		return fr.fetchSet(set, opt, fn)
	})
	return err
}

// fetchSet sends one UID FETCH of set and calls fn with each message
// answered.
func (fr *folderRun) fetchSet(set imap.UIDSet, opt *imap.FetchOptions, fn func(msg *imapclient.FetchMessageData, in func(imap.UID) bool) imap.UID) (uidpage.Answer, error) {
	var a uidpage.Answer
	in := func(u imap.UID) bool { return u != 0 && set.Contains(u) }
	cmd := fr.cn.c.Fetch(set, opt)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		if u := fn(msg, in); in(u) {
			a.N++
			a.High = max(a.High, u)
		}
	}
	return a, cmd.Close()
}
