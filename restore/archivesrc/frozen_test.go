package archivesrc

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/restore"
)

// TestFrozenSource: a frozen folder is not listed; its message with a
// twin in All Mail is not read again, the other is read through All Mail
// with the folder's label, its own bytes, and is named in its own folder.
func TestFrozenSource(t *testing.T) {
	a, err := archive.Open(t.TempDir(), archive.Options{Format: archive.MboxZstd})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	run, _ := a.Cat.BeginRun(ctx, "backup", "imaps://u@imap.gmail.com", time.Now())
	add := func(name, su string, bodies ...string) *catalog.Folder {
		f, err := a.Folder(ctx, name, '/', su)
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(ctx, f, run)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range bodies {
			if _, err := w.Add(&archive.Incoming{UIDValidity: 5, UID: uint32(i + 1), InternalDate: time.Unix(1_400_000_000, 0)}, strings.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	all := add("[Gmail]/All Mail", `\All`, "Subject: A\r\n\r\na\r\n")
	add("Work", "", "Subject: A\r\n\r\na\r\n", "Subject: C\r\n\r\nc\r\n")
	if _, err := a.Cat.EnsureViews(ctx, all.ID, []catalog.View{{Name: "Work", Delim: '/', Label: "Work"}}); err != nil {
		t.Fatal(err)
	}
	a.Cat.EndRun(ctx, catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	s, err := New(ctx, a, run, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fl {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"[Gmail]/All Mail"}) {
		t.Errorf("folders %q", names)
	}
	var got []string
	err = s.Messages(ctx, fl[0], func(m restore.Message) error {
		r, err := m.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		got = append(got, strings.Fields(string(b))[1]+" "+strings.Join(m.Labels, ",")+" "+s.MessageName(ctx, fl[0].Name, m.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A  UID 1 (UIDVALIDITY 5)", `C Work UID 2 (UIDVALIDITY 5) in "[before Gmail mode]/Work"`} // no folder status set
	if !slices.Equal(got, want) {
		t.Errorf("messages:\n got %q\nwant %q", got, want)
	}
}
