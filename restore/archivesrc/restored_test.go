package archivesrc

import (
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// TestMessageName: restore names a message by its UID (with its
// UIDVALIDITY when the folder's is another now) or, from a POP3 archive,
// its UIDL; never by its catalog row id.
func TestMessageName(t *testing.T) {
	a, err := archive.Open(t.TempDir(), archive.Options{Format: archive.Maildir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	add := func(folder string, m *catalog.Message) string {
		f, err := a.Cat.EnsureFolder(t.Context(), folder, '/', "", folder)
		if err != nil {
			t.Fatal(err)
		}
		m.InternalDate, m.Size, m.SHA256, m.File = date, 10, "00", folder+"/f"+m.UIDL
		if err := a.Cat.Commit(t.Context(), f.ID, 0, m.UID, run, []*catalog.Message{m}); err != nil {
			t.Fatal(err)
		}
		all, err := a.Cat.All(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		return Key(all[len(all)-1])
	}
	imapKey := add("INBOX", &catalog.Message{UIDValidity: 7, UID: 4711})
	f, _ := a.Cat.Folder(t.Context(), "INBOX")
	if err := a.Cat.SetFolderStatus(t.Context(), f.ID, 7, 4712, 1, 0); err != nil {
		t.Fatal(err)
	}
	oldKey := add("INBOX", &catalog.Message{UIDValidity: 3, UID: 12})
	popKey := add("POP", &catalog.Message{UIDL: "0000abcd"})
	s, err := New(t.Context(), a, run, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ folder, key, want string }{
		{"INBOX", imapKey, "UID 4711"},
		{"INBOX", oldKey, "UID 12 (UIDVALIDITY 3)"},
		{"POP", popKey, "UIDL 0000abcd"},
		{"INBOX", "msg:999999", "(not found in the catalog: "},
		{"INBOX", "mbox:x:1", "(not an archive message key)"},
	} {
		got := s.MessageName(t.Context(), tc.folder, tc.key)
		if got != tc.want && !(strings.HasSuffix(tc.want, ": ") && strings.HasPrefix(got, tc.want)) || strings.Contains(got, "msg:") {
			t.Errorf("MessageName(%q, %q) = %q, want %q", tc.folder, tc.key, got, tc.want)
		}
	}
}
