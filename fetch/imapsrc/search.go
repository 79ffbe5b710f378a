package imapsrc

import "github.com/emersion/go-imap/v2"

// The expunge step after a CHANGEDSINCE listing asks UID SEARCH ALL for
// the folder's UIDs, and marks expunged the catalogued messages it does
// not name. An answer that cannot be the folder's is not used: iCloud
// leaves out the untagged SEARCH of a search without matches (a client
// reads "no message"), and answers searches with UIDs it cannot hold
// (internal/icloudtest cites the reports). The answer must name exactly
// as many UIDs as EXAMINE counted messages, none 0 and none at or above
// UIDNEXT; otherwise nothing is marked expunged this run (a warning says
// so) and the folder's status is not recorded, so that the next run looks
// again. Live mail is never marked expunged on
// the word of a broken SEARCH.
func (s *folderSync) usableSearch(present *uidRanges) bool {
	present.normalize()
	n := present.count()
	why := ""
	switch {
	case n != uint64(s.sel.NumMessages):
		why = "it names a number of UIDs other than the folder's message count"
	case len(present.r) > 0 && present.r[0].Start == 0:
		why = "it names UID 0"
	case len(present.r) > 0 && s.sel.UIDNext != 0 && present.r[len(present.r)-1].Stop >= imap.UID(s.sel.UIDNext):
		why = "it names a UID at or above UIDNEXT"
	default:
		return true
	}
	s.unsure = true
	s.b.log.Warn("the server's UID SEARCH answer is not usable: nothing marked expunged in this folder this run", "account", s.b.acct, "folder", s.f.Name, "why", why, "uids", n, "messages", s.sel.NumMessages, "uidnext", s.sel.UIDNext)
	return false
}
