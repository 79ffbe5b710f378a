package imapsrc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/icloudtest"
)

func icloudAppend(t *testing.T, c *imapclient.Client, folder string, i int) {
	t.Helper()
	b := []byte(fmt.Sprintf("From: a@example.com\r\nMessage-ID: <ic%d@icloud.example>\r\nSubject: %d\r\n\r\nhello %d\r\n", i, i, i))
	cmd := c.Append(folder, int64(len(b)), nil)
	cmd.Write(b)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestICloudQuirks: a backup against the iCloud double. Its capability
// list starts with XAPPLEPUSHSERVICE and advertises a QRESYNC that answers
// a bogus VANISHED: mailkeep never enables or asks QRESYNC, and backs up
// all. Its UID SEARCH answers are invalid ("* SEARCH 0 4294967295") or
// left out: the expunge step then marks nothing (a warning says why), and
// never marks live mail expunged; once the server answers properly the
// message really deleted is marked.
func TestICloudQuirks(t *testing.T) {
	s := icloudtest.Start(t)
	s.Dovecot.AddUser(t, user, pass)
	c, err := imapclient.DialInsecure(s.Dovecot.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Notes", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		icloudAppend(t, c, "INBOX", i)
	}
	for i := 6; i < 9; i++ {
		icloudAppend(t, c, "Notes", i)
	}
	dir := t.TempDir()
	st, logs := msBackup(t, dir, s.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Fetched != 9 {
		t.Fatalf("first run: fetched %d, failures %v\n%s", st.Fetched, st.Failures, logs)
	}

	// UID 2 of INBOX deleted on the server, one message added.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	icloudAppend(t, c, "INBOX", 10)

	for _, mode := range []icloudtest.SearchMode{icloudtest.SearchInvalid, icloudtest.SearchOmitted} {
		before := s.Searches()
		s.SetSearch(mode)
		st, logs = msBackup(t, dir, s.Addr, imapsrc.Options{Connections: 2})
		if len(st.Failures) > 0 || st.Expunged != 0 {
			t.Fatalf("search mode %d: expunged %d, failures %v; want nothing marked\n%s", mode, st.Expunged, st.Failures, logs)
		}
		if s.Searches() == before {
			t.Fatalf("search mode %d: no UID SEARCH answered: the test proves nothing\n%s\n%+v", mode, logs, st)
		}
		if !strings.Contains(logs, "UID SEARCH answer is not usable") {
			t.Errorf("search mode %d: no warning\n%s", mode, logs)
		}
	}
	s.SetSearch(icloudtest.SearchOK)
	st, logs = msBackup(t, dir, s.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Expunged != 1 {
		t.Fatalf("answering properly: expunged %d (want 1), failures %v\n%s", st.Expunged, st.Failures, logs)
	}
	if s.QResyncUsed() {
		t.Error("mailkeep enabled or asked QRESYNC")
	}
}
