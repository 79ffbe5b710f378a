package archive

import (
	"testing"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// TestInferNamespace: archives from before the namespace was recorded.
func TestInferNamespace(t *testing.T) {
	for _, tc := range []struct {
		names  []string
		delim  rune
		prefix string
	}{
		{[]string{"INBOX", "INBOX.Sent", "INBOX.Work.Projects"}, '.', "INBOX."},
		{[]string{"INBOX", "inbox.Sent"}, '.', "INBOX."},
		{[]string{"INBOX", "Sent", "INBOX/Child"}, '/', ""},
		{[]string{"INBOX"}, '/', ""},
		{[]string{"INBOX", "INBOXES"}, '/', ""},
		{[]string{"INBOX", "INBOX/Child"}, '/', "INBOX/"},
	} {
		var fl []*catalog.Folder
		for _, n := range tc.names {
			fl = append(fl, &catalog.Folder{Name: n, Delim: tc.delim})
		}
		p, _, err := inferNamespace(fl)
		if err != nil || p != tc.prefix {
			t.Errorf("inferNamespace(%v) = %q, %v; want %q", tc.names, p, err, tc.prefix)
		}
	}
}
