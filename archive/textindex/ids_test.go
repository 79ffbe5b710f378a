package textindex

import (
	"slices"
	"testing"
)

// TestIDs: each date gets its own second as id when free, else the next
// free id after it; ids handed out are never handed out again, and
// released ones are; only dates that collided are remembered in next.
func TestIDs(t *testing.T) {
	tests := []struct {
		name     string
		taken    []int64 // in the index before
		dates    []int64
		want     []int64
		wantNext int // entries in next afterwards
	}{
		{"distinct dates", nil, []int64{100, 200, 300}, []int64{100, 200, 300}, 0},
		{"same second", nil, []int64{100, 100, 100}, []int64{100, 101, 102}, 1},
		{"run spills into the next second", nil, []int64{100, 100, 101, 101}, []int64{100, 101, 102, 103}, 2},
		{"ids of the index before", []int64{100, 101, 105}, []int64{100, 104, 105, 100}, []int64{102, 104, 106, 103}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ids{taken: map[int64]struct{}{}, next: map[int64]int64{}}
			for _, id := range tt.taken {
				r.taken[id] = struct{}{}
			}
			var got []int64
			for _, d := range tt.dates {
				got = append(got, r.get(d))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
			if len(r.next) != tt.wantNext {
				t.Errorf("next holds %d dates, want %d: %v", len(r.next), tt.wantNext, r.next)
			}
			r.release(got)
			for _, id := range got {
				if r.has(id) {
					t.Errorf("id %d still taken after release", id)
				}
			}
			if id := r.get(tt.dates[0]); id != tt.want[0] {
				t.Errorf("after release, date %d got id %d, want %d", tt.dates[0], id, tt.want[0])
			}
		})
	}
}
