package restore_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
)

// TestGmailPrefixOntoGmail: a Gmail archive restored onto Gmail with a
// prefix. The user labels come under the prefix ("Old mail/Work"); the
// system labels stay; All Mail, Spam and Trash still go to Gmail's own
// (no label "Old mail/[Gmail]/All Mail" on every message, no deleted mail
// or spam shown under a label). A rerun appends and labels nothing.
func TestGmailPrefixOntoGmail(t *testing.T) {
	const prefix = "Old mail"
	msgs := gmailCorpus()
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	g := gmailtest.Start(t, "dst", pass, gmailtest.Options{})
	o := gmailOpts()
	o.Prefix = prefix
	st, err := doRestore(t, dir, g.Addr, "dst", o)
	noErr(t, "restore", st, err)
	if st.Appended != len(msgs) || len(st.LabelsRefused) != 0 || st.LabelsStored != 8 {
		t.Fatalf("stats: appended %d, labels stored %d, refused %v; want %d, 8, none", st.Appended, st.LabelsStored, st.LabelsRefused, len(msgs))
	}
	got := gmailByBody(t, g)
	for i, m := range msgs {
		gm, ok := got[sum(m.body)]
		if !ok {
			t.Errorf("message %d not on Gmail", i)
			continue
		}
		want := []string{}
		for _, l := range m.labels {
			if !strings.HasPrefix(l, `\`) {
				l = prefix + "/" + l
			}
			want = append(want, l)
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
		for _, f := range gm.Folders {
			if strings.Contains(f, "[Gmail]") && strings.HasPrefix(f, prefix) {
				t.Errorf("message %d is in %q: a Gmail system folder under the prefix", i, f)
			}
		}
		if m.folder == allMail && !slices.Contains(gm.Folders, gmailtest.AllMail) {
			t.Errorf("message %d: folders %q, not in All Mail", i, gm.Folders)
		}
	}
	for _, f := range []string{prefix + "/Work", prefix + "/Famille/Enfants é"} {
		if _, _, ok := g.Folder(f); !ok {
			t.Errorf("no label folder %q", f)
		}
	}
	for _, f := range []string{"Work", prefix + "/[Gmail]/All Mail", prefix + "/[Gmail]/Spam", prefix + "/[Gmail]/Trash"} {
		if _, _, ok := g.Folder(f); ok {
			t.Errorf("label folder %q made", f)
		}
	}
	st, err = doRestore(t, dir, g.Addr, "dst", o)
	noErr(t, "rerun", st, err)
	if st.Appended != 0 || st.LabelsStored != 0 || st.Skipped != len(msgs) {
		t.Fatalf("rerun: %+v", st)
	}
}
