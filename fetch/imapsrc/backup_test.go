package imapsrc_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// server is one IMAP server the tests run against.
type server struct {
	name      string
	addr      string
	delim     rune
	condstore bool
	dv        *dovecottest.Server // nil for memimap
}

const user, pass = "alice", "secret"

// servers starts a Dovecot and an in-process go-imap server.
func servers(t *testing.T) []server {
	t.Helper()
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	mem := memimap.Start(t, user, pass)
	return []server{
		{name: "dovecot", addr: dv.IMAPAddr, delim: '/', condstore: true, dv: dv},
		{name: "memimap", addr: mem.Addr, delim: '/', condstore: false},
	}
}

func account(s server) imapconn.Config {
	return imapconn.Config{Addr: s.addr, TLS: imapconn.TLSNone, User: user, Password: pass}
}

// openRun opens the archive in dir and begins a backup run in it; the
// caller closes the archive.
func openRun(t *testing.T, dir string, opt archive.Options) (*archive.Archive, int64) {
	t.Helper()
	a, err := archive.Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	return a, run
}

// backup runs one backup into dir and returns its stats.
func backup(t *testing.T, s server, dir string, format archive.Format) imapsrc.Stats {
	t.Helper()
	a, run := openRun(t, dir, archive.Options{Format: format, FrameSize: 64 << 10})
	defer a.Close()
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: account(s), Connections: 3})
	if err != nil {
		t.Fatalf("%s: backup: %v", s.name, err)
	}
	if len(st.Failures) > 0 {
		t.Fatalf("%s: backup failures: %v", s.name, st.Failures)
	}
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	return st
}

func compare(t *testing.T, s server, c *imapclient.Client, dir string) {
	t.Helper()
	archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)
}

// fill appends the nasty corpus into the nasty folder tree.
func fill(t *testing.T, c *imapclient.Client, delim rune) (folders []string, n int) {
	t.Helper()
	folders = append([]string{"INBOX"}, imaptest.NastyFolders(delim)...)
	date := time.Date(2019, 5, 6, 7, 8, 9, 0, time.FixedZone("", -5*3600))
	for i, f := range folders {
		for j, m := range imaptest.Corpus() {
			if (i+j)%3 == 2 {
				continue // vary folder contents
			}
			flags := []string{}
			if j%2 == 0 {
				flags = append(flags, `\Seen`)
			}
			if j%4 == 1 {
				flags = append(flags, `\Flagged`, "$Label1")
			}
			imaptest.Append(t, c, f, flags, date.Add(time.Duration(i*100+j)*time.Hour), m.Body)
			n++
		}
	}
	return folders, n
}

func TestFullThenNoop(t *testing.T) {
	defer imapsrc.SetBodyChunk(4)() // several FETCH commands per folder
	for _, s := range servers(t) {
		for _, format := range []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox, archive.Maildir} {
			t.Run(s.name+"/"+string(format), func(t *testing.T) {
				c := imaptest.Dial(t, s.addr, user, pass)
				if format == archive.MboxZstd { // fill once per server
					fill(t, c, s.delim)
				}
				dir := filepath.Join(t.TempDir(), "a")
				total := countAll(t, c)
				st := backup(t, s, dir, format)
				if st.Fetched != total {
					t.Errorf("first run fetched %d, server holds %d", st.Fetched, total)
				}
				compare(t, s, c, dir)
				archivetest.IndependentRead(t, dir)
				st = backup(t, s, dir, format)
				if st.Fetched != 0 || st.FlagChanges != 0 || st.Expunged != 0 {
					t.Errorf("no-op run did work: %+v", st)
				}
				if s.condstore && st.Unchanged != st.Folders {
					t.Errorf("no-op run on a CONDSTORE server examined folders: %d of %d unchanged", st.Unchanged, st.Folders)
				}
			})
		}
	}
}

func countAll(t *testing.T, c *imapclient.Client) int {
	n := 0
	for _, msgs := range imaptest.Snapshot(t, c, false) {
		n += len(msgs)
	}
	return n
}

func TestIncremental(t *testing.T) {
	defer imapsrc.SetBodyChunk(3)() // several FETCH commands per folder
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			c := imaptest.Dial(t, s.addr, user, pass)
			for i := 0; i < 10; i++ {
				imaptest.Append(t, c, "INBOX", nil, time.Now().Add(-time.Duration(i)*time.Hour), []byte(fmt.Sprintf("Subject: m%d\r\nMessage-ID: <%d@t>\r\n\r\nbody %d\r\n", i, i, i)))
			}
			imaptest.Append(t, c, "Other", nil, time.Now(), []byte("Subject: o\r\n\r\no\r\n"))
			dir := t.TempDir()
			if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 11 {
				t.Fatalf("fetched %d, want 11", st.Fetched)
			}
			// Two new, flags on three, expunge two.
			imaptest.Append(t, c, "INBOX", []string{`\Seen`}, time.Now(), []byte("Subject: new1\r\n\r\nx\r\n"))
			imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: new2\r\n\r\ny"))
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			store(t, c, imap.UIDSetNum(1, 2, 3), imap.StoreFlagsAdd, `\Answered`, "$Done")
			store(t, c, imap.UIDSetNum(4, 5), imap.StoreFlagsAdd, `\Deleted`)
			if err := c.Expunge().Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Unselect().Wait(); err != nil {
				t.Fatal(err)
			}
			st := backup(t, s, dir, archive.MboxZstd)
			// Flags of 4 and 5 changed too (\Deleted), but they are gone by now.
			if st.Fetched != 2 || st.FlagChanges != 3 || st.Expunged != 2 {
				t.Errorf("incremental run: fetched %d flag changes %d expunged %d, want 2 3 2", st.Fetched, st.FlagChanges, st.Expunged)
			}
			compare(t, s, c, dir)
			a, _ := archive.Open(dir, archive.Options{ReadOnly: true})
			defer a.Close()
			f, _ := a.Cat.Folder(t.Context(), "INBOX")
			total, expunged, _, _ := a.Cat.Counts(t.Context(), f.ID)
			if total != 12 || expunged != 2 {
				t.Errorf("archive holds %d messages, %d expunged; want 12 and 2 (a backup never deletes)", total, expunged)
			}
			if st := backup(t, s, dir, archive.MboxZstd); st.Fetched+st.FlagChanges+st.Expunged != 0 {
				t.Errorf("third run did work: %+v", st)
			}
		})
	}
}

func store(t *testing.T, c *imapclient.Client, set imap.UIDSet, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if err := c.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUIDValidityReset recreates a folder with the same mail (plus one new
// message): nothing is stored twice, archived messages are re-keyed.
func TestUIDValidityReset(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) { testUIDValidityReset(t, s) })
	}
}

func testUIDValidityReset(t *testing.T, s server) {
	c := imaptest.Dial(t, s.addr, user, pass)
	var bodies [][]byte
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		b := []byte(fmt.Sprintf("Message-ID: <r%d@t>\r\nSubject: r%d\r\n\r\nsame %d\r\n", i%3, i, i))
		bodies = append(bodies, b)
		imaptest.Append(t, c, "Box", nil, date.Add(time.Duration(i)*time.Minute), b)
	}
	dir := t.TempDir()
	backup(t, s, dir, archive.Maildir)
	before := uidValidity(t, c, "Box")
	if err := c.Delete("Box").Wait(); err != nil {
		t.Fatal(err)
	}
	imaptest.Create(t, c, "Box")
	for uidValidity(t, c, "Box") == before { // Dovecot derives it from the clock
		time.Sleep(200 * time.Millisecond)
		if err := c.Delete("Box").Wait(); err != nil {
			t.Fatal(err)
		}
		imaptest.Create(t, c, "Box")
	}
	for i, b := range bodies {
		imaptest.Append(t, c, "Box", []string{`\Seen`}, date.Add(time.Duration(i)*time.Minute), b)
	}
	imaptest.Append(t, c, "Box", nil, date, []byte("Subject: brand new\r\n\r\nnew\r\n"))
	st := backup(t, s, dir, archive.Maildir)
	if st.Rekeyed != 6 || st.Fetched != 1 {
		t.Errorf("after UIDVALIDITY reset: rekeyed %d fetched %d, want 6 and 1", st.Rekeyed, st.Fetched)
	}
	compare(t, s, c, dir)
	a, _ := archive.Open(dir, archive.Options{ReadOnly: true})
	defer a.Close()
	f, _ := a.Cat.Folder(t.Context(), "Box")
	total, expunged, _, _ := a.Cat.Counts(t.Context(), f.ID)
	if total != 7 || expunged != 0 {
		t.Errorf("archive has %d messages (%d expunged), want 7 (0)", total, expunged)
	}
	if names := maildirFiles(t, filepath.Join(dir, f.Path)); names != 7 {
		t.Errorf("maildir holds %d files, want 7", names)
	}
}

func maildirFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "cur", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range m {
		if strings.Contains(x, ".mailkeep") {
			n++
		}
	}
	return n
}

func uidValidity(t *testing.T, c *imapclient.Client, folder string) uint32 {
	t.Helper()
	st, err := c.Status(folder, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return st.UIDValidity
}

func TestFolderSelection(t *testing.T) {
	s := servers(t)[1]
	c := imaptest.Dial(t, s.addr, user, pass)
	for _, f := range []string{"INBOX", "Work", "Work/A", "Work/B", "Trash"} {
		imaptest.Append(t, c, f, nil, time.Now(), []byte("Subject: "+f+"\r\n\r\nx\r\n"))
	}
	dir := t.TempDir()
	a, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: account(s), Folders: []string{"Work", "Work/*"}, Exclude: []string{"Work/A"}})
	if err != nil || st.Folders != 2 || st.Fetched != 2 {
		t.Fatalf("selection: %+v %v", st, err)
	}
	fl, _ := a.Cat.Folders(t.Context())
	var names []string
	for _, f := range fl {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "Work,Work/B" {
		t.Fatalf("archived folders %v, want Work and Work/B", names)
	}
}
