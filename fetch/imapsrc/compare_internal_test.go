package imapsrc

import (
	"fmt"
	"testing"
)

func TestDiffSorted(t *testing.T) {
	for _, tt := range []struct {
		a, b         []uint32
		onlyA, onlyB string
	}{
		{nil, nil, "[]", "[]"},
		{[]uint32{1, 2, 3}, nil, "[1 2 3]", "[]"},
		{nil, []uint32{4}, "[]", "[4]"},
		{[]uint32{5, 1, 3}, []uint32{3, 4, 1}, "[5]", "[4]"},
		{[]uint32{1, 2, 3}, []uint32{1, 2, 3}, "[]", "[]"},
	} {
		a, b := diffSorted(tt.a, tt.b)
		if fmt.Sprint(a) != tt.onlyA || fmt.Sprint(b) != tt.onlyB {
			t.Errorf("diffSorted(%v, %v) = %v, %v; want %s, %s", tt.a, tt.b, a, b, tt.onlyA, tt.onlyB)
		}
	}
}

func TestUIDRanges(t *testing.T) {
	for _, tt := range []struct {
		uids []uint32
		want string
	}{
		{nil, ""},
		{[]uint32{7}, "7"},
		{[]uint32{1, 2, 3, 5, 8, 9}, "1:3,5,8:9"},
	} {
		if got := UIDRanges(tt.uids); got != tt.want {
			t.Errorf("UIDRanges(%v) = %q, want %q", tt.uids, got, tt.want)
		}
	}
}
