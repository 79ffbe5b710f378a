package catalog

import (
	"testing"
	"time"
)

func TestScaleQueries(t *testing.T) {
	c := open(t)
	run, f := inboxRun(t, c)
	var msgs []*Message
	for uid := uint32(1); uid <= 20; uid++ {
		msgs = append(msgs, msg(7, uid))
	}
	if err := c.Commit(t.Context(), f.ID, 1, 20, run, msgs); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkExpunged(t.Context(), run, []int64{msgs[4].ID, msgs[9].ID}); err != nil { // uids 5, 10
		t.Fatal(err)
	}

	tests := []struct {
		uv    uint32
		live  int
		stale bool
	}{{7, 18, false}, {8, 0, true}}
	for _, tc := range tests {
		st, err := c.SyncState(t.Context(), f.ID, tc.uv)
		if err != nil || st.Live != tc.live || st.Stale != tc.stale {
			t.Errorf("SyncState(%d) = %+v, %v; want live %d stale %v", tc.uv, st, err, tc.live, tc.stale)
		}
	}

	got, err := c.ByUIDs(t.Context(), f.ID, 7, []uint32{1, 5, 21, 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] == nil || got[5] == nil || got[5].ExpungedRun != run || got[20] == nil || got[21] != nil {
		t.Errorf("ByUIDs: %v", got)
	}
	if got, err := c.ByUIDs(t.Context(), f.ID, 8, []uint32{1}); err != nil || len(got) != 0 {
		t.Errorf("ByUIDs under another UIDVALIDITY: %v, %v", got, err)
	}
	if _, err := c.ByUIDs(t.Context(), f.ID, 7, make([]uint32, MaxUIDBatch+1)); err == nil {
		t.Error("ByUIDs took more than MaxUIDBatch UIDs")
	}

	var walked []uint32
	for after := uint32(0); ; {
		page, err := c.LiveUIDs(t.Context(), f.ID, 7, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			walked = append(walked, r.UID)
		}
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].UID
	}
	if len(walked) != 18 || walked[4] != 6 || walked[17] != 20 {
		t.Errorf("LiveUIDs walked %v", walked)
	}
}

func TestEnsureFoldersAndStatuses(t *testing.T) {
	c := open(t)
	old, err := c.EnsureFolder(t.Context(), "Old", '/', "", "mbox/Old.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	in := []NewFolder{
		{Name: "A", Delim: '/', Path: "mbox/A.mbox.zst"},
		{Name: "Old", Delim: '/', Path: "mbox/Old.mbox.zst"},
		{Name: "Sent", Delim: '/', SpecialUse: `\Sent`, Path: "mbox/Sent.mbox.zst"},
		{Name: "Old", Delim: '.', Path: "mbox/Old.mbox.zst"}, // changed delimiter: EnsureFolder's path
	}
	fs, err := c.EnsureFolders(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if f == nil || f.Name != in[i].Name || f.Path != in[i].Path || f.Delim != in[i].Delim || f.SpecialUse != in[i].SpecialUse {
			t.Errorf("folder %d: %+v, want %+v", i, f, in[i])
		}
	}
	if fs[1].ID != old.ID || fs[3].ID != old.ID {
		t.Errorf("a known folder got a new row: %d %d, want %d", fs[1].ID, fs[3].ID, old.ID)
	}
	if err := c.SetFolderStatuses(t.Context(), []FolderStatus{{ID: fs[0].ID, UIDValidity: 3, UIDNext: 1, HighestModSeq: 9}, {ID: fs[2].ID, UIDValidity: 4, UIDNext: 2}}); err != nil {
		t.Fatal(err)
	}
	a, err := c.Folder(t.Context(), "A")
	if err != nil || a.UIDValidity != 3 || a.UIDNext != 1 || a.HighestModSeq != 9 {
		t.Errorf("status of A: %+v, %v", a, err)
	}
	all, _ := c.Folders(t.Context())
	if len(all) != 3 {
		t.Errorf("%d folders, want 3", len(all))
	}
}

// TestEnsureFoldersTaken: a folder whose name or path the catalog holds
// takes EnsureFolder's way inside EnsureFolders (which reads no folder
// list of its own): a reindexed folder's row is renamed to the server's
// name, a gone one comes back, a new one beside them is inserted.
func TestEnsureFoldersTaken(t *testing.T) {
	c := open(t)
	guessed, err := c.EnsureFolder(t.Context(), "guessed", '/', "", "mbox/Real.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.EnsureFolder(t.Context(), "Gone", '/', "", "mbox/Gone.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkFolderGone(t.Context(), gone.ID, run); err != nil {
		t.Fatal(err)
	}
	fs, err := c.EnsureFolders(t.Context(), []NewFolder{
		{Name: "Real", Delim: '/', Path: "mbox/Real.mbox.zst"},
		{Name: "Gone", Delim: '/', Path: "mbox/Gone.mbox.zst"},
		{Name: "New", Delim: '/', Path: "mbox/New.mbox.zst"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fs[0].ID != guessed.ID || fs[0].Name != "Real" {
		t.Errorf("reindexed folder: %+v, want id %d named Real", fs[0], guessed.ID)
	}
	if fs[1].ID != gone.ID || fs[1].GoneRun != 0 {
		t.Errorf("gone folder: %+v, want id %d back", fs[1], gone.ID)
	}
	if fs[2].ID == 0 || fs[2].Name != "New" {
		t.Errorf("new folder: %+v", fs[2])
	}
	all, _ := c.Folders(t.Context())
	if len(all) != 3 {
		t.Errorf("%d folders, want 3", len(all))
	}
}
