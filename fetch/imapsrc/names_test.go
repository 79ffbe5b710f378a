package imapsrc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/hostile"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// TestUnusableFolderNames: a LIST with one folder name holding a NUL and
// one in invalid modified UTF-7 (go-imap drops the connection on either)
// fails those two folders, named as the server sent them, and backs up
// the others; check reports the same.
func TestUnusableFolderNames(t *testing.T) {
	mem := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, mem.Addr, user, pass)
	for _, f := range []string{"Good", "BadNul", "BadUtf7"} {
		imaptest.Create(t, c, f)
		imaptest.Append(t, c, f, nil, time.Now(), []byte("Subject: in "+f+"\r\n\r\nx\r\n"))
	}
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: inbox\r\n\r\nx\r\n"))
	p := hostile.Start(t, mem.Addr, hostile.BadNames)
	acct := imapconn.Config{Addr: p.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 5 * time.Second}

	a, run := openRun(t, t.TempDir(), archive.Options{Format: archive.MboxZstd})
	defer a.Close()
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: acct, Connections: 2})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if st.Fetched != 2 || st.Folders != 2 {
		t.Errorf("fetched %d messages in %d folders, want 2 in 2", st.Fetched, st.Folders)
	}
	named := map[string]bool{}
	for _, f := range st.Failures {
		var me *archive.MessageError
		if !errors.As(f, &me) || !errors.Is(f, imapconn.ErrBadMailboxName) {
			t.Errorf("failure %v: not a folder failure for an unusable name", f)
			continue
		}
		named[me.Folder] = true
	}
	if !named[`"Bad\x00Nul"`] || !named[`"Bad&Jjo"`] || len(named) != 2 {
		t.Errorf("failures name %v", named)
	}

	chk, err := imapsrc.Check(context.Background(), a.Cat, imapsrc.Options{Account: acct})
	if !errors.Is(err, imapconn.ErrBadMailboxName) || len(chk.Folders) != 2 {
		t.Errorf("check: %d folders, %v", len(chk.Folders), err)
	}
}
