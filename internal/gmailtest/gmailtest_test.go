package gmailtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/oauth"
)

const user, pass = "alice@gmail.com", "app-password"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func body(subject string, size int) []byte {
	b := "From: bob@example.com\r\nTo: alice@gmail.com\r\nSubject: " + subject + "\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n\r\n"
	for len(b) < size {
		b += "Some text of the message body.\r\n"
	}
	return []byte(b)
}

func login(t *testing.T, s *gmailtest.Server) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// raw logs in through mailkeep's raw connection and selects folder; the
// Gmail items are read with gmailext on it.
func raw(t *testing.T, s *gmailtest.Server, folder string) (*imapconn.Raw, *gmailext.Client, []string) {
	t.Helper()
	r, err := imapconn.DialRaw(context.Background(), imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	lines, err := r.Cmd("SELECT " + imapconn.Mailbox(folder) + " (CONDSTORE)")
	if err != nil {
		t.Fatalf("SELECT %s: %v", folder, err)
	}
	return r, gmailext.NewBuffered(r.R, r.W, nil), lines
}

func fetchMeta(t *testing.T, g *gmailext.Client) []gmailext.Message {
	t.Helper()
	res, err := g.FetchMeta(context.Background(), "1:*", gmailext.FetchOptions{ModSeq: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Messages
}

func TestCapabilitiesAndFolders(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	c := login(t, s)
	caps := c.Caps()
	for _, want := range []imap.Cap{"X-GM-EXT-1", "CONDSTORE", imap.CapUIDPlus, imap.CapMove, imap.CapSpecialUse, "APPENDLIMIT=35651584", imap.CapIMAP4rev1} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	for _, no := range []imap.Cap{imap.CapIMAP4rev2, imap.CapLiteralPlus} {
		if caps.Has(no) {
			t.Errorf("capability %s advertised; Gmail has none", no)
		}
	}
	s.Add(gmailtest.NewMessage{Body: body("one", 100), Labels: []string{"Work", "Family/Kids"}})
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, d := range list {
		got[d.Mailbox] = d.Attrs
	}
	want := map[string]imap.MailboxAttr{
		"[Gmail]/All Mail":  imap.MailboxAttrAll,
		"[Gmail]/Spam":      imap.MailboxAttrJunk,
		"[Gmail]/Trash":     imap.MailboxAttrTrash,
		"[Gmail]/Sent Mail": imap.MailboxAttrSent,
		"[Gmail]/Drafts":    imap.MailboxAttrDrafts,
		"[Gmail]/Starred":   imap.MailboxAttrFlagged,
		"[Gmail]/Important": imap.MailboxAttrImportant,
		"[Gmail]":           imap.MailboxAttrNoSelect,
		"INBOX":             imap.MailboxAttrHasNoChildren,
		"Work":              imap.MailboxAttrHasNoChildren,
		"Family":            imap.MailboxAttrHasChildren,
		"Family/Kids":       imap.MailboxAttrHasNoChildren,
	}
	for name, attr := range want {
		if !slices.Contains(got[name], attr) {
			t.Errorf("LIST %q: attrs %v, want %s", name, got[name], attr)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LIST: %d folders %v, want %d", len(got), got, len(want))
	}
}

// TestLabelsShareMessages: a message with three labels is listed in four
// folders with four UIDs and one X-GM-MSGID, body and flags.
func TestLabelsShareMessages(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	id1 := s.Add(gmailtest.NewMessage{Body: body("first", 200), Labels: []string{gmailtest.LabelInbox, "Work", "Famille/Enfants é"}, Flags: []imap.Flag{imap.FlagSeen}})
	id2 := s.Add(gmailtest.NewMessage{Body: body("reply", 300), Labels: []string{"Work", gmailtest.LabelImportant}, Thread: id1})
	id3 := s.Add(gmailtest.NewMessage{Body: body("archived", 100)})
	s.Add(gmailtest.NewMessage{Body: body("binned", 100), Labels: []string{"Work", gmailtest.LabelTrash}})
	if id1 < 1<<63 {
		t.Errorf("X-GM-MSGID %d: want above 2^63 to exercise unsigned parsing", id1)
	}

	want := map[string][]uint64{
		"[Gmail]/All Mail":  {id1, id2, id3},
		"INBOX":             {id1},
		"Work":              {id1, id2},
		"Famille/Enfants é": {id1},
		"[Gmail]/Important": {id2},
	}
	uids := map[imap.UID]int{}
	for folder, ids := range want {
		_, g, _ := raw(t, s, folder)
		msgs := fetchMeta(t, g)
		var got []uint64
		for i, m := range msgs {
			got = append(got, m.MsgID)
			if m.UID != uint32(i+1) {
				t.Errorf("%s: UID %d at position %d; each folder numbers its own", folder, m.UID, i)
			}
			uids[imap.UID(m.UID)]++
			if m.MsgID == id1 {
				wantLabels := []string{"Famille/Enfants é", "Work", `\Inbox`}
				if !reflect.DeepEqual(m.Labels, wantLabels) || m.ThrID != id1 || !slices.Contains(m.Flags, `\Seen`) {
					t.Errorf("%s: message 1 = %+v, want labels %q, thread %d, \\Seen", folder, m, wantLabels, id1)
				}
			}
			if m.MsgID == id2 && m.ThrID != id1 {
				t.Errorf("%s: reply's X-GM-THRID %d, want %d", folder, m.ThrID, id1)
			}
		}
		if !reflect.DeepEqual(got, ids) {
			t.Errorf("%s: X-GM-MSGIDs %v, want %v", folder, got, ids)
		}
	}

	// The same bytes in every folder, through go-imap's client.
	c := login(t, s)
	for _, folder := range []string{"INBOX", "Work", "[Gmail]/All Mail"} {
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || string(msgs[0].FindBodySection(&imap.FetchItemBodySection{})) != string(body("first", 200)) {
			t.Errorf("%s: UID 1 body differs from the message's", folder)
		}
	}
	// A flag set in one folder is the message's flag in all of them.
	if _, err := c.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Message(id2)
	if !slices.Contains(m.Labels, gmailtest.LabelStarred) || !slices.Contains(m.Folders, gmailtest.Starred) {
		t.Errorf("\\Flagged did not star the message: %+v", m)
	}
}

func TestStoreLabels(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	id1 := s.Add(gmailtest.NewMessage{Body: body("a", 100), Labels: []string{"Work"}})
	id2 := s.Add(gmailtest.NewMessage{Body: body("b", 100), Labels: []string{"Work", gmailtest.LabelInbox}})

	r, g, _ := raw(t, s, "[Gmail]/All Mail")
	ctx := context.Background()
	res, err := g.StoreLabels(ctx, "1", true, []string{"Projet été", gmailtest.LabelImportant})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || !reflect.DeepEqual(res.Messages[0].Labels, []string{"Projet été", "Work", `\Important`}) {
		t.Fatalf("STORE +X-GM-LABELS answered %+v", res.Messages)
	}
	if ents, _, ok := s.Folder("Projet été"); !ok || len(ents) != 1 || ents[0].MsgID != id1 {
		t.Errorf("label folder after STORE: %v %v", ents, ok)
	}
	if ents, _, _ := s.Folder(gmailtest.Important); len(ents) != 1 || ents[0].MsgID != id1 {
		t.Errorf("[Gmail]/Important after STORE: %v", ents)
	}

	// Removing a label from the folder's own messages: the folder's
	// sessions see it go, All Mail keeps it.
	c := login(t, s)
	if _, err := c.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.StoreLabels(ctx, "2", false, []string{"Work"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := data.AllUIDs(); !reflect.DeepEqual(got, []imap.UID{1}) {
		t.Errorf("Work after -X-GM-LABELS Work on the second message: UIDs %v, want [1]", got)
	}
	m, _ := s.Message(id2)
	if !reflect.DeepEqual(m.Labels, []string{gmailtest.LabelInbox}) || !slices.Contains(m.Folders, gmailtest.AllMail) {
		t.Errorf("message 2 = %+v", m)
	}

	// Labels changed on the server side are what the next FETCH reads.
	if err := s.AddLabels(id2, "Later"); err != nil {
		t.Fatal(err)
	}
	msgs := fetchMeta(t, g)
	if len(msgs) != 2 || !reflect.DeepEqual(msgs[1].Labels, []string{"Later", `\Inbox`}) {
		t.Errorf("after AddLabels: %+v", msgs)
	}
	// .SILENT: the label changes, nothing is answered.
	lines, err := r.Cmd(`UID STORE 1 +X-GM-LABELS.SILENT (Quiet)`)
	if m, _ := s.Message(id1); err != nil || len(lines) != 0 || !slices.Contains(m.Labels, "Quiet") {
		t.Errorf("STORE +X-GM-LABELS.SILENT: %q %v, labels %q", lines, err, m.Labels)
	}
	// Unknown STORE syntax is imapserver's BAD, not a crash.
	if _, err := r.Cmd(`UID STORE 1 +X-GM-LABELS ("unterminated)`); err == nil {
		t.Error("malformed STORE X-GM-LABELS accepted")
	}
}

func TestCondstore(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	s.Add(gmailtest.NewMessage{Body: body("a", 100), Labels: []string{"Work"}})
	s.Add(gmailtest.NewMessage{Body: body("b", 100)})
	_, g, lines := raw(t, s, "[Gmail]/All Mail")
	var highest uint64
	for _, l := range lines {
		fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &highest)
	}
	if highest == 0 {
		t.Fatalf("SELECT (CONDSTORE) sent no HIGHESTMODSEQ: %q", lines)
	}
	if _, err := g.StoreLabels(context.Background(), "2", true, []string{"Later"}); err != nil {
		t.Fatal(err)
	}
	res, err := g.FetchMeta(context.Background(), "1:*", gmailext.FetchOptions{ChangedSince: highest})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || res.Messages[0].UID != 2 || res.Messages[0].ModSeq <= highest {
		t.Errorf("CHANGEDSINCE %d: %+v, want only UID 2 with a higher MODSEQ", highest, res.Messages)
	}
}

func TestAppendIntoLabel(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{AppendLimit: 5000})
	c := login(t, s)
	b := body("appended", 500)
	if err := c.Create("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := c.Append("Work", int64(len(b)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	cmd.Write(b)
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !reflect.DeepEqual(msgs[0].Labels, []string{"Work"}) || !reflect.DeepEqual(msgs[0].Folders, []string{"Work", gmailtest.AllMail}) {
		t.Fatalf("after APPEND to Work: %+v", msgs)
	}
	ents, v, _ := s.Folder("Work")
	if data.UID != ents[0].UID || data.UIDValidity != v {
		t.Errorf("APPENDUID %d %d, want Work's %d %d", data.UIDValidity, data.UID, v, ents[0].UID)
	}

	// Over APPENDLIMIT: Gmail's BAD [TOOBIG] instead of the continuation
	// request, and the connection goes on. (go-imap's client gives up its
	// connection when a literal is refused, so the raw path speaks here.)
	r, _, _ := raw(t, s, "Work")
	big := body("big", 6000)
	tag := r.NextTag()
	fmt.Fprintf(r.W, "%s APPEND \"Work\" {%d}\r\n", tag, len(big))
	r.W.Flush()
	_, _, err = r.ReadTagged(tag)
	if err == nil || statusLine(err) != "BAD [TOOBIG] Message too large." {
		t.Fatalf("APPEND over the limit: %v, want BAD [TOOBIG] Message too large.", err)
	}
	if _, err := r.Cmd("NOOP"); err != nil {
		t.Errorf("connection after TOOBIG: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages after a refused APPEND, want 1", n)
	}
}

func TestConnectionCap(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	var cs []*imapclient.Client
	for range gmailtest.MaxConns {
		cs = append(cs, login(t, s))
	}
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Login(user, pass).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeAlert || ie.Text != "Too many simultaneous connections. (Failure)" {
		t.Fatalf("16th login: %v, want NO [ALERT] Too many simultaneous connections. (Failure)", err)
	}
	if err := cs[0].Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitConns(ctx, gmailtest.MaxConns-1); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Errorf("login after one connection closed: %v", err)
	}
}

func TestDailyQuota(t *testing.T) {
	clk := newClock()
	s := gmailtest.Start(t, user, pass, gmailtest.Options{DailyDownload: 2500, Now: clk.Now})
	for i := range 5 {
		s.Add(gmailtest.NewMessage{Body: body(fmt.Sprint("m", i), 1000)})
	}
	c := login(t, s)
	if _, err := c.Select(gmailtest.AllMail, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	fetch := func() ([]*imapclient.FetchMessageBuffer, error) {
		return c.Fetch(imap.UIDSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	}
	msgs, err := fetch()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != "OVERQUOTA" || ie.Text != "Account exceeded command or bandwidth limits. (Failure)" {
		t.Fatalf("FETCH past the quota: %v, want NO [OVERQUOTA]", err)
	}
	_ = msgs
	if got := s.Downloaded(); got < 2500 || got > 3500 {
		t.Errorf("Downloaded() = %d, want the quota plus at most one message", got)
	}
	// Metadata still answers; bodies do not, until the next day.
	if _, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true}).Collect(); err != nil {
		t.Errorf("FETCH FLAGS past the quota: %v", err)
	}
	if _, err := fetch(); err == nil {
		t.Error("second FETCH of bodies the same day succeeded")
	}
	clk.Advance(24 * time.Hour)
	msgs, err = c.Fetch(imap.UIDSetNum(4, 5), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Errorf("next day: %d messages, %v", len(msgs), err)
	}
}

func TestDailyQuotaBye(t *testing.T) {
	clk := newClock()
	s := gmailtest.Start(t, user, pass, gmailtest.Options{DailyDownload: 1500, ByeOnQuota: true, Now: clk.Now})
	for i := range 3 {
		s.Add(gmailtest.NewMessage{Body: body(fmt.Sprint("m", i), 1000)})
	}
	r, _, _ := raw(t, s, gmailtest.AllMail)
	lines, err := r.Cmd("UID FETCH 1:* (BODY.PEEK[])")
	if err == nil {
		t.Fatal("FETCH past the quota succeeded")
	}
	if !slices.Contains(lines, "* BYE Session expired, please login again.") {
		t.Errorf("untagged lines %q, want the BYE", lines)
	}
	if _, err := r.R.ReadByte(); !errors.Is(err, io.EOF) && err == nil {
		t.Errorf("connection still open after BYE")
	}
}

// TestDailyUpload: past the upload quota APPEND stores nothing and answers
// as Gmail does; the next day (injected clock) it takes mail again.
func TestDailyUpload(t *testing.T) {
	clk := newClock()
	s := gmailtest.Start(t, user, pass, gmailtest.Options{DailyUpload: 2500, Now: clk.Now})
	c := login(t, s)
	appendMsg := func(i int) error {
		return imaptest.TryAppend(c, "INBOX", body(fmt.Sprint("up", i), 1000))
	}
	for i := range 3 { // 3,000 bytes: the third starts under the quota
		if err := appendMsg(i); err != nil {
			t.Fatalf("APPEND %d under the quota: %v", i, err)
		}
	}
	err := appendMsg(3)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeAlert || ie.Text != "Account exceeded command or bandwidth limits. (Failure)" {
		t.Fatalf("APPEND past the quota: %v, want NO [ALERT] Account exceeded command or bandwidth limits. (Failure)", err)
	}
	if n := len(s.Messages()); n != 3 {
		t.Errorf("%d messages stored, want 3 (nothing past the quota)", n)
	}
	if got := s.Uploaded(); got < 2500 || got > 3500 {
		t.Errorf("Uploaded() = %d, want the quota plus at most one message", got)
	}
	if s.Downloaded() != 0 {
		t.Errorf("uploads counted as downloads: %d", s.Downloaded())
	}
	clk.Advance(24 * time.Hour)
	if err := appendMsg(3); err != nil {
		t.Fatalf("next day: %v", err)
	}
	if n := len(s.Messages()); n != 4 {
		t.Errorf("%d messages stored, want 4", n)
	}
}

func TestThrottled(t *testing.T) {
	clk := newClock()
	s := gmailtest.Start(t, user, pass, gmailtest.Options{Throttle: gmailtest.Throttle{Commands: 4, Window: time.Minute}, Now: clk.Now})
	s.Add(gmailtest.NewMessage{Body: body("a", 100)})
	_, g, _ := raw(t, s, gmailtest.AllMail) // CAPABILITY, LOGIN, CAPABILITY, SELECT
	ctx := context.Background()
	res, err := g.FetchMeta(ctx, "1:*", gmailext.FetchOptions{})
	if err != nil || !res.Throttled {
		t.Fatalf("5th command in a minute: throttled=%v err=%v", res != nil && res.Throttled, err)
	}
	clk.Advance(2 * time.Minute)
	if res, err = g.FetchMeta(ctx, "1:*", gmailext.FetchOptions{}); err != nil || res.Throttled {
		t.Fatalf("after the window: throttled=%v err=%v", res != nil && res.Throttled, err)
	}
	s.SetThrottled(true)
	if res, err = g.FetchMeta(ctx, "1:*", gmailext.FetchOptions{}); err != nil || !res.Throttled || len(res.Messages) != 1 {
		t.Fatalf("SetThrottled(true): %+v, %v", res, err)
	}
	// go-imap's client takes [THROTTLED] as an ordinary OK.
	c := login(t, s)
	if _, err := c.Select(gmailtest.AllMail, nil).Wait(); err != nil {
		t.Errorf("SELECT while throttled: %v", err)
	}
}

func TestExpunge(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	id := s.Add(gmailtest.NewMessage{Body: body("a", 100), Labels: []string{"Work"}})
	c := login(t, s)
	for _, step := range []struct {
		folder      string
		wantFolders []string
	}{
		{"Work", []string{gmailtest.AllMail}},
		{gmailtest.AllMail, []string{gmailtest.Trash}},
		{gmailtest.Trash, nil},
	} {
		if _, err := c.Select(step.folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
		m, ok := s.Message(id)
		if !reflect.DeepEqual(m.Folders, step.wantFolders) || ok != (step.wantFolders != nil) {
			t.Errorf("EXPUNGE in %s: message in %v (exists %v), want %v", step.folder, m.Folders, ok, step.wantFolders)
		}
	}
}

// TestCondstoreGoIMAP drives CONDSTORE with go-imap's client the way
// fetch/imapsrc does: LIST-STATUS and STATUS with HIGHESTMODSEQ, SELECT
// (CONDSTORE), UID FETCH MODSEQ with CHANGEDSINCE.
func TestCondstoreGoIMAP(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{})
	id1 := s.Add(gmailtest.NewMessage{Body: body("a", 100), Labels: []string{"Work", gmailtest.LabelInbox}})
	id2 := s.Add(gmailtest.NewMessage{Body: body("b", 100), Labels: []string{"Work"}})
	c := login(t, s)
	stOpt := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: stOpt}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	hms := map[string]uint64{}
	for _, l := range list {
		if l.Status != nil {
			hms[l.Mailbox] = l.Status.HighestModSeq
			if l.Status.HighestModSeq == 0 || l.Status.NumMessages == nil {
				t.Errorf("LIST-STATUS %s: %+v", l.Mailbox, l.Status)
			}
		}
	}
	if len(hms) != 9 {
		t.Errorf("LIST-STATUS answered for %d folders: %v", len(hms), hms)
	}
	status := func(folder string) uint64 {
		t.Helper()
		d, err := c.Status(folder, stOpt).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return d.HighestModSeq
	}
	if got := status("Work"); got != hms["Work"] {
		t.Errorf("STATUS Work HIGHESTMODSEQ %d, LIST-STATUS said %d", got, hms["Work"])
	}
	sel, err := c.Select("Work", &imap.SelectOptions{ReadOnly: true, CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.HighestModSeq != hms["Work"] {
		t.Errorf("SELECT (CONDSTORE) HIGHESTMODSEQ %d, want %d", sel.HighestModSeq, hms["Work"])
	}
	changed := func(since uint64) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: since}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	if got := changed(sel.HighestModSeq); len(got) != 0 {
		t.Errorf("CHANGEDSINCE HIGHESTMODSEQ: %d messages", len(got))
	}

	// A label change on message 2 is a change in every folder showing it,
	// and in no other.
	if err := s.AddLabels(id2, "Later"); err != nil {
		t.Fatal(err)
	}
	if got := status("Work"); got <= hms["Work"] {
		t.Errorf("Work HIGHESTMODSEQ %d after a label change, was %d", got, hms["Work"])
	}
	if got := status("INBOX"); got != hms["INBOX"] {
		t.Errorf("INBOX HIGHESTMODSEQ %d after a change to a message it does not show, was %d", got, hms["INBOX"])
	}
	got := changed(sel.HighestModSeq)
	if len(got) != 1 || got[0].UID != 2 || got[0].ModSeq <= sel.HighestModSeq {
		t.Errorf("CHANGEDSINCE after the change: %+v", got)
	}
	// A message leaving a folder changes the folder.
	before := status("INBOX")
	if err := s.RemoveLabels(id1, gmailtest.LabelInbox); err != nil {
		t.Fatal(err)
	}
	if got := status("INBOX"); got <= before {
		t.Errorf("INBOX HIGHESTMODSEQ %d after its message left, was %d", got, before)
	}
}

// TestOAuth2 logs in with mailkeep's own OAuth2 path (go-imap and raw),
// both mechanisms; a wrong token is refused and counts no connection.
func TestOAuth2(t *testing.T) {
	s := gmailtest.Start(t, user, pass, gmailtest.Options{AccessToken: "ya29.good", MaxConns: 2})
	cfg := func(mech, tok string) imapconn.Config {
		return imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSNone, User: user, Timeout: 10 * time.Second,
			OAuth2: &oauth.Bearer{Account: "gmail", Mechanism: mech, Token: func(context.Context) (string, error) { return tok, nil }}}
	}
	ctx := context.Background()
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		var re *oauth.RefusedError
		if _, err := imapconn.DialRaw(ctx, cfg(mech, "ya29.bad")); !errors.As(err, &re) {
			t.Errorf("%s: wrong token: %v, want a RefusedError", mech, err)
		}
		if _, err := imapconn.Dial(ctx, cfg(mech, "ya29.bad")); !errors.As(err, &re) {
			t.Errorf("%s (go-imap): wrong token: %v, want a RefusedError", mech, err)
		}
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("%d connections after refused logins", n)
	}
	r, err := imapconn.DialRaw(ctx, cfg("xoauth2", "ya29.good"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := imapconn.Dial(ctx, cfg("oauthbearer", "ya29.good"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(gmailtest.AllMail, nil).Wait(); err != nil {
		t.Error(err)
	}
	// The cap holds for OAuth2 logins too.
	_, err = imapconn.DialRaw(ctx, cfg("xoauth2", "ya29.good"))
	if err == nil || !strings.Contains(err.Error(), "Too many simultaneous connections") {
		t.Errorf("third login over a cap of 2: %v", err)
	}
}

// statusLine is a tagged NO or BAD as the server sent it ("BAD [CODE]
// text"): imapconn's raw connection returns it as an *imap.Error.
func statusLine(err error) string {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return err.Error()
	}
	s := string(ie.Type)
	if ie.Code != "" {
		s += " [" + string(ie.Code) + "]"
	}
	return s + " " + ie.Text
}
