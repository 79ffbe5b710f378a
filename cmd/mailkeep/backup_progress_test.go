package main

import "testing"

type totalsSeen struct {
	n int
	b int64
}

func (s *totalsSeen) SetTotal(n int, b int64) { s.n, s.b = n, b }

// TestPlannedTotalsSum: the accounts of a config run add their planned
// totals on one line; one account without known bytes (IMAP) makes the
// bytes total unknown (0), so the percentage goes by messages.
func TestPlannedTotalsSum(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls [][2]int64
		n     int
		b     int64
	}{
		{"pop3", [][2]int64{{3, 300}}, 3, 300},
		{"two pop3", [][2]int64{{3, 300}, {2, 50}}, 5, 350},
		{"imap", [][2]int64{{4, 0}}, 4, 0},
		{"pop3 and imap", [][2]int64{{3, 300}, {4, 0}, {1, 10}}, 8, 0},
		{"nothing new", [][2]int64{{3, 300}, {0, 0}}, 3, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen totalsSeen
			tot := &plannedTotals{line: &seen}
			for _, c := range tc.calls {
				tot.add(int(c[0]), c[1])
			}
			if seen.n != tc.n || seen.b != tc.b {
				t.Errorf("SetTotal(%d, %d), want (%d, %d)", seen.n, seen.b, tc.n, tc.b)
			}
		})
	}
}
