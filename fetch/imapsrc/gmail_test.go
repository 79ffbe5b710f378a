package imapsrc_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// gmailAccount fills a Gmail double with n messages of 1-3 labels each
// (system and user labels, nested ones), one in Spam and one in Trash,
// and returns their X-GM-MSGIDs.
func gmailAccount(t *testing.T, g *gmailtest.Server, n int, seed uint64) []uint64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	pool := []string{gmailtest.LabelInbox, gmailtest.LabelSent, gmailtest.LabelImportant, gmailtest.LabelStarred, "Work", "Work/2014", "Family", "Reçus"}
	var ids []uint64
	for i := 0; i < n; i++ {
		k := 1 + r.IntN(3)
		var labels []string
		for _, j := range r.Perm(len(pool))[:k] {
			labels = append(labels, pool[j])
		}
		switch i {
		case 3:
			labels = []string{gmailtest.LabelSpam}
		case 4:
			labels = []string{gmailtest.LabelTrash}
		}
		body := fmt.Sprintf("From: s%d@example.com\r\nTo: alice@gmail.com\r\nMessage-ID: <g%d@example.com>\r\nSubject: message %d\r\n\r\n%s\r\n",
			i, i, i, strings.Repeat(fmt.Sprintf("line %d of message %d\r\n", i, i), 20+r.IntN(60)))
		ids = append(ids, g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: labels, Date: time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC)}))
	}
	return ids
}

// gmBackup runs one backup of the double into dir and ends its run.
func gmBackup(t *testing.T, dir string, g *gmailtest.Server, gmail bool) imapsrc.Stats {
	t.Helper()
	cfg := imapconn.Config{Addr: g.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 20 * time.Second}
	return endedBackup(t, dir, imapsrc.Options{Account: cfg, Connections: 3, Gmail: gmail})
}

// archiveSize is the bytes of mail files in the archive.
func archiveSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(filepath.Join(dir, "mbox"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			n += fi.Size()
		}
		return nil
	})
	return n
}

// checkGmailArchive asserts that the archive in dir holds every message
// of the double exactly once (All Mail, Spam and Trash: by X-GM-MSGID,
// bytes and labels), and that every other folder of the double is a view
// listing, under All Mail's UIDs, exactly the messages the double shows
// in it, each readable with its bytes.
func checkGmailArchive(t *testing.T, g *gmailtest.Server, dir string) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{MustExist: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	folders, err := a.Cat.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*catalog.Folder{}
	for _, f := range folders {
		byName[f.Name] = f
	}
	// Stored once: the live rows of the folders of their own, by id.
	stored := map[uint64]*catalog.Message{}
	for _, f := range folders {
		if f.IsView() || f.IsFrozen() {
			continue
		}
		live, err := a.Cat.Live(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range live {
			if m.GmailMsgID == 0 {
				t.Errorf("%s uid %d: no X-GM-MSGID", f.Name, m.UID)
				continue
			}
			if stored[m.GmailMsgID] != nil {
				t.Errorf("message %d stored twice (%s uid %d)", m.GmailMsgID, f.Name, m.UID)
			}
			stored[m.GmailMsgID] = m
		}
	}
	msgs := g.Messages()
	if len(stored) != len(msgs) {
		t.Errorf("archive holds %d live messages, the double %d", len(stored), len(msgs))
	}
	for _, dm := range msgs {
		m := stored[dm.MsgID]
		if m == nil {
			t.Errorf("message %d (%v) not archived", dm.MsgID, dm.Folders)
			continue
		}
		want := slices.DeleteFunc(slices.Clone(dm.Labels), func(l string) bool { return l == gmailtest.LabelSpam || l == gmailtest.LabelTrash })
		got := slices.DeleteFunc(slices.Clone(m.Labels), func(l string) bool { return l == gmailtest.LabelSpam || l == gmailtest.LabelTrash })
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) || m.GmailThrID != dm.ThrID {
			t.Errorf("message %d: labels %q thread %d, the double %q %d", dm.MsgID, got, m.GmailThrID, want, dm.ThrID)
		}
		body := readMessage(t, a, m)
		if body != string(dm.Body) {
			t.Errorf("message %d: bytes differ", dm.MsgID)
		}
	}
	// Every label folder is a view listing what the double lists there.
	for _, name := range g.Folders() {
		if name == gmailtest.Root || name == gmailtest.AllMail || name == gmailtest.Spam || name == gmailtest.Trash {
			continue
		}
		entries, _, _ := g.Folder(name)
		f := byName[name]
		if f == nil {
			if len(entries) > 0 {
				t.Errorf("label folder %q missing", name)
			}
			continue
		}
		if !f.IsView() || f.ViewOf != byName[gmailtest.AllMail].ID {
			t.Errorf("%s: not a view of All Mail: %+v", name, f)
			continue
		}
		live, err := a.Cat.Live(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs, wantIDs []uint64
		for _, m := range live {
			gotIDs = append(gotIDs, m.GmailMsgID)
			if m.UIDValidity != f.UIDValidity {
				t.Errorf("%s uid %d: UIDVALIDITY %d, the view's %d", name, m.UID, m.UIDValidity, f.UIDValidity)
			}
			// cat FOLDER UID: the view finds it by its All Mail UID.
			bm, err := a.Cat.ByUID(ctx, f, m.UID)
			if err != nil || bm.ID != m.ID {
				t.Errorf("%s: ByUID %d: %v", name, m.UID, err)
			}
		}
		for _, e := range entries {
			wantIDs = append(wantIDs, e.MsgID)
		}
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("%s: view lists %v, the double %v", name, gotIDs, wantIDs)
		}
	}
}

func readMessage(t *testing.T, a *archive.Archive, m *catalog.Message) string {
	t.Helper()
	rc, err := a.Open(m)
	if err != nil {
		t.Fatalf("uid %d: %v", m.UID, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("uid %d: %v", m.UID, err)
	}
	return string(b)
}

func bodyBytes(g *gmailtest.Server) int64 {
	var n int64
	for _, m := range g.Messages() {
		n += int64(len(m.Body))
	}
	return n
}

// TestGmailStoredOnce: in Gmail mode an account whose messages carry
// several labels is downloaded and stored once (All Mail, Spam, Trash),
// with each message's labels, and every label folder lists its messages
// as a view. A second run downloads nothing.
func TestGmailStoredOnce(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	gmailAccount(t, g, 40, 1)
	dir := t.TempDir()
	st := gmBackup(t, dir, g, true)
	if len(st.Failures) > 0 {
		t.Fatal(st.Failures)
	}
	if want := bodyBytes(g); g.Downloaded() != want || st.Fetched != 40 || st.Bytes != want {
		t.Errorf("downloaded %d bytes, fetched %d (%d bytes); the account holds 40 messages of %d bytes", g.Downloaded(), st.Fetched, st.Bytes, want)
	}
	checkGmailArchive(t, g, dir)
	before := g.Downloaded()
	st = gmBackup(t, dir, g, true)
	if st.Fetched != 0 || g.Downloaded() != before || len(st.Failures) > 0 {
		t.Errorf("second run: %+v, downloaded %d more", st, g.Downloaded()-before)
	}
}

// TestGmailLabelChanges: labels added and removed between runs show up
// in the next (incremental, CHANGEDSINCE) run without a body download; a
// message moved to Trash is archived there and leaves All Mail's views;
// brought back from Trash it is revived in All Mail, not fetched again.
func TestGmailLabelChanges(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	ids := gmailAccount(t, g, 20, 2)
	dir := t.TempDir()
	if st := gmBackup(t, dir, g, true); len(st.Failures) > 0 {
		t.Fatal(st.Failures)
	}
	if err := g.AddLabels(ids[0], "Projects/New", "Work"); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveLabels(ids[1], gmailtest.LabelInbox, "Work", "Family"); err != nil {
		t.Fatal(err)
	}
	before := g.Downloaded()
	st := gmBackup(t, dir, g, true)
	if st.Fetched != 0 || g.Downloaded() != before || st.FlagChanges < 2 || len(st.Failures) > 0 {
		t.Errorf("label run: fetched %d, downloaded %d more, flag/label changes %d, failures %v", st.Fetched, g.Downloaded()-before, st.FlagChanges, st.Failures)
	}
	checkGmailArchive(t, g, dir)

	// To Trash: downloaded once into Trash; its All Mail row is expunged.
	moved := ids[5]
	if err := g.AddLabels(moved, gmailtest.LabelTrash); err != nil {
		t.Fatal(err)
	}
	dm, _ := g.Message(moved)
	before = g.Downloaded()
	st = gmBackup(t, dir, g, true)
	if st.Fetched != 1 || g.Downloaded()-before != int64(len(dm.Body)) || st.Expunged != 1 {
		t.Errorf("trash run: fetched %d, downloaded %d more (message %d bytes), expunged %d", st.Fetched, g.Downloaded()-before, len(dm.Body), st.Expunged)
	}
	checkGmailArchive(t, g, dir)

	// Back from Trash: All Mail's old row lives again under the new UID.
	if err := g.RemoveLabels(moved, gmailtest.LabelTrash); err != nil {
		t.Fatal(err)
	}
	before = g.Downloaded()
	st = gmBackup(t, dir, g, true)
	if st.Fetched != 0 || g.Downloaded() != before || st.Rekeyed != 1 || len(st.Failures) > 0 {
		t.Errorf("untrash run: fetched %d, downloaded %d more, revived %d, failures %v", st.Fetched, g.Downloaded()-before, st.Rekeyed, st.Failures)
	}
	checkGmailArchive(t, g, dir)
}

// TestGmailOff: with Gmail mode off (gmail = false) the backup is folder
// by folder, as before: every folder its own copy of its messages.
func TestGmailOff(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	gmailAccount(t, g, 20, 3)
	dir := t.TempDir()
	if st := gmBackup(t, dir, g, false); len(st.Failures) > 0 {
		t.Fatal(st.Failures)
	}
	compareGmail(t, g, dir)
	a, err := archive.Open(dir, archive.Options{MustExist: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fs, _ := a.Cat.Folders(t.Context())
	for _, f := range fs {
		if f.IsView() || f.Label != "" {
			t.Errorf("folder %s is a view or has a label without Gmail mode", f.Name)
		}
	}
	if g.Downloaded() <= bodyBytes(g) {
		t.Errorf("folder by folder downloaded %d bytes, no more than the %d of the messages once", g.Downloaded(), bodyBytes(g))
	}
}

// TestGmailUpgrade: an archive backed up folder by folder is taken over by
// Gmail mode without storing anything twice or losing anything: All
// Mail's messages get their ids and labels by one metadata FETCH (no
// body), label folders become views, and their old copies stay listed
// under "[before Gmail mode]/NAME".
func TestGmailUpgrade(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	gmailAccount(t, g, 20, 4)
	dir := t.TempDir()
	if st := gmBackup(t, dir, g, false); len(st.Failures) > 0 {
		t.Fatal(st.Failures)
	}
	rowsBefore, sizeBefore := ownRows(t, dir), archiveSize(t, dir)
	before := g.Downloaded()
	st := gmBackup(t, dir, g, true)
	if st.Fetched != 0 || g.Downloaded() != before || len(st.Failures) > 0 {
		t.Errorf("upgrade run: fetched %d, downloaded %d more, failures %v", st.Fetched, g.Downloaded()-before, st.Failures)
	}
	if got := ownRows(t, dir); got != rowsBefore {
		t.Errorf("rows of their own: %d before, %d after", rowsBefore, got)
	}
	if got := archiveSize(t, dir); got != sizeBefore {
		t.Errorf("archive files: %d bytes before, %d after", sizeBefore, got)
	}
	checkGmailArchive(t, g, dir)
	// The old INBOX copy is still listed, with its own UIDs.
	a, err := archive.Open(dir, archive.Options{MustExist: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	entries, _, _ := g.Folder(gmailtest.Inbox)
	f, err := a.Cat.Folder(t.Context(), catalog.FrozenName("INBOX", '/'))
	if err != nil {
		t.Fatal(err)
	}
	live, _ := a.Cat.Live(t.Context(), f.ID)
	if !f.IsFrozen() || len(live) != len(entries) || len(live) == 0 {
		t.Errorf("frozen INBOX: %+v, %d messages, the double's INBOX %d", f, len(live), len(entries))
	}
	for _, m := range live {
		if len(readMessage(t, a, m)) != int(m.Size) {
			t.Errorf("frozen INBOX uid %d unreadable", m.UID)
		}
	}
	a.Close()
	// A third run: nothing more, frozen folders not marked gone.
	st = gmBackup(t, dir, g, true)
	if st.Fetched != 0 || st.Expunged != 0 || len(st.Failures) > 0 {
		t.Errorf("third run: %+v", st)
	}
}

// ownRows counts the catalog's message rows (views have none).
func ownRows(t *testing.T, dir string) int {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{MustExist: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	n, err := a.Cat.MessageCount(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestGmailCatalogLoss: a lost catalog rebuilt from the journal (and the
// files) has the label views and every message's labels back.
func TestGmailCatalogLoss(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	ids := gmailAccount(t, g, 20, 5)
	dir := t.TempDir()
	gmBackup(t, dir, g, true)
	g.AddLabels(ids[2], "Later")
	gmBackup(t, dir, g, true)
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "catalog.db"+s))
	}
	st, err := archive.Reindex(t.Context(), dir, time.Now())
	if err != nil || st.Replayed == 0 || st.Found != 0 || st.Missing != 0 {
		t.Fatalf("reindex: %+v %v", st, err)
	}
	checkGmailArchive(t, g, dir)
}

// TestGmailDailyLimit: Gmail's daily download quota ends the first
// Gmail-mode backup part way; the next days' runs finish it, with every
// message stored once and every label listed.
func TestGmailDailyLimit(t *testing.T) {
	for _, bye := range []bool{false, true} {
		t.Run(fmt.Sprintf("bye %v", bye), func(t *testing.T) { testGmailDailyLimit(t, bye) })
	}
}

func testGmailDailyLimit(t *testing.T, bye bool) {
	clk := &dayClock{now: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)}
	g := gmailtest.Start(t, user, pass, gmailtest.Options{DailyDownload: 8000, Now: clk.Now, ByeOnQuota: bye})
	gmailAccount(t, g, 30, 6)
	dir := t.TempDir()
	runs := 0
	for ; runs < 20; runs++ {
		st := gmBackup(t, dir, g, true)
		if runs == 0 && (st.Stopped == nil || st.Fetched == 0 || st.Fetched >= 30) {
			t.Fatalf("first run not stopped by the quota: %+v", st)
		}
		if st.Stopped == nil {
			if len(st.Failures) > 0 {
				t.Fatal(st.Failures)
			}
			break
		}
		clk.nextDay()
	}
	if runs == 20 {
		t.Fatal("never finished")
	}
	t.Logf("finished after %d runs", runs+1)
	checkGmailArchive(t, g, dir)
}

// TestGmailMeasure measures what Gmail mode saves: an account of 200
// messages with 1-3 labels each (and its system folders) backed up in
// Gmail mode and folder by folder (gmail = false), bytes downloaded (the
// double's count of message bytes served) and stored (mail files and
// catalog rows).
func TestGmailMeasure(t *testing.T) {
	fill := func(g *gmailtest.Server) {
		r := rand.New(rand.NewPCG(13, 13))
		words := strings.Fields("the a report meeting budget quarter invoice please find attached regards thanks project deadline review draft schedule office customer order shipping")
		pool := []string{gmailtest.LabelInbox, gmailtest.LabelSent, gmailtest.LabelImportant, gmailtest.LabelStarred, "Work", "Work/2014", "Family", "Receipts", "Travel"}
		for i := 0; i < 200; i++ {
			var sb strings.Builder
			for w := 0; w < 200+r.IntN(2000); w++ {
				sb.WriteString(words[r.IntN(len(words))])
				if w%12 == 11 {
					sb.WriteString("\r\n")
				} else {
					sb.WriteByte(' ')
				}
			}
			var labels []string
			for _, j := range r.Perm(len(pool))[:1+r.IntN(3)] {
				labels = append(labels, pool[j])
			}
			body := fmt.Sprintf("From: s%d@example.com\r\nMessage-ID: <m%d@example.com>\r\nSubject: message %d\r\n\r\n%s\r\n", i%17, i, i, sb.String())
			g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: labels})
		}
	}
	type result struct {
		down, files int64
		rows        int
	}
	measure := func(gmail bool) (result, int64) {
		g := gmailtest.Start(t, user, pass, gmailtest.Options{})
		fill(g)
		dir := t.TempDir()
		if st := gmBackup(t, dir, g, gmail); len(st.Failures) > 0 {
			t.Fatal(st.Failures)
		}
		return result{g.Downloaded(), archiveSize(t, dir), ownRows(t, dir)}, bodyBytes(g)
	}
	on, unique := measure(true)
	off, _ := measure(false)
	t.Logf("200 messages, %d bytes once: Gmail mode downloaded %d bytes, stored %d bytes of files in %d rows; folder by folder downloaded %d bytes (%.2fx), stored %d bytes (%.2fx) in %d rows",
		unique, on.down, on.files, on.rows, off.down, float64(off.down)/float64(on.down), off.files, float64(off.files)/float64(on.files), off.rows)
	if on.down != unique || on.rows != 200 || off.down <= on.down || off.files <= on.files {
		t.Errorf("Gmail mode %+v, folder by folder %+v, unique %d", on, off, unique)
	}
}

// TestGmailOffBetween: a run with gmail = false on an archive kept in
// Gmail mode stores new All Mail messages without ids (and leaves the
// label views alone); the next Gmail-mode run gives them their ids and
// labels without downloading them again.
func TestGmailOffBetween(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	gmailAccount(t, g, 10, 8)
	dir := t.TempDir()
	gmBackup(t, dir, g, true)
	for i := 0; i < 3; i++ {
		g.Add(gmailtest.NewMessage{Body: []byte(fmt.Sprintf("Subject: late %d\r\n\r\nlate\r\n", i)), Labels: []string{gmailtest.LabelInbox, "Late"}})
	}
	late := int64(3 * len("Subject: late 0\r\n\r\nlate\r\n"))
	before := g.Downloaded()
	// All Mail's three and the new folder Late's (not a view yet); INBOX,
	// a view, is left alone.
	if st := gmBackup(t, dir, g, false); st.Fetched != 6 || len(st.Failures) > 0 || g.Downloaded()-before != 2*late {
		t.Fatalf("gmail = false run: %+v, downloaded %d (the new messages: %d)", st, g.Downloaded()-before, late)
	}
	before = g.Downloaded()
	if st := gmBackup(t, dir, g, true); st.Fetched != 0 || g.Downloaded() != before || len(st.Failures) > 0 {
		t.Errorf("Gmail-mode run after: %+v, downloaded %d more", st, g.Downloaded()-before)
	}
	checkGmailArchive(t, g, dir)
}
