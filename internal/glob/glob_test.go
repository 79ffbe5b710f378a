package glob

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		inc, exc []string
		name     string
		want     bool
	}{
		{nil, nil, "anything/at/all", true},
		{[]string{"Work/*"}, nil, "Work/Projects/2026", true},
		{[]string{"Work/*"}, nil, "Work", false},
		{[]string{"Work", "Work/*"}, nil, "Work", true},
		{[]string{"inbox"}, nil, "INBOX", true},
		{[]string{"INBOX/*"}, nil, "Inbox/x", true},
		{nil, []string{"Trash"}, "Trash", false},
		{nil, []string{"Trash"}, "Trash/old", true},
		{[]string{"*"}, []string{"Lists/*"}, "Lists/golang", false},
		{[]string{"Größe?"}, nil, "Größe1", true},
		{[]string{"a.b"}, nil, "aXb", false},
		{[]string{"[x]"}, nil, "[x]", true},
	}
	for _, tt := range tests {
		if got := New(tt.inc, tt.exc).Match(tt.name); got != tt.want {
			t.Errorf("include %q exclude %q, %q: got %v, want %v", tt.inc, tt.exc, tt.name, got, tt.want)
		}
	}
}
