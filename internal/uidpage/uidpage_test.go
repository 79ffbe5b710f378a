package uidpage

import (
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// server is a folder whose UID FETCH answers at most limit messages a
// command, the lowest UIDs first.
type server struct {
	uids  []imap.UID
	limit int
}

func (s *server) fetch(set imap.UIDSet, got map[imap.UID]int) Answer {
	var a Answer
	for _, u := range s.uids {
		if a.N == s.limit {
			break
		}
		if set.Contains(u) {
			a.N++
			a.High = max(a.High, u)
			got[u]++
		}
	}
	return a
}

func uids(from, to imap.UID, skip ...imap.UID) []imap.UID {
	var out []imap.UID
next:
	for u := from; u <= to; u++ {
		for _, s := range skip {
			if s == u {
				continue next
			}
		}
		out = append(out, u)
	}
	return out
}

func TestRanges(t *testing.T) {
	tests := []struct {
		name  string
		uids  []imap.UID
		limit int
		top   imap.UID
		cmds  int
	}{
		{"one page", uids(1, 40), 50, 40, 1},
		{"three pages", uids(1, 150), 50, 150, 3},
		{"gaps", uids(1, 150, 3, 60, 61, 149), 50, 155, 3},
		{"hidden top expunged", uids(1, 100, 100), 50, 120, 2},
		{"nothing to find", nil, 50, 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{uids: tc.uids, limit: tc.limit}
			got := map[imap.UID]int{}
			cmds, err := Ranges(tc.top, uint64(len(tc.uids)), func() uint64 { return uint64(len(got)) }, func(r imap.UIDRange) (Answer, error) {
				if r.Stop != tc.top || r.Start == 0 {
					t.Errorf("range %v, want n:%d", r, tc.top)
				}
				return s.fetch(imap.UIDSet{r}, got), nil
			})
			if err != nil || cmds != tc.cmds {
				t.Errorf("%d commands, %v; want %d", cmds, err, tc.cmds)
			}
			if len(got) != len(tc.uids) {
				t.Errorf("saw %d of %d", len(got), len(tc.uids))
			}
			for u, n := range got {
				if n != 1 {
					t.Errorf("UID %d answered %d times", u, n)
				}
			}
		})
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		name      string
		have      []imap.UID
		ask       []imap.UID
		limit     int
		maxRanges int
		cmds      int
	}{
		{"all at once", uids(1, 20), uids(1, 20), 100, 10, 1},
		{"short answers", uids(1, 150), uids(1, 150), 50, 10, 3},
		{"scattered, several sets", uids(1, 150), []imap.UID{2, 4, 6, 8, 10, 90, 91, 92, 140}, 3, 2, 5},
		{"last asked gone", uids(1, 20), uids(1, 22), 100, 10, 2},
		{"none there", uids(1, 5), uids(10, 12), 100, 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{uids: tc.have, limit: tc.limit}
			got := map[imap.UID]int{}
			cmds, err := List(tc.ask, tc.maxRanges, func(set imap.UIDSet) (Answer, error) {
				if len(set) > tc.maxRanges {
					t.Errorf("set %v has more than %d ranges", set, tc.maxRanges)
				}
				return s.fetch(set, got), nil
			})
			if err != nil || cmds != tc.cmds {
				t.Errorf("%d commands, %v; want %d", cmds, err, tc.cmds)
			}
			want := 0
			for _, u := range tc.ask {
				if imap.UIDSet(imap.UIDSetNum(tc.have...)).Contains(u) {
					want++
					if got[u] != 1 {
						t.Errorf("UID %d answered %d times", u, got[u])
					}
				}
			}
			if len(got) != want {
				t.Errorf("got %d, want %d: %v", len(got), want, fmt.Sprint(got))
			}
		})
	}
}

func TestSets(t *testing.T) {
	got := Sets([]imap.UID{1, 2, 3, 5, 7, 8, 10}, 2)
	if fmt.Sprint(got) != "[1:3,5 7:8,10]" {
		t.Errorf("Sets = %v", got)
	}
}

func TestTop(t *testing.T) {
	if Top(0, 51) != 50 || Top(101, 51) != 100 || Top() != ^imap.UID(0) {
		t.Errorf("Top: %d %d %d", Top(0, 51), Top(101, 51), Top())
	}
}
