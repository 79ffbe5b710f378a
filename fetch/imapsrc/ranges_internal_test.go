package imapsrc

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestUIDRangeSet(t *testing.T) {
	tests := []struct {
		name   string
		add    []imap.UID
		ranges int
		in     []imap.UID
		out    []imap.UID
	}{
		{"empty", nil, 0, nil, []imap.UID{1, 5}},
		{"contiguous", []imap.UID{1, 2, 3, 4}, 1, []imap.UID{1, 4}, []imap.UID{5, 6}},
		{"gaps", []imap.UID{1, 2, 5, 6, 9}, 3, []imap.UID{1, 2, 5, 6, 9}, []imap.UID{3, 4, 7, 8, 10}},
		{"out of order and repeated", []imap.UID{9, 1, 2, 2, 3, 8}, 2, []imap.UID{1, 2, 3, 8, 9}, []imap.UID{4, 7, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u uidRanges
			for _, x := range tc.add {
				u.add(x)
			}
			u.normalize()
			if len(u.r) != tc.ranges {
				t.Errorf("%d ranges %v, want %d", len(u.r), u.r, tc.ranges)
			}
			for _, x := range tc.in {
				if !u.has(x) {
					t.Errorf("has(%d) = false", x)
				}
			}
			for _, x := range tc.out {
				if u.has(x) {
					t.Errorf("has(%d) = true", x)
				}
			}
		})
	}
}
