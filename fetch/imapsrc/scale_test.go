package imapsrc_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestBatchedSync makes the listing comparison and the expunge walk span
// many batches and pages: flag changes, expunges scattered over the
// folder and new mail are all found, on a server with CONDSTORE
// (CHANGEDSINCE, then UID SEARCH) and one without (full FLAGS sweep).
func TestBatchedSync(t *testing.T) {
	defer imapsrc.SetBatches(4, 3)()
	for _, s := range servers(t) {
		for _, format := range []archive.Format{archive.MboxZstd, archive.Maildir} {
			t.Run(s.name+"/"+string(format), func(t *testing.T) {
				c := imaptest.Dial(t, s.addr, user, pass)
				folder := fmt.Sprintf("Batch%d", len(format))
				for i := range 30 {
					imaptest.Append(t, c, folder, nil, time.Now().Add(-time.Duration(i)*time.Hour), []byte(fmt.Sprintf("Subject: m%d\r\nMessage-ID: <%d.%s@t>\r\n\r\nbody %d\r\n", i, i, folder, i)))
				}
				dir := t.TempDir()
				if st := backup(t, s, dir, format); st.Fetched < 30 {
					t.Fatalf("fetched %d, want at least 30", st.Fetched)
				}
				if _, err := c.Select(folder, nil).Wait(); err != nil {
					t.Fatal(err)
				}
				store(t, c, imap.UIDSetNum(1, 9, 10, 11, 29), imap.StoreFlagsAdd, `\Flagged`)
				store(t, c, imap.UIDSetNum(2, 7, 8, 20, 30), imap.StoreFlagsAdd, `\Deleted`)
				if err := c.Expunge().Close(); err != nil {
					t.Fatal(err)
				}
				if err := c.Unselect().Wait(); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					imaptest.Append(t, c, folder, []string{`\Seen`}, time.Now(), []byte(fmt.Sprintf("Subject: new%d\r\n\r\nnew\r\n", i)))
				}
				st := backup(t, s, dir, format)
				if st.Fetched != 3 || st.FlagChanges != 5 || st.Expunged != 5 {
					t.Errorf("fetched %d flag changes %d expunged %d, want 3 5 5", st.Fetched, st.FlagChanges, st.Expunged)
				}
				compare(t, s, c, dir)
				if st := backup(t, s, dir, format); st.Fetched+st.FlagChanges+st.Expunged != 0 {
					t.Errorf("third run did work: %+v", st)
				}
			})
		}
	}
}

// TestEmptyFolderNoFile: an empty folder costs a catalog row, not a file;
// its file appears with its first message.
func TestEmptyFolderNoFile(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			c := imaptest.Dial(t, s.addr, user, pass)
			if err := c.Create("Vacant", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: x\r\n\r\nx\r\n"))
			dir := t.TempDir()
			backup(t, s, dir, archive.MboxZstd)
			a, err := archive.Open(dir, archive.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			f, err := a.Cat.Folder(t.Context(), "Vacant")
			a.Close()
			if err != nil {
				t.Fatalf("the empty folder is not catalogued: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, f.Path)); !os.IsNotExist(err) {
				t.Errorf("empty folder has a file %s: %v", f.Path, err)
			}
			if st := backup(t, s, dir, archive.MboxZstd); st.Fetched+st.FlagChanges+st.Expunged != 0 {
				t.Errorf("no-op run did work: %+v", st)
			}
			imaptest.Append(t, c, "Vacant", nil, time.Now(), []byte("Subject: first\r\n\r\nfirst\r\n"))
			if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 1 {
				t.Errorf("fetched %d, want 1", st.Fetched)
			}
			if _, err := os.Lstat(filepath.Join(dir, f.Path)); err != nil {
				t.Errorf("folder file after the first message: %v", err)
			}
			compare(t, s, c, dir)
		})
	}
}
