package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// e2eLabel is a user label with non-ASCII bytes and a '/' hierarchy.
const e2eLabel = "Reçus/2014 été"

// e2eMessages is the Gmail account the end-to-end tests back up: labels
// over several folders, starred, Inbox, Sent, Drafts, a nested non-ASCII
// user label, Spam and Trash, one message in no label at all.
var e2eMessages = []gmailtest.NewMessage{
	{Labels: []string{gmailtest.LabelInbox, "Work", e2eLabel, gmailtest.LabelStarred}, Flags: []imap.Flag{imap.FlagSeen}},
	{Labels: []string{gmailtest.LabelSent, "Work"}, Flags: []imap.Flag{imap.FlagSeen}},
	{Labels: []string{gmailtest.LabelDraft}},
	{Labels: []string{gmailtest.LabelInbox, gmailtest.LabelImportant}},
	{Labels: []string{gmailtest.LabelSpam}},
	{Labels: []string{gmailtest.LabelTrash}, Flags: []imap.Flag{imap.FlagSeen}},
	{Labels: nil, Flags: []imap.Flag{imap.FlagAnswered}},
	{Labels: []string{e2eLabel, gmailtest.LabelStarred}},
}

// e2eBody is message i's bytes.
func e2eBody(i int) []byte {
	return []byte(fmt.Sprintf("From: s%d@example.com\r\nTo: alice@example.com\r\nMessage-ID: <e2e%d@example.com>\r\nSubject: e2e %d quokka%d\r\n\r\nbody %d\r\n", i, i, i, i, i))
}

func sum256(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// gmailE2E starts the Gmail double with e2eMessages and backs it up in
// Gmail mode into a new archive.
func gmailE2E(t *testing.T) (*gmailtest.Server, string) {
	t.Helper()
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	for i, m := range e2eMessages {
		m.Body = e2eBody(i)
		m.Date = time.Date(2014, 5, 1, 10, i, 0, 0, time.UTC)
		g.Add(m)
	}
	dir := filepath.Join(t.TempDir(), "gm")
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+g.Addr, "--tls", "none", "--archive", dir, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf(`"fetched": %d`, len(e2eMessages))) {
		t.Fatalf("backup: %d %s %s", r.code, r.stdout, r.stderr)
	}
	return g, dir
}

// gmailState is what a Gmail account holds, by body SHA-256: labels,
// flags, INTERNALDATE, and how often the body is there.
type gmailState map[string]string

func gmailStateOf(g *gmailtest.Server) gmailState {
	out := gmailState{}
	for _, m := range g.Messages() {
		k := sum256(m.Body)
		fl := make([]string, 0, len(m.Flags))
		for _, f := range m.Flags {
			fl = append(fl, string(f))
		}
		sort.Strings(fl)
		if _, dup := out[k]; dup {
			out[k] += " DUPLICATE"
			continue
		}
		out[k] = fmt.Sprintf("labels %q flags %q date %s", m.Labels, fl, m.Date.UTC().Format(time.RFC3339))
	}
	return out
}

func restoreJSON(t *testing.T, args ...string) restoreSummary {
	t.Helper()
	r := mailkeep(t, pwEnv(), append([]string{"restore", "--tls", "none", "--json"}, args...)...)
	var sum restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 {
		t.Fatalf("restore %q: exit %d, %v\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
	}
	return sum
}

// TestGmailE2ERestoreGmail: a Gmail-mode backup restored onto another
// Gmail account gives it each message once with the source's labels,
// flags, INTERNALDATE and bytes; a rerun appends nothing and stores no
// label; ls, search label: and serve still show the label folders.
func TestGmailE2ERestoreGmail(t *testing.T) {
	g, dir := gmailE2E(t)
	dst := gmailtest.Start(t, user, pass, gmailtest.Options{})
	url := "imap://" + user + "@" + dst.Addr
	sum := restoreJSON(t, "--archive", dir, "--imap", url)
	if sum.Appended != len(e2eMessages) {
		t.Errorf("restore: %+v", sum)
	}
	want, got := gmailStateOf(g), gmailStateOf(dst)
	if d := diffStates(want, got); d != "" {
		t.Errorf("the restored Gmail account differs from the source:\n%s", d)
	}
	// A rerun appends nothing and adds no label.
	sum = restoreJSON(t, "--archive", dir, "--imap", url)
	if sum.Appended != 0 || sum.LabelsStored != 0 || sum.Skipped != len(e2eMessages) {
		t.Errorf("rerun: %+v", sum)
	}
	if d := diffStates(want, gmailStateOf(dst)); d != "" {
		t.Errorf("after the rerun:\n%s", d)
	}
	checkLabelFolders(t, g, dir)
}

func diffStates(want, got gmailState) string {
	var d []string
	for k, w := range want {
		if got[k] != w {
			d = append(d, fmt.Sprintf("%s…: want %s\n\tgot  %s", k[:8], w, got[k]))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s…: extra %s", k[:8], v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// checkLabelFolders: ls, search label: and serve show each label folder
// of the source with its messages.
func checkLabelFolders(t *testing.T, g *gmailtest.Server, dir string) {
	t.Helper()
	r := mailkeep(t, nil, "ls", "--archive", dir)
	for _, f := range []string{"INBOX", "Work", e2eLabel, gmailtest.SentMail, gmailtest.Drafts, gmailtest.Starred, gmailtest.AllMail, gmailtest.Spam, gmailtest.Trash} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("ls lacks %q:\n%s", f, r.stdout)
		}
	}
	if r := mailkeep(t, nil, "index", "--archive", dir); r.code != 0 {
		t.Fatalf("index: %d %s", r.code, r.stderr)
	}
	for q, n := range map[string]int{"label:work": 2, "label:\"" + e2eLabel + "\"": 2, "label:inbox": 2, "folder:\"" + e2eLabel + "\"": 2, "quokka5": 1, "quokka4": 1} {
		r := mailkeep(t, nil, "search", "--archive", dir, "--json", q)
		if got := strings.Count(r.stdout, `"uid"`); r.code > 1 || got != n {
			t.Errorf("search %q: %d hits, want %d (exit %d)\n%s%s", q, got, n, r.code, r.stdout, r.stderr)
		}
	}
	sc := imaptest.Dial(t, startServe(t, nil, "--archive", dir), user, "x")
	boxes, err := sc.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	for _, f := range []string{"INBOX", "Work", e2eLabel, gmailtest.SentMail, gmailtest.AllMail} {
		if !slices.Contains(names, f) {
			t.Errorf("serve lists %q, not %q", names, f)
		}
	}
	for _, f := range []string{"Work", e2eLabel, "INBOX"} {
		entries, _, _ := g.Folder(f)
		msgs := fetchAll(t, sc, f, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		var want, got []string
		for _, e := range entries {
			m, _ := g.Message(e.MsgID)
			want = append(want, sum256(m.Body))
		}
		for _, m := range msgs {
			got = append(got, sum256(m.BodySection[0].Bytes))
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("serve: %q holds %q, want %q", f, got, want)
		}
	}
}

// byBody maps a destination snapshot to body SHA-256 -> sorted folder
// names (one per copy) and the flags of each copy.
func byBody(snap map[string][]imaptest.Msg) (map[string][]string, map[string][]string) {
	where, flags := map[string][]string{}, map[string][]string{}
	for f, msgs := range snap {
		for _, m := range msgs {
			where[m.SHA256] = append(where[m.SHA256], f)
			flags[m.SHA256+" "+f] = m.Flags
		}
	}
	for k := range where {
		sort.Strings(where[k])
	}
	return where, flags
}

// TestGmailE2ERestoreDovecot: the Gmail-mode backup restored onto Dovecot
// with --labels folders (a copy per label) and --labels keywords (each
// message once, labels as keywords); reruns append nothing.
func TestGmailE2ERestoreDovecot(t *testing.T) {
	g, dir := gmailE2E(t)
	dv := startDovecot(t)
	dv.AddUser(t, "bob", pass)
	dv.AddUser(t, "carol", pass)
	body := func(i int) string { return sum256(e2eBody(i)) }

	sum := restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr)
	where, flags := byBody(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "bob", pass), false))
	wantWhere := map[int][]string{
		0: {"INBOX", "Work", e2eLabel},
		1: {gmailtest.SentMail, "Work"},
		2: {gmailtest.AllMail, gmailtest.Drafts},
		3: {gmailtest.AllMail, "INBOX"},
		4: {gmailtest.Spam},
		5: {gmailtest.Trash},
		6: {gmailtest.AllMail},
		7: {e2eLabel},
	}
	n := 0
	for i, w := range wantWhere {
		sort.Strings(w)
		n += len(w)
		if !slices.Equal(where[body(i)], w) {
			t.Errorf("--labels folders: message %d is in %q, want %q", i, where[body(i)], w)
		}
	}
	if sum.Appended != n {
		t.Errorf("--labels folders: appended %d, want %d: %+v", sum.Appended, n, sum)
	}
	for _, f := range []string{"INBOX", "Work", e2eLabel} {
		if !slices.Contains(flags[body(0)+" "+f], `\Flagged`) || !slices.Contains(flags[body(0)+" "+f], `\Seen`) {
			t.Errorf("message 0 in %q: flags %q", f, flags[body(0)+" "+f])
		}
	}
	if fl := flags[body(2)+" "+gmailtest.Drafts]; !slices.Contains(fl, `\Draft`) {
		t.Errorf("the draft: flags %q", fl)
	}
	if fl := flags[body(6)+" "+gmailtest.AllMail]; !slices.Equal(fl, []string{`\Answered`}) {
		t.Errorf("message 6: flags %q", fl)
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr); sum.Appended != 0 || sum.Skipped != n {
		t.Errorf("--labels folders rerun: %+v", sum)
	}

	sum = restoreJSON(t, "--archive", dir, "--imap", "imap://carol@"+dv.IMAPAddr, "--labels", "keywords")
	where, flags = byBody(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "carol", pass), false))
	if sum.Appended != len(e2eMessages) {
		t.Errorf("--labels keywords: %+v", sum)
	}
	for i, m := range e2eMessages {
		f := gmailtest.AllMail
		switch {
		case slices.Contains(m.Labels, gmailtest.LabelSpam):
			f = gmailtest.Spam
		case slices.Contains(m.Labels, gmailtest.LabelTrash):
			f = gmailtest.Trash
		}
		if !slices.Equal(where[body(i)], []string{f}) {
			t.Errorf("--labels keywords: message %d is in %q, want %q", i, where[body(i)], f)
			continue
		}
		fl := flags[body(i)+" "+f]
		for _, l := range m.Labels {
			if l == gmailtest.LabelSpam || l == gmailtest.LabelTrash {
				continue
			}
			if kw := "$label-" + strings.NewReplacer(`\`, "+5C", " ", "+20", "ç", "+C3+A7", "é", "+C3+A9").Replace(l); !slices.ContainsFunc(fl, func(f string) bool { return strings.EqualFold(f, kw) }) {
				t.Errorf("--labels keywords: message %d lacks %s: %q", i, kw, fl)
			}
		}
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", "imap://carol@"+dv.IMAPAddr, "--labels", "keywords"); sum.Appended != 0 || sum.Skipped != len(e2eMessages) {
		t.Errorf("--labels keywords rerun: %+v", sum)
	}
	checkLabelFolders(t, g, dir)
}

// TestGmailE2EExport: the Gmail-mode backup exported with labels as
// folders (Maildir) and as keywords (mbox).
func TestGmailE2EExport(t *testing.T) {
	_, dir := gmailE2E(t)
	to := filepath.Join(t.TempDir(), "eml")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "eml", "--quiet"); r.code != 0 {
		t.Fatalf("export --labels folders: %d %s", r.code, r.stderr)
	}
	got := emlFolders(t, to)
	want := map[int][]string{
		0: {"INBOX", "Work", e2eLabel},
		1: {gmailtest.SentMail, "Work"},
		2: {gmailtest.AllMail, gmailtest.Drafts},
		3: {gmailtest.AllMail, "INBOX"},
		4: {gmailtest.Spam},
		5: {gmailtest.Trash},
		6: {gmailtest.AllMail},
		7: {e2eLabel},
	}
	for i, w := range want {
		sort.Strings(w)
		sort.Strings(got[sum256(e2eBody(i))])
		if !slices.Equal(got[sum256(e2eBody(i))], w) {
			t.Errorf("export eml: message %d in %q, want %q", i, got[sum256(e2eBody(i))], w)
		}
	}

	to = filepath.Join(t.TempDir(), "mbox")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "mbox", "--labels", "keywords", "--quiet"); r.code != 0 {
		t.Fatalf("export --labels keywords: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(to, "[Gmail]", "All Mail.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\nSubject: e2e "); n != 6 {
		t.Errorf("All Mail.mbox holds %d messages, want 6", n)
	}
	for _, kw := range []string{"$label-+5CInbox", "$label-Work", "$label-Re+C3+A7us/2014+20+C3+A9t+C3+A9", "$label-+5CSent", "$label-+5CDraft"} {
		if !strings.Contains(string(b), kw) {
			t.Errorf("All Mail.mbox lacks %s", kw)
		}
	}
	for _, f := range []string{"Spam", "Trash"} {
		b, err := os.ReadFile(filepath.Join(to, "[Gmail]", f+".mbox"))
		if err != nil || strings.Count(string(b), "\nSubject: e2e ") != 1 {
			t.Errorf("%s.mbox: %v\n%s", f, err, b)
		}
	}
	if _, err := os.Stat(filepath.Join(to, "Work.mbox")); err == nil {
		t.Errorf("--labels keywords wrote a label folder")
	}
}

// TestGmailE2ESpecialUse: onto a Dovecot whose Sent, Drafts, Junk and
// Trash folders carry other names (special use), --labels folders puts
// \Sent and \Draft copies and Spam and Trash there; a rerun appends
// nothing.
func TestGmailE2ESpecialUse(t *testing.T) {
	_, dir := gmailE2E(t)
	dv := dovecottest.Start(t, &dovecottest.Options{ExtraConfig: `namespace inbox {
  mailbox "Sent Items" {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Entwürfe {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Deleted {
    special_use = \Trash
    auto = subscribe
  }
}
`})
	dv.AddUser(t, "bob", pass)
	sum := restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr)
	where, _ := byBody(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "bob", pass), false))
	want := map[int][]string{
		0: {"INBOX", "Work", e2eLabel},
		1: {"Sent Items", "Work"},
		2: {gmailtest.AllMail, "Entwürfe"},
		3: {gmailtest.AllMail, "INBOX"},
		4: {"Junk"},
		5: {"Deleted"},
		6: {gmailtest.AllMail},
		7: {e2eLabel},
	}
	n := 0
	for i, w := range want {
		sort.Strings(w)
		n += len(w)
		if got := where[sum256(e2eBody(i))]; !slices.Equal(got, w) {
			t.Errorf("message %d is in %q, want %q", i, got, w)
		}
	}
	if sum.Appended != n {
		t.Errorf("appended %d, want %d", sum.Appended, n)
	}
	if sum = restoreJSON(t, "--archive", dir, "--imap", "imap://bob@"+dv.IMAPAddr); sum.Appended != 0 || sum.Skipped != n {
		t.Errorf("rerun: %+v", sum)
	}
}

// emlFolders lists an eml export in to: the folders holding each message,
// by the SHA-256 of its bytes.
func emlFolders(t *testing.T, to string) map[string][]string {
	t.Helper()
	where := map[string][]string{}
	err := filepath.WalkDir(to, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(to, filepath.Dir(p))
		where[sum256(b)] = append(where[sum256(b)], filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return where
}
