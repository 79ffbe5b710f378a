package archive

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// TestSelectorFrozen: Frozen leaves out a frozen folder's messages with a
// live twin in All Mail (an expunged one does not count, even with
// IncludeExpunged) or Trash, reads the others once with every frozen label, and gives up (nil)
// without All Mail.
func TestSelectorFrozen(t *testing.T) {
	a, err := Open(t.TempDir(), Options{Format: MboxZstd})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	run, err := a.Cat.BeginRun(ctx, "backup", "imaps://u@imap.gmail.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := func(s string) string { return "Subject: " + s + "\r\n\r\n" + s + "\r\n" }
	ids := map[string]int64{}
	add := func(folder, su string, msgs ...string) *catalog.Folder {
		t.Helper()
		f, err := a.Folder(ctx, folder, '/', su)
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(ctx, f, run)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range msgs {
			m, err := w.Add(&Incoming{UIDValidity: 7, UID: uint32(i + 1), InternalDate: time.Unix(1_400_000_000, 0)}, strings.NewReader(body(s)))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if folder == "[Gmail]/All Mail" {
				ids[s] = m.ID
			}
		}
		return f
	}
	all := add("[Gmail]/All Mail", `\All`, "A", "B")
	add("[Gmail]/Trash", `\Trash`, "T")
	add("Work", "", "A", "B", "C", "T")
	add("INBOX", "", "C", "D")
	if err := a.Cat.MarkExpunged(ctx, run, []int64{ids["B"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cat.EnsureViews(ctx, all.ID, []catalog.View{{Name: "Work", Delim: '/', Label: "Work"}, {Name: "INBOX", Delim: '/', Label: `\Inbox`}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Cat.EndRun(ctx, catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sel  Selection
		want string
	}{
		{Selection{}, `[before Gmail mode]/INBOX: C ["Work" "\\Inbox"], D ["\\Inbox"]; [before Gmail mode]/Work: B ["Work"]`},
		{Selection{IncludeExpunged: true}, `[before Gmail mode]/INBOX: C ["Work" "\\Inbox"], D ["\\Inbox"]; [before Gmail mode]/Work: B ["Work"]`},
		{Selection{AsOf: time.Now().Add(time.Hour)}, `[before Gmail mode]/INBOX: C ["Work" "\\Inbox"], D ["\\Inbox"]; [before Gmail mode]/Work: B ["Work"]`},
	} {
		s, err := a.Selector(ctx, tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := s.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fz, err := s.Frozen(ctx, fl)
		if err != nil || fz == nil || fz.Into.ID != all.ID {
			t.Fatalf("%+v: %+v %v", tc.sel, fz, err)
		}
		var parts []string
		for _, p := range fz.Parts {
			var ms []string
			for _, m := range p.Msgs {
				labels := slices.Clone(m.Labels)
				slices.Sort(labels)
				ms = append(ms, fmt.Sprintf("%s %q", m.Subject, labels))
			}
			parts = append(parts, p.Folder.Name+": "+strings.Join(ms, ", "))
		}
		if got := strings.Join(parts, "; "); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.sel, got, tc.want)
		}
		if !fz.IsFrozenOut(fz.Parts[0].Folder) || fz.IsFrozenOut(all) {
			t.Errorf("IsFrozenOut")
		}
		// Without All Mail among the folders, frozen folders are ordinary.
		var noAll []*catalog.Folder
		for _, f := range fl {
			if f.ID != all.ID {
				noAll = append(noAll, f)
			}
		}
		if fz, err := s.Frozen(ctx, noAll); err != nil || fz != nil {
			t.Errorf("without All Mail: %+v %v", fz, err)
		}
	}
}
