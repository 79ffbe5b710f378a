// Package uidpage pages through a folder by explicit UID ranges, for
// servers that show only part of a large folder. Yahoo shows only the
// newest 10,000 messages of a folder (100,000 on export.imap.yahoo.com)
// to SELECT, FETCH 1:* and SEARCH unless the client sends ENABLE UIDONLY
// (RFC 9586), which go-imap beta.8 cannot speak; STATUS MESSAGES still
// counts them all, and a UID FETCH of an explicit range a:b (never "*")
// reaches any of them, at most N messages a command (RFC 9738's
// MESSAGELIMIT). Both backup (fetch/imapsrc) and restore use it; the
// package holds the pure logic, the callers send the commands.
package uidpage

import (
	"github.com/emersion/go-imap/v2"
)

// Short reports whether a listing that showed listed messages missed some
// of the status messages STATUS counted (the limited view).
func Short(listed, status uint64) bool { return listed < status }

// Top is the highest UID a folder can hold: the first non-zero UIDNEXT
// given, less one (the highest UID when none is known).
func Top(uidNext ...uint32) imap.UID {
	for _, n := range uidNext {
		if n != 0 {
			return imap.UID(n - 1)
		}
	}
	return ^imap.UID(0)
}

// Answer is what one UID FETCH of a page returned: how many messages the
// server answered within the range asked, and the highest of their UIDs.
type Answer struct {
	N    int
	High imap.UID
}

// Ranges pages through 1:top: fetch is called with the range start:top,
// then with the range after the highest UID of its answer, until seen
// (how many distinct messages the caller knows now) reaches want, the
// range passes top, or an answer is empty. It returns the number of
// commands sent.
func Ranges(top imap.UID, want uint64, seen func() uint64, fetch func(imap.UIDRange) (Answer, error)) (int, error) {
	start, pages := imap.UID(1), 0
	for top != 0 && start <= top && seen() < want {
		a, err := fetch(imap.UIDRange{Start: start, Stop: top})
		pages++
		if err != nil {
			return pages, err
		}
		if a.N == 0 || a.High == ^imap.UID(0) || a.High < start {
			break
		}
		start = a.High + 1
	}
	return pages, nil
}

// Sets splits sorted, distinct uids into sets of at most max ranges.
func Sets(uids []imap.UID, max int) []imap.UIDSet {
	var out []imap.UIDSet
	var cur imap.UIDSet
	for _, u := range uids {
		if k := len(cur); k > 0 && cur[k-1].Stop+1 == u {
			cur[k-1].Stop = u
			continue
		}
		if len(cur) == max {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, imap.UIDRange{Start: u, Stop: u})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// List fetches sorted, distinct uids in sets of at most maxRanges ranges
// (Sets). A server that answers at most N messages a command answers a
// set short: then what of the set lies above the highest UID answered is
// asked again, until an answer is empty or holds nothing new. A message
// that no longer exists costs at most one command more, when it is the
// last of a set. It returns the number of commands sent.
func List(uids []imap.UID, maxRanges int, fetch func(imap.UIDSet) (Answer, error)) (int, error) {
	cmds := 0
	for _, set := range Sets(uids, maxRanges) {
		for len(set) > 0 {
			a, err := fetch(set)
			cmds++
			if err != nil {
				return cmds, err
			}
			if a.N == 0 || a.High < set[0].Start {
				break
			}
			set = after(set, a.High)
		}
	}
	return cmds, nil
}

// after is the part of set above uid.
func after(set imap.UIDSet, uid imap.UID) imap.UIDSet {
	var out imap.UIDSet
	for _, r := range set {
		switch {
		case r.Stop <= uid:
		case r.Start > uid:
			out = append(out, r)
		default:
			out = append(out, imap.UIDRange{Start: uid + 1, Stop: r.Stop})
		}
	}
	return out
}
