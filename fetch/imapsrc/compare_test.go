package imapsrc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// TestCompare changes an account after a backup in every way Compare
// tells apart, and checks that it reports each and changes nothing.
func TestCompare(t *testing.T) {
	mem := memimap.Start(t, user, pass)
	s := server{name: "memimap", addr: mem.Addr, delim: '/'}
	c := imaptest.Dial(t, s.addr, user, pass)
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 3; i++ {
		imaptest.Append(t, c, "INBOX", nil, date, []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)))
		imaptest.Append(t, c, "Keep", nil, date, []byte(fmt.Sprintf("Subject: k%d\r\n\r\nx\r\n", i)))
	}
	imaptest.Append(t, c, "Dropped", nil, date, []byte("Subject: d\r\n\r\nx\r\n"))
	dir := t.TempDir()
	backup(t, s, dir, archive.MboxZstd)

	// After the backup: INBOX loses uid 2 and gains uid 4; Dropped is
	// deleted, Fresh created; Keep's catalog claims another UIDVALIDITY.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	imaptest.Append(t, c, "INBOX", nil, date, []byte("Subject: new\r\n\r\nx\r\n"))
	if err := c.Delete("Dropped").Wait(); err != nil {
		t.Fatal(err)
	}
	imaptest.Append(t, c, "Fresh", nil, date, []byte("Subject: f\r\n\r\nx\r\n"))
	a, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := a.Cat.Folder(t.Context(), "Keep")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Cat.SetFolderStatus(t.Context(), keep.ID, keep.UIDValidity+1, keep.UIDNext, keep.Messages, 0); err != nil {
		t.Fatal(err)
	}
	a.Close()
	before := imaptest.Snapshot(t, c, false)

	ro, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	diffs, err := imapsrc.Compare(context.Background(), ro.Cat, imapsrc.Options{Account: account(s)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range diffs {
		got[d.Folder] = fmt.Sprintf("server=%v archive=%v validity=%v new=%v gone=%v differs=%v err=%v",
			d.OnServer, d.InArchive, d.ServerValidity == d.ArchiveValidity, d.New, d.Gone, d.Differs(), d.Err)
	}
	want := map[string]string{
		"INBOX":   "server=true archive=true validity=true new=[4] gone=[2] differs=true err=<nil>",
		"Keep":    "server=true archive=true validity=false new=[] gone=[] differs=true err=<nil>",
		"Dropped": "server=false archive=true validity=false new=[] gone=[1] differs=true err=<nil>",
		"Fresh":   "server=true archive=false validity=false new=[1] gone=[] differs=true err=<nil>",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("folders %v", got)
	}
	if after := imaptest.Snapshot(t, c, false); imaptest.Diff(before, after, nil) != "" {
		t.Errorf("Compare changed the server:\n%s", imaptest.Diff(before, after, nil))
	}

	// The selection applies to both sides.
	diffs, err = imapsrc.Compare(context.Background(), ro.Cat, imapsrc.Options{Account: account(s), Exclude: []string{"Fresh", "Dropped", "Keep"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range diffs {
		names = append(names, d.Folder)
	}
	if !slices.Equal(names, []string{"INBOX"}) {
		t.Errorf("with --exclude: %v", names)
	}
}
