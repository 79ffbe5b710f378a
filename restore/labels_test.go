package restore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imaptap"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// gmailMsg is one message of a test Gmail archive.
type gmailMsg struct {
	folder string
	labels []string
	flags  []string
	body   []byte
}

const (
	allMail = archivetest.GmailAll
	spam    = archivetest.GmailSpam
	trash   = archivetest.GmailTrash
)

// gmailCorpus is a Gmail account as the Gmail backup stores it: All Mail,
// Spam and Trash, each message once with its labels.
func gmailCorpus(extra ...gmailMsg) []gmailMsg {
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("Message-ID: <g%d@labels>\r\nSubject: label test %d\r\nFrom: a@example.org\r\n\r\nbody %d %s\r\n", i, i, i, strings.Repeat("x", i*37)))
	}
	ms := []gmailMsg{
		{allMail, []string{`\Inbox`, "Work", "Famille/Enfants é"}, []string{`\Seen`}, nil},
		{allMail, []string{`\Sent`, `\Important`, "Work"}, []string{`\Seen`}, nil},
		{allMail, []string{`\Starred`}, nil, nil},
		{allMail, []string{}, []string{`\Seen`, `$Forwarded`}, nil},
		{allMail, []string{`\Inbox`}, nil, nil},
		{spam, []string{}, nil, nil},
		{trash, []string{"Work"}, []string{`\Seen`}, nil},
	}
	ms = append(ms, extra...)
	for i := range ms {
		if ms[i].body == nil {
			ms[i].body = body(i)
		}
	}
	return ms
}

// gmailArchive writes msgs into a new archive, with their labels, as the
// Gmail backup records them (catalog.SetGmail).
func gmailArchive(t *testing.T, msgs []gmailMsg, format archive.Format) string {
	t.Helper()
	dir := t.TempDir()
	ms := make([]archivetest.GmailMessage, len(msgs))
	for i, m := range msgs {
		ms[i] = archivetest.GmailMessage{Folder: m.folder, Flags: m.flags, Date: time.Date(2014, 3, 1, 10, i, 0, 0, time.UTC), Labels: m.labels, Body: m.body}
	}
	archivetest.GmailArchive(t, dir, archive.Options{Format: format}, 1, ms)
	return dir
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gmailByBody returns the double's messages by their bytes' SHA-256,
// failing on a message stored twice.
func gmailByBody(t *testing.T, g *gmailtest.Server) map[string]gmailtest.Message {
	t.Helper()
	out := map[string]gmailtest.Message{}
	for _, m := range g.Messages() {
		k := sum(m.Body)
		if _, dup := out[k]; dup {
			t.Errorf("message stored twice on Gmail: %.60q", m.Body)
		}
		out[k] = m
	}
	return out
}

// checkOnGmail checks that every message of msgs is on the double once,
// with its labels (\Starred as the \Flagged flag) and in the folders of
// its labels; except the labels in refused.
func checkOnGmail(t *testing.T, g *gmailtest.Server, msgs []gmailMsg, refused ...string) {
	t.Helper()
	got := gmailByBody(t, g)
	if len(got) != len(msgs) {
		t.Errorf("Gmail holds %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		gm, ok := got[sum(m.body)]
		if !ok {
			t.Errorf("message %d not on Gmail", i)
			continue
		}
		want := []string{}
		for _, l := range m.labels {
			if !slices.Contains(refused, l) {
				want = append(want, l)
			}
		}
		switch m.folder {
		case spam:
			want = append(want, gmailtest.LabelSpam)
		case trash:
			want = append(want, gmailtest.LabelTrash)
		}
		sort.Strings(want)
		if !slices.Equal(gm.Labels, want) {
			t.Errorf("message %d: labels %q, want %q", i, gm.Labels, want)
		}
		if hasStar := slices.Contains(m.labels, `\Starred`); hasStar != slices.Contains(gm.Flags, `\Flagged`) {
			t.Errorf("message %d: flags %q (starred: %v)", i, gm.Flags, hasStar)
		}
		if slices.Contains(m.flags, `\Seen`) != slices.Contains(gm.Flags, `\Seen`) {
			t.Errorf("message %d: flags %q, want %q", i, gm.Flags, m.flags)
		}
		if m.folder != allMail {
			continue
		}
		for _, l := range m.labels {
			folder := map[string]string{`\Inbox`: "INBOX", `\Sent`: gmailtest.SentMail, `\Important`: gmailtest.Important, `\Starred`: gmailtest.Starred}[l]
			if folder == "" {
				folder = l
			}
			if !slices.Contains(refused, l) && !slices.Contains(gm.Folders, folder) {
				t.Errorf("message %d: in folders %q, not in %q", i, gm.Folders, folder)
			}
		}
	}
}

func gmailOpts() restoreOpts {
	return restoreOpts{Options: restore.Options{Connections: 2}}
}

// TestGmailOntoGmail: a Gmail archive restored onto Gmail (the double)
// has each message once, with its labels: a message with three labels is
// listed under the three, stored once. A rerun appends and labels
// nothing.
func TestGmailOntoGmail(t *testing.T) {
	msgs := gmailCorpus()
	for _, format := range []archive.Format{archive.MboxZstd, archive.Maildir} {
		t.Run(fmt.Sprint(format), func(t *testing.T) {
			dir := gmailArchive(t, msgs, format)
			g := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
			st, err := doRestore(t, dir, g.Addr, "dst", gmailOpts())
			noErr(t, "restore", st, err)
			if st.Appended != len(msgs) || len(st.LabelsRefused) != 0 {
				t.Fatalf("stats: %+v", st)
			}
			// \Inbox, Work, Famille/Enfants é; \Sent, \Important, Work; \Inbox; Work (in Trash).
			if st.LabelsStored != 8 {
				t.Errorf("labels stored: %d, want 8", st.LabelsStored)
			}
			checkOnGmail(t, g, msgs)
			three := gmailByBody(t, g)[sum(msgs[0].body)]
			for _, f := range []string{"INBOX", "Work", "Famille/Enfants é", allMail} {
				entries, _, ok := g.Folder(f)
				n := 0
				for _, e := range entries {
					if e.MsgID == three.MsgID {
						n++
					}
				}
				if !ok || n != 1 {
					t.Errorf("folder %q lists the three-label message %d times", f, n)
				}
			}
			st, err = doRestore(t, dir, g.Addr, "dst", gmailOpts())
			noErr(t, "rerun", st, err)
			if st.Appended != 0 || st.LabelsStored != 0 || st.Skipped != len(msgs) {
				t.Fatalf("rerun: %+v", st)
			}
			checkOnGmail(t, g, msgs)
			// A dry run onto an empty Gmail account says what it would
			// label, and changes nothing.
			empty := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
			var out strings.Builder
			o := gmailOpts()
			o.DryRun, o.DryRunOutput = true, &out
			st, err = doRestore(t, dir, empty.Addr, "dst", o)
			noErr(t, "dry run", st, err)
			if len(empty.Messages()) != 0 || !strings.Contains(out.String(), `would add Gmail labels ["\\Inbox" "Work" "Famille/Enfants é"] in "[Gmail]/All Mail" to UID 1`) {
				t.Errorf("dry run: %d messages on Gmail; said:\n%s", len(empty.Messages()), out.String())
			}
		})
	}
}

// TestGmailKilledRestore: restores onto Gmail cancelled after a few
// APPENDs each (their connections cut, APPENDs in flight), then one let
// finish: every message once, with every label; a rerun does nothing.
func TestGmailKilledRestore(t *testing.T) {
	var extra []gmailMsg
	for i := 0; i < 30; i++ {
		extra = append(extra, gmailMsg{allMail, []string{fmt.Sprintf("L%d", i%4), `\Inbox`}, nil, nil})
	}
	msgs := gmailCorpus(extra...)
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	g := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
	for _, kill := range []int{1, 4, 9, 2} {
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		n := 0
		o := gmailOpts()
		o.ctx = ctx
		o.Progress = func(restore.Event) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == kill {
				cancel()
			}
		}
		st, err := doRestore(t, dir, g.Addr, "dst", o)
		cancel()
		t.Logf("killed after %d APPENDs: %v, %d appended, %d labels", kill, err, st.Appended, st.LabelsStored)
	}
	st, err := doRestore(t, dir, g.Addr, "dst", gmailOpts())
	noErr(t, "last run", st, err)
	checkOnGmail(t, g, msgs)
	st, err = doRestore(t, dir, g.Addr, "dst", gmailOpts())
	noErr(t, "rerun", st, err)
	if st.Appended != 0 || st.LabelsStored != 0 {
		t.Fatalf("rerun: %+v", st)
	}
}

// refuseLabel is a proxy in front of the Gmail double that refuses every
// UID STORE +X-GM-LABELS naming label (quoted), as Gmail refuses a label
// it does not take: "NO [CANNOT] Invalid label (Failure)".
func refuseLabel(t *testing.T, upstream, label string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tl := &imaptap.Listener{Listener: ln, New: func(*imaptap.Conn) imaptap.Hooks { return &refuser{label: `"` + label + `"`} }}
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

type refuser struct {
	label string
	mu    sync.Mutex
	tags  map[string]bool
}

func (r *refuser) Command(line []byte) []byte {
	tag, name, args := imaptap.Command(line)
	if name == "UID STORE" && strings.Contains(strings.ToUpper(args), "X-GM-LABELS") && strings.Contains(args, r.label) {
		r.mu.Lock()
		if r.tags == nil {
			r.tags = map[string]bool{}
		}
		r.tags[tag] = true
		r.mu.Unlock()
		return []byte(tag + ` STATUS "[Refused]/none" (MESSAGES)` + "\r\n")
	}
	return line
}

func (r *refuser) Response(line []byte) []byte {
	tag, _, _, ok := imaptap.Tagged(line)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok && r.tags[tag] {
		delete(r.tags, tag)
		return []byte(tag + " NO [CANNOT] Invalid label (Failure)\r\n")
	}
	return line
}

// TestGmailLabelRefused: a label Gmail refuses is reported, named by
// folder, message, UID and label; the message's other labels are stored
// and the restore goes on.
func TestGmailLabelRefused(t *testing.T) {
	msgs := gmailCorpus(gmailMsg{allMail, []string{"Bad label", "Work", `\Inbox`}, nil, nil})
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	g := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
	addr := refuseLabel(t, g.Addr, "Bad label")
	st, err := doRestore(t, dir, addr, "dst", gmailOpts())
	noErr(t, "restore", st, err)
	if len(st.LabelsRefused) != 1 {
		t.Fatalf("refused: %+v", st.LabelsRefused)
	}
	lr := st.LabelsRefused[0]
	if lr.Label != "Bad label" || lr.Folder != allMail || lr.UID == 0 || !strings.HasPrefix(lr.Message, "UID ") || !strings.Contains(lr.Text, "Invalid label") {
		t.Errorf("refusal: %+v", lr)
	}
	t.Log(lr)
	checkOnGmail(t, g, msgs, "Bad label")
}

// destBySource maps a restore's destination snapshot back to source folder
// names (Stats.Reports) as SHA-256 multisets, with each message's flags.
func destBySource(t *testing.T, st restore.Stats, snap map[string][]imaptest.Msg) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range st.Reports {
		for _, m := range snap[r.Dest] {
			out[r.Folder] = append(out[r.Folder], strings.TrimSpace(m.SHA256+" "+strings.Join(m.Flags, " ")))
		}
		sort.Strings(out[r.Folder])
	}
	return out
}

func entry(m gmailMsg, extra ...string) string {
	flags := append([]string(nil), m.flags...)
	flags = append(flags, extra...)
	sort.Strings(flags)
	return strings.TrimSpace(sum(m.body) + " " + strings.Join(flags, " "))
}

// TestGmailOntoDovecot: a Gmail archive restored onto Dovecot, with
// --labels folders (a copy in a folder per label, byte for byte; \Starred
// as \Flagged; All Mail keeps the messages without a user label) and with
// --labels keywords (each message once, its labels as keywords).
func TestGmailOntoDovecot(t *testing.T) {
	msgs := gmailCorpus()
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "folders", "keywords")

	t.Run("folders", func(t *testing.T) {
		st, err := doRestore(t, dir, dv.IMAPAddr, "folders", restoreOpts{})
		noErr(t, "restore", st, err)
		want := map[string][]string{}
		add := func(folder string, m gmailMsg, extra ...string) {
			want[folder] = append(want[folder], entry(m, extra...))
		}
		for _, m := range msgs {
			var star []string
			if slices.Contains(m.labels, `\Starred`) {
				star = []string{`\Flagged`}
			}
			if m.folder != allMail {
				add(m.folder, m)
				continue
			}
			user := false
			for _, l := range m.labels {
				switch l {
				case `\Inbox`:
					add("INBOX", m, star...)
				case `\Sent`:
					add("[Gmail]/Sent Mail", m, star...)
				case `\Starred`, `\Important`:
				default:
					user = true
					add(l, m, star...)
				}
			}
			if !user {
				add(allMail, m, star...)
			}
		}
		for k := range want {
			sort.Strings(want[k])
		}
		got := destBySource(t, st, imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "folders", pass), false))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("destination by source folder:\n got %v\nwant %v", got, want)
		}
		for _, r := range st.Reports {
			t.Logf("%q -> %q: %d", r.Folder, r.Dest, r.Appended)
		}
		st, err = doRestore(t, dir, dv.IMAPAddr, "folders", restoreOpts{})
		noErr(t, "rerun", st, err)
		if st.Appended != 0 {
			t.Fatalf("rerun: %+v", st)
		}
	})

	t.Run("keywords", func(t *testing.T) {
		o := restoreOpts{}
		o.Labels = restore.LabelsKeywords
		st, err := doRestore(t, dir, dv.IMAPAddr, "keywords", o)
		noErr(t, "restore", st, err)
		if st.Appended != len(msgs) {
			t.Fatalf("stats: %+v", st)
		}
		want := map[string][]string{}
		for _, m := range msgs {
			var extra []string
			for _, l := range m.labels {
				extra = append(extra, restore.LabelKeyword(l))
				if l == `\Starred` {
					extra = append(extra, `\Flagged`)
				}
			}
			want[m.folder] = append(want[m.folder], entry(m, extra...))
		}
		for k := range want {
			sort.Strings(want[k])
		}
		got := destBySource(t, st, imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "keywords", pass), false))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("destination by source folder:\n got %v\nwant %v", got, want)
		}
		for _, kw := range []string{`$label-+5CInbox`, "$label-Famille/Enfants+20+C3+A9"} {
			if !strings.Contains(fmt.Sprint(got), kw) {
				t.Errorf("keyword %s not on the destination", kw)
			}
		}
	})
}

// TestLabelKeyword: every label maps to a valid atom and back.
func TestLabelKeyword(t *testing.T) {
	for _, tc := range []struct{ label, kw string }{
		{"Work/2014", "$label-Work/2014"},
		{"Reçus 2014", "$label-Re+C3+A7us+202014"},
		{`\Inbox`, "$label-+5CInbox"},
		{"a+b (c) [d]", "$label-a+2Bb+20+28c+29+20[d+5D"},
	} {
		if got := restore.LabelKeyword(tc.label); got != tc.kw {
			t.Errorf("LabelKeyword(%q) = %q, want %q", tc.label, got, tc.kw)
		}
		if back, ok := restore.ParseLabelKeyword(strings.ToLower(tc.kw[:7]) + tc.kw[7:]); !ok || back != tc.label {
			t.Errorf("ParseLabelKeyword(%q) = %q %v", tc.kw, back, ok)
		}
	}
	for _, bad := range []string{"$Label", "$label-", "$label-+4", "$label-+ZZ", "Work"} {
		if l, ok := restore.ParseLabelKeyword(bad); ok {
			t.Errorf("ParseLabelKeyword(%q) = %q", bad, l)
		}
	}
}

// TestLabelFoldersChecked: label folders go through the checks of every
// restored folder: the destination's namespace and delimiter, collisions
// (refused, or renamed), names the destination cannot represent; and a
// rerun finds the copies on the destination.
func TestLabelFoldersChecked(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.CyrusLike())
	addUsers(t, dv, "refused", "renamed")
	src := newSource()
	date := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	src.folder(allMail, '/', `\All`)
	src.folder("Work", '/', "")
	labelled := src.add(allMail, []byte("Message-ID: <l@coll>\r\nSubject: labelled\r\n\r\nx\r\n"), []string{`\Seen`}, date)
	labelled.Labels = []string{"Work", "v1.2", "Deep/Er"}
	src.add(allMail, []byte("Message-ID: <n@coll>\r\nSubject: none\r\n\r\ny\r\n"), nil, date).Labels = []string{}
	src.add("Work", []byte("Message-ID: <w@coll>\r\nSubject: real\r\n\r\nz\r\n"), nil, date)

	tg := target{dv.IMAPAddr, "refused", true}
	_, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
	if !errors.Is(err, restore.ErrCollision) || !strings.Contains(err.Error(), `folders "Work" and "Work" would all be restored into "INBOX.Work"`) {
		t.Fatalf("restore: %v; want the label Work's collision with the folder Work", err)
	}

	tg = target{dv.IMAPAddr, "renamed", true}
	prog := newProgress()
	st, err := tg.run(context.Background(), src, prog, restore.Options{RenameCollisions: true})
	if err != nil || len(st.Failures) != 1 || !errors.Is(st.Failures[0], restore.ErrUnrepresentable) || !strings.Contains(st.Failures[0].Error(), `"v1.2"`) {
		t.Fatalf("restore: %v %v; want one failure, the label v1.2 (the delimiter is '.')", err, st.Failures)
	}
	snap := tg.snapshot(t)
	for folder, subject := range map[string]string{"INBOX.Work": "real", "INBOX.Work (2)": "labelled", "INBOX.Deep.Er": "labelled", "INBOX.[Gmail].All Mail": "none"} {
		var body []byte
		for _, ms := range src.msgs {
			for _, m := range ms {
				if b := src.bodies[m.Key]; strings.Contains(string(b), "Subject: "+subject+"\r\n") {
					body = b
				}
			}
		}
		if len(snap[folder]) != 1 || snap[folder][0].SHA256 != sum(body) {
			t.Errorf("%s holds %v, want the message %q", folder, snap[folder], subject)
		}
	}
	st, err = tg.run(context.Background(), src, prog, restore.Options{RenameCollisions: true})
	if err != nil || st.Appended != 0 || st.Skipped != 4 {
		t.Fatalf("rerun: %+v %v", st, err)
	}
}

// TestGmailKilledProcess kills restores onto Gmail (SIGKILL, as kill -9:
// no goodbye, APPENDs and label STOREs cut anywhere) after 0 to 39
// APPENDs, until one finishes: every message is on Gmail once with every
// label, and a rerun appends and labels nothing.
func TestGmailKilledProcess(t *testing.T) {
	var extra []gmailMsg
	for i := 0; i < 300; i++ {
		extra = append(extra, gmailMsg{allMail, []string{fmt.Sprintf("L%d", i%4), `\Inbox`, "Work"}[:1+i%3], nil, nil})
	}
	msgs := gmailCorpus(extra...)
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	g := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 13))
	finished, cut := false, 0
	for round := 0; round < 12 && !finished; round++ {
		kill := rng.IntN(40)
		if round == 11 {
			kill = -1
		}
		var n int
		n, finished = killedRestore(t, exe, dir+"|"+g.Addr+"|dst", kill, round)
		on := len(g.Messages())
		if !finished && on < len(msgs) {
			cut++
		}
		t.Logf("round %d: killed after %d of %d APPENDs (finished: %v), %d of %d messages on Gmail", round, n, kill, finished, on, len(msgs))
	}
	if cut == 0 {
		t.Error("no run was killed before its end")
	}
	checkOnGmail(t, g, msgs)
	st, err := doRestore(t, dir, g.Addr, "dst", gmailOpts())
	noErr(t, "rerun", st, err)
	if st.Appended != 0 || st.LabelsStored != 0 || st.Skipped != len(msgs) {
		t.Fatalf("rerun: %+v", st)
	}
}
