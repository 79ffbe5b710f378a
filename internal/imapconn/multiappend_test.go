package imapconn

import (
	"slices"
	"testing"
)

func TestAppendUIDs(t *testing.T) {
	for _, tc := range []struct {
		text     string
		max      int
		validity uint32
		uids     []uint32
		ok       bool
	}{
		{"[APPENDUID 38505 3955] APPEND completed", 10, 38505, []uint32{3955}, true},
		{"[APPENDUID 38505 3955:3957,3960] done", 10, 38505, []uint32{3955, 3956, 3957, 3960}, true},
		{"[appenduid 7 5:3] done", 10, 7, []uint32{5, 4, 3}, true},
		{"[APPENDUID 1 1:1000]", 1000, 1, nil, true}, // checked by length below
		{"[APPENDUID 1 1:1001]", 1000, 0, nil, false},
		{"[APPENDUID 1 1:4294967295]", 1000, 0, nil, false},
		{"[APPENDUID 1 1,2,3]", 2, 0, nil, false},
		{"[APPENDUID 0 1]", 10, 0, nil, false},
		{"[APPENDUID 1 0]", 10, 0, nil, false},
		{"[APPENDUID 1 1:*]", 10, 0, nil, false},
		{"[APPENDUID 1 x]", 10, 0, nil, false},
		{"[APPENDUID 1]", 10, 0, nil, false},
		{"[APPENDUID 1 2", 10, 0, nil, false},
		{"[UIDNEXT 5] ok", 10, 0, nil, false},
		{"APPEND completed", 10, 0, nil, false},
		{"", 10, 0, nil, false},
	} {
		v, uids, ok := AppendUIDs(tc.text, tc.max)
		if ok != tc.ok || v != tc.validity {
			t.Errorf("%q: %d %v %v; want %d %v", tc.text, v, uids, ok, tc.validity, tc.ok)
			continue
		}
		if tc.uids == nil && ok {
			if len(uids) != tc.max || uids[0] != 1 || uids[tc.max-1] != uint32(tc.max) {
				t.Errorf("%q: %d UIDs", tc.text, len(uids))
			}
			continue
		}
		if !slices.Equal(uids, tc.uids) {
			t.Errorf("%q: %v; want %v", tc.text, uids, tc.uids)
		}
	}
}

func FuzzAppendUIDs(f *testing.F) {
	for _, s := range []string{"[APPENDUID 38505 3955:3957,3960] ok", "[APPENDUID 1 5:3]", "[APPENDUID 1 1:4294967295]", "[APPENDUID 4294967295 4294967295:1]"} {
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max > 100_000 {
			max = 100_000
		}
		v, uids, ok := AppendUIDs(s, max)
		if !ok {
			return
		}
		if v == 0 || len(uids) > max || len(uids) == 0 {
			t.Fatalf("%q max %d: validity %d, %d UIDs", s, max, v, len(uids))
		}
		for _, u := range uids {
			if u == 0 {
				t.Fatalf("%q: UID 0", s)
			}
		}
	})
}
