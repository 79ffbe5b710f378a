package restore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
	"github.com/mailkeep/mailkeep/restore/archivesrc"
)

const pass = "pw"

func acct(addr, user string) imapconn.Config {
	return imapconn.Config{Addr: addr, TLS: imapconn.TLSNone, User: user, Password: pass}
}

// backup archives an account into dir.
func backup(t *testing.T, addr, user, dir string, format archive.Format) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{Format: format, FrameSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: acct(addr, user)})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("backup: %v %v", err, st.Failures)
	}
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
}

type restoreOpts struct {
	restore.Options
	src   archivesrc.Options
	ctx   context.Context
	noRaw bool // APPEND through go-imap only
}

// doRestore restores dir into addr/user.
func doRestore(t *testing.T, dir, addr, user string, o restoreOpts) (restore.Stats, error) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "restore", addr, time.Now())
	src, err := archivesrc.New(t.Context(), a, run, o.src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	dial := func(ctx context.Context) (*imapclient.Client, error) { return imapconn.Dial(ctx, acct(addr, user)) }
	if !o.noRaw {
		o.DialRaw = func(ctx context.Context) (restore.AppendConn, error) { return imapconn.DialRaw(ctx, acct(addr, user)) }
	}
	if o.DialLabels == nil {
		o.DialLabels = func(ctx context.Context) (restore.LabelConn, error) { return imapconn.DialRaw(ctx, acct(addr, user)) }
	}
	st, err := restore.Run(ctx, dial, restore.Destination{Server: addr, User: user}, src, src, o.Options)
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "test"})
	return st, err
}

func fill(t *testing.T, c *imapclient.Client, folders []string) int {
	t.Helper()
	n := 0
	date := time.Date(2018, 7, 8, 9, 10, 11, 0, time.FixedZone("", 2*3600))
	for i, f := range folders {
		for j, m := range imaptest.Corpus() {
			if (i+j)%2 == 1 || m.Name == "big" && i > 0 {
				continue
			}
			flags := []string{`\Seen`}
			if j%3 == 0 {
				flags = append(flags, `\Flagged`, "$Work", "Custom_kw")
			}
			imaptest.Append(t, c, f, flags, date.Add(time.Duration(i*97+j)*time.Minute), m.Body)
			n++
		}
	}
	return n
}

func total(snap map[string][]imaptest.Msg) int {
	n := 0
	for _, m := range snap {
		n += len(m)
	}
	return n
}

func TestRoundTripEveryFormat(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	formats := []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox, archive.Maildir}
	dv.AddUser(t, "src", pass)
	for _, f := range formats {
		dv.AddUser(t, "dst-"+strings.ReplaceAll(string(f), ".", "-"), pass)
	}
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	fill(t, c, append([]string{"INBOX"}, imaptest.NastyFolders('/')...))
	want := imaptest.Snapshot(t, c, false)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			dst := "dst-" + strings.ReplaceAll(string(f), ".", "-")
			dir := t.TempDir()
			backup(t, dv.IMAPAddr, "src", dir, f)
			// Maildir goes through go-imap's APPEND, the others through the
			// pipelined LITERAL+ connection.
			st, err := doRestore(t, dir, dv.IMAPAddr, dst, restoreOpts{noRaw: f == archive.Maildir})
			if err != nil || len(st.Failures) > 0 {
				t.Fatalf("restore: %v %v", err, st.Failures)
			}
			if st.Appended != total(want) {
				t.Errorf("appended %d, want %d", st.Appended, total(want))
			}
			got := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, dst, pass), false)
			if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), nil); d != "" {
				t.Fatalf("destination differs from source:\n%s", d)
			}
			// Idempotent: a second run appends nothing.
			st, err = doRestore(t, dir, dv.IMAPAddr, dst, restoreOpts{})
			if err != nil || st.Appended != 0 || st.Skipped != total(want) {
				t.Fatalf("rerun: appended %d skipped %d, %v", st.Appended, st.Skipped, err)
			}
		})
	}
}

func TestInterruptedAndResumed(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "src", pass)
	dv.AddUser(t, "dst", pass)
	dv.AddUser(t, "other", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	fill(t, c, []string{"INBOX", "A", "B/C"})
	want := imaptest.Snapshot(t, c, false)
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)

	appended := 0
	for round := 0; round < 20; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int32 // Progress is called from several goroutines
		st, err := doRestore(t, dir, dv.IMAPAddr, "dst", restoreOpts{ctx: ctx, Options: restore.Options{Connections: 2, Progress: func(restore.Event) {
			if n.Add(1) == 3 {
				cancel()
			}
		}}})
		cancel()
		appended += st.Appended
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "dst", pass), false)
	if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), nil); d != "" {
		t.Fatalf("after interrupted restores:\n%s", d)
	}
	if total(got) != total(want) {
		t.Fatalf("destination holds %d messages, want %d", total(got), total(want))
	}

	// A crash between the server's OK and the progress record: the copy is
	// recognised on the destination (Message-ID, size, date) and not
	// appended again. Simulate it by restoring once with no progress.
	oc := imaptest.Dial(t, dv.IMAPAddr, "other", pass)
	for _, m := range imaptest.Corpus()[:4] {
		imaptest.Append(t, oc, "INBOX", []string{`\Seen`}, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), m.Body)
	}
	dir2 := t.TempDir()
	backup(t, dv.IMAPAddr, "other", dir2, archive.Maildir)
	st, err := doRestore(t, dir2, dv.IMAPAddr, "other", restoreOpts{})
	if err != nil || st.Appended != 0 {
		t.Fatalf("restore onto the same mail: appended %d (%v), want 0: duplicates", st.Appended, err)
	}
}

func TestAsOf(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "src", pass)
	dv.AddUser(t, "dst", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	for i := 0; i < 6; i++ {
		imaptest.Append(t, c, "INBOX", nil, time.Date(2020, 1, 1, i, 0, 0, 0, time.UTC), []byte(fmt.Sprintf("Message-ID: <%d@asof>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)))
	}
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)
	then := imaptest.Snapshot(t, c, false)
	time.Sleep(50 * time.Millisecond)
	asOf := time.Now()
	time.Sleep(50 * time.Millisecond)
	// Later: flags change, two expunged, one new.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Store(imap.UIDSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{`\Answered`}}, nil).Close()
	c.Store(imap.UIDSetNum(5, 6), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c.Unselect().Wait()
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: later\r\n\r\nlater\r\n"))
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)
	now := imaptest.Snapshot(t, c, false)

	st, err := doRestore(t, dir, dv.IMAPAddr, "dst", restoreOpts{src: archivesrc.Options{AsOf: asOf}})
	if err != nil || len(st.Failures) > 0 {
		t.Fatal(err, st.Failures)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "dst", pass), false)
	if d := imaptest.Diff(nonEmpty(then), nonEmpty(got), nil); d != "" {
		t.Fatalf("--as-of restore differs from the mailbox as it was:\n%s", d)
	}
	if imaptest.Diff(now, got, nil) == "" {
		t.Fatal("the test is vacuous: the mailbox did not change")
	}
}

func TestNamespacePrefixAndDelimiter(t *testing.T) {
	src := dovecottest.Start(t, nil)
	src.AddUser(t, "src", pass)
	dst := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	dst.AddUser(t, "dst", pass)
	c := imaptest.Dial(t, src.IMAPAddr, "src", pass)
	folders := []string{"INBOX", "Work/Projects/2026", "Größe & Co", "INBOX/Child"}
	fill(t, c, folders)
	want := imaptest.Snapshot(t, c, false)
	dir := t.TempDir()
	backup(t, src.IMAPAddr, "src", dir, archive.MboxZstd)
	st, err := doRestore(t, dir, dst.IMAPAddr, "dst", restoreOpts{Options: restore.Options{Prefix: "Restored/2026"}})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("%v %v", err, st.Failures)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, dst.IMAPAddr, "dst", pass), false)
	mapName := func(n string) string { return "INBOX.Restored.2026." + strings.ReplaceAll(n, "/", ".") }
	if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), mapName); d != "" {
		t.Fatalf("prefix restore:\n%s\nfolders: %v", d, keys(got))
	}
}

// nonEmpty drops empty folders (parents a restore created).
func nonEmpty(m map[string][]imaptest.Msg) map[string][]imaptest.Msg {
	out := map[string][]imaptest.Msg{}
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

func keys(m map[string][]imaptest.Msg) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDamagedMessageAndDryRun(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "src", pass)
	dv.AddUser(t, "dst", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	for i := 0; i < 5; i++ {
		imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
	}
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.Maildir)

	var dry strings.Builder
	st, err := doRestore(t, dir, dv.IMAPAddr, "dst", restoreOpts{Options: restore.Options{DryRun: true, DryRunOutput: &dry}})
	if err != nil || st.Appended != 5 {
		t.Fatalf("dry run: %+v %v", st, err)
	}
	// Messages are named by source folder and UID, never a catalog row id.
	for uid := 1; uid <= 5; uid++ {
		if w := fmt.Sprintf(`would append to "INBOX" from "INBOX": UID %d,`, uid); !strings.Contains(dry.String(), w) {
			t.Errorf("dry run does not say %s:\n%s", w, dry.String())
		}
	}
	if strings.Contains(dry.String(), "msg:") {
		t.Errorf("dry run names catalog rows:\n%s", dry.String())
	}
	if n := total(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "dst", pass), false)); n != 0 {
		t.Fatalf("dry run appended %d messages", n)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "maildir", "cur", "*"))
	b, _ := os.ReadFile(files[2])
	b[len(b)-3] ^= 0x20
	os.WriteFile(files[2], b, 0o600)
	st, err = doRestore(t, dir, dv.IMAPAddr, "dst", restoreOpts{})
	if err != nil || st.Damaged != 1 || st.Appended != 4 || len(st.Failures) != 1 || !strings.Contains(st.Failures[0].Error(), "SHA-256") {
		t.Fatalf("damaged message: %+v %v", st, err)
	}
	if e := st.Failures[0].Error(); !regexp.MustCompile(`^folder "INBOX": message UID [1-5]: `).MatchString(e) || strings.Contains(e, "msg:") {
		t.Errorf("the damaged message is not named by folder and UID: %s", e)
	}
}

// noKeywords is a session whose folders refuse keywords: PERMANENTFLAGS
// lists only system flags.
type noKeywords struct{ imapserver.Session }

func (s noKeywords) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := s.Session.Select(mailbox, options)
	if d != nil {
		d.PermanentFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	}
	return d, err
}

func TestKeywordsRefused(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "src", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	imaptest.Append(t, c, "Box", []string{`\Seen`, "$Keep", "Extra"}, time.Now(), []byte("Subject: kw\r\n\r\nx\r\n"))
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)

	mem := imapmemserver.New()
	u := imapmemserver.NewUser("dst", pass)
	u.Create("INBOX", nil)
	mem.AddUser(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return noKeywords{mem.NewSession()}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}},
		InsecureAuth: true,
	})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	st, err := doRestore(t, dir, ln.Addr().String(), "dst", restoreOpts{})
	if err != nil || st.Appended != 1 || st.KeywordsDropped != 2 {
		t.Fatalf("restore into a folder refusing keywords: %+v %v", st, err)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, ln.Addr().String(), "dst", pass), false)["Box"]
	if len(got) != 1 || strings.Join(got[0].Flags, " ") != `\Seen` {
		t.Fatalf("restored message flags: %+v", got)
	}
}

func TestSpecialUseMapping(t *testing.T) {
	src := dovecottest.Start(t, nil)
	src.AddUser(t, "src", pass)
	dst := dovecottest.Start(t, &dovecottest.Options{ExtraConfig: renamedSpecialUse})
	dst.AddUser(t, "dst", pass)
	c := imaptest.Dial(t, src.IMAPAddr, "src", pass)
	fill(t, c, []string{"Sent", "Trash", "Work"})
	want := imaptest.Snapshot(t, c, false)
	dir := t.TempDir()
	backup(t, src.IMAPAddr, "src", dir, archive.MboxZstd)
	st, err := doRestore(t, dir, dst.IMAPAddr, "dst", restoreOpts{})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("%v %v", err, st.Failures)
	}
	got := imaptest.Snapshot(t, imaptest.Dial(t, dst.IMAPAddr, "dst", pass), false)
	names := map[string]string{"Sent": "Sent Messages", "Trash": "Deleted Messages"}
	mapName := func(n string) string {
		if m, ok := names[n]; ok {
			return m
		}
		return n
	}
	if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), mapName); d != "" {
		t.Fatalf("special-use mapping:\n%s\nfolders: %v", d, keys(got))
	}
	// --no-special-use keeps the names.
	dst.AddUser(t, "dst2", pass)
	time.Sleep(1100 * time.Millisecond) // passwd-file changes are noticed by mtime
	dst.AddUser(t, "dst3", pass)
	st, err = doRestore(t, dir, dst.IMAPAddr, "dst3", restoreOpts{Options: restore.Options{NoSpecialUse: true}})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("%v %v", err, st.Failures)
	}
	got = imaptest.Snapshot(t, imaptest.Dial(t, dst.IMAPAddr, "dst3", pass), false)
	if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), nil); d != "" {
		t.Fatalf("--no-special-use:\n%s", d)
	}
}

// TestSharedMessageID: two different messages with one Message-ID are both
// restored, also onto a destination that already holds one of them.
func TestSharedMessageID(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "src", pass)
	dv.AddUser(t, "dst", pass)
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	a := []byte("Message-ID: <same@x>\r\nSubject: a\r\n\r\nfirst\r\n")
	b := []byte("Message-ID: <same@x>\r\nSubject: b\r\n\r\nsecond, longer\r\n")
	imaptest.Append(t, c, "INBOX", nil, date, a)
	imaptest.Append(t, c, "INBOX", nil, date, b)
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)
	dc := imaptest.Dial(t, dv.IMAPAddr, "dst", pass)
	imaptest.Append(t, dc, "INBOX", nil, date, a) // already there, by another tool
	st, err := doRestore(t, dir, dv.IMAPAddr, "dst", restoreOpts{})
	if err != nil || st.Appended != 1 || st.Skipped != 1 {
		t.Fatalf("appended %d skipped %d (%v); want 1 and 1", st.Appended, st.Skipped, err)
	}
	if d := imaptest.Diff(imaptest.Snapshot(t, c, false), imaptest.Snapshot(t, dc, false), nil); d != "" {
		t.Fatal(d)
	}
}

// renamedSpecialUse gives a Dovecot destination \Sent and \Trash folders
// under other names than the source's.
const renamedSpecialUse = `
namespace inbox {
  mailbox "Sent Messages" {
    special_use = \Sent
    auto = create
  }
  mailbox "Deleted Messages" {
    special_use = \Trash
    auto = create
  }
}
`
