package imapsrc_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// TestPlanInChunks: the plan takes the listed folders a few at a time
// (catalog entries added, empty folders' status recorded, the others
// kept for syncing): every folder is catalogued, backed up and its status
// recorded, a second run does nothing, and a folder deleted on the server is
// marked gone with its mail kept.
func TestPlanInChunks(t *testing.T) {
	defer imapsrc.SetPlanChunk(3)()
	srv := memimap.Start(t, user, pass)
	s := server{name: "memimap", addr: srv.Addr}
	c := imaptest.Dial(t, srv.Addr, user, pass)
	const n = 10 // INBOX besides
	for i := range n {
		name := fmt.Sprintf("F%02d", i)
		if i%3 == 0 {
			imaptest.Append(t, c, name, nil, time.Now(), []byte(fmt.Sprintf("Subject: m%d\r\nMessage-ID: <%d@t>\r\n\r\nbody\r\n", i, i)))
		} else {
			imaptest.Create(t, c, name)
		}
	}
	dir := t.TempDir()
	if st := backup(t, s, dir, archive.MboxZstd); st.Folders != n+1 || st.Fetched != 4 {
		t.Fatalf("first run: %d folders, %d fetched; want %d, 4", st.Folders, st.Fetched, n+1)
	}
	if st := backup(t, s, dir, archive.MboxZstd); st.Folders != n+1 || st.Fetched+st.FlagChanges+st.Expunged != 0 {
		t.Fatalf("second run: %+v, want nothing done", st)
	}
	if err := c.Delete("F03").Wait(); err != nil {
		t.Fatal(err)
	}
	if st := backup(t, s, dir, archive.MboxZstd); st.Folders != n || st.Expunged != 1 {
		t.Fatalf("after a delete: %d folders, %d expunged; want %d, 1", st.Folders, st.Expunged, n)
	}
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fl, err := a.Cat.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(fl) != n+1 {
		t.Fatalf("catalog holds %d folders, want %d", len(fl), n+1)
	}
	for _, f := range fl {
		if gone := f.GoneRun != 0; gone != (f.Name == "F03") {
			t.Errorf("folder %s: gone run %d", f.Name, f.GoneRun)
		}
		if f.UIDValidity == 0 {
			t.Errorf("folder %s: status not recorded", f.Name)
		}
	}
}
