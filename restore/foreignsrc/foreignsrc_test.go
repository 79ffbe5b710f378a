package foreignsrc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
	"github.com/mailkeep/mailkeep/restore"
	"github.com/mailkeep/mailkeep/restore/foreignsrc"
)

type noProgress struct{}

func (noProgress) IsRestored(context.Context, restore.Destination, string) (bool, error) {
	return false, nil
}
func (noProgress) MarkRestored(context.Context, restore.Destination, string, restore.Restored) error {
	return nil
}

func TestMboxAndMaildir(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "takeout.mbox")
	os.WriteFile(mbox, []byte("From a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <1@x>\nDate: Tue, 2 Jan 2024 03:04:05 +0000\nStatus: RO\nX-Status: A\n\nhello\n>From quoted\n\n"+
		"From c@d Mon Jan  1 00:00:00 2024\nMessage-ID: <2@x>\nDate: Wed, 3 Jan 2024 03:04:05 +0000\n\nsecond\n"), 0o600)
	md := filepath.Join(dir, "md")
	for _, s := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, s), 0o700)
	}
	raw := "Subject: exact\r\n\r\nbyte for byte\r\nno final newline"
	p := filepath.Join(md, "cur", "1.x.host:2,FS")
	os.WriteFile(p, []byte(raw), 0o600)
	mtime := time.Date(2019, 4, 5, 6, 7, 8, 0, time.UTC)
	os.Chtimes(p, mtime, mtime)

	srv := memimap.Start(t, "u", "p")
	dial := func(ctx context.Context) (*imapclient.Client, error) {
		return imapconn.Dial(ctx, imapconn.Config{Addr: srv.Addr, TLS: imapconn.TLSNone, User: "u", Password: "p"})
	}
	dest := restore.Destination{Server: srv.Addr, User: "u"}
	for _, src := range []restore.Source{&foreignsrc.Mbox{Path: mbox, Folder: "Imported"}, &foreignsrc.Maildir{Path: md, Folder: "Old/Mail"}} {
		st, err := restore.Run(context.Background(), dial, dest, src, noProgress{}, restore.Options{})
		if err != nil || len(st.Failures) > 0 {
			t.Fatalf("%T: %v %v", src, err, st.Failures)
		}
		// A rerun finds everything already there (Message-ID, size, date; or SHA-256).
		if st, err := restore.Run(context.Background(), dial, dest, src, noProgress{}, restore.Options{}); err != nil || st.Appended != 0 {
			t.Fatalf("%T rerun appended %d (%v)", src, st.Appended, err)
		}
	}
	snap := imaptest.Snapshot(t, imaptest.Dial(t, srv.Addr, "u", "p"), true)
	imp := snap["Imported"]
	if len(imp) != 2 || !strings.Contains(string(imp[0].Body), "hello\r\nFrom quoted\r\n") || strings.Join(imp[0].Flags, " ") != `\Answered \Seen` ||
		!imp[1].InternalDate.Equal(time.Date(2024, 1, 3, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("from mbox: %+v", imp)
	}
	old := snap["Old/Mail"]
	if len(old) != 1 || string(old[0].Body) != raw || !old[0].InternalDate.Equal(mtime) || strings.Join(old[0].Flags, " ") != `\Flagged \Seen` {
		t.Fatalf("from Maildir: %+v", old)
	}
}

// TestMboxWithoutDateHeader: a message without a Date: header gets the
// date of its "From " line as INTERNALDATE, so a second restore finds it
// already there instead of appending it again.
func TestMboxWithoutDateHeader(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "nodate.mbox")
	long := strings.Repeat("y", 100<<10) // a line longer than any buffer
	os.WriteFile(mbox, []byte("\nFrom a@b Mon Jan  1 10:20:30 2024\nSubject: no date\n\nbody one\n>From the start of a line is quoted\n\n"+
		"From 1634567890123456789@xxx Tue Mar 03 10:00:00 +0100 2020\nSubject: takeout, no date\n\n"+long+"From inside a long line\n\n"+
		"From - Sat Feb  5 06:07:08 2011\nSubject: has a date\nDate: Wed, 3 Jan 2024 03:04:05 +0000\n\nthird\n"), 0o600)
	srv := memimap.Start(t, "u", "p")
	dial := func(ctx context.Context) (*imapclient.Client, error) {
		return imapconn.Dial(ctx, imapconn.Config{Addr: srv.Addr, TLS: imapconn.TLSNone, User: "u", Password: "p"})
	}
	dest := restore.Destination{Server: srv.Addr, User: "u"}
	src := &foreignsrc.Mbox{Path: mbox, Folder: "Imported"}
	for run := 1; run <= 2; run++ {
		st, err := restore.Run(context.Background(), dial, dest, src, noProgress{}, restore.Options{})
		if err != nil || len(st.Failures) > 0 {
			t.Fatalf("run %d: %v %v", run, err, st.Failures)
		}
		if want := []int{0, 3, 0}[run]; st.Appended != want {
			t.Errorf("run %d appended %d, want %d", run, st.Appended, want)
		}
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, srv.Addr, "u", "p"), false)["Imported"]
	want := []time.Time{
		time.Date(2024, 1, 1, 10, 20, 30, 0, time.UTC),
		time.Date(2020, 3, 3, 10, 0, 0, 0, time.FixedZone("", 3600)),
		time.Date(2024, 1, 3, 3, 4, 5, 0, time.UTC), // Date: wins over the From line
	}
	if len(got) != len(want) {
		t.Fatalf("folder holds %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if !m.InternalDate.Equal(want[i]) {
			t.Errorf("message %d: INTERNALDATE %v, want %v", i, m.InternalDate, want[i])
		}
	}
}
