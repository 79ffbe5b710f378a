package export_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestMaildirServedByDovecot puts a Maildir export where Dovecot keeps a
// user's mail (Maildir++ layout, folder names in UTF-8) and checks over
// IMAP that Dovecot sees every folder and message, with its flags,
// keywords (dovecot-keywords and the letters) and INTERNALDATE (from the
// mtime).
func TestMaildirServedByDovecot(t *testing.T) {
	dv := dovecottest.Start(t, &dovecottest.Options{ExtraConfig: "mail_location = maildir:~/Maildir:UTF-8"})
	dv.AddUser(t, "exp", "pw")
	var msgs []src
	for _, m := range corpusMessages() {
		if m.folder != "v1.2" && m.folder != "notes.eml" && m.folder != "box.mbox" { // Maildir++ cannot hold '.' in a name: see README
			msgs = append(msgs, m)
		}
	}
	dir := build(t, archive.MboxZstd, msgs)
	md := dv.Maildir("exp")
	st, err := os.Stat(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(md); err != nil {
		t.Fatal(err)
	}
	if _, err := runExport(t, dir, md, export.Options{Format: export.Maildir}); err != nil {
		t.Fatal(err)
	}
	// Dovecot may run as its own user: give it the tree.
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		filepath.Walk(md, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, int(s.Uid), int(s.Gid)) })
	}
	snap := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "exp", "pw"), false)
	system := []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}
	for _, folder := range []string{"INBOX", "INBOX/Child", "Work", `Work/Größe & "more"`} {
		var want []src
		for _, m := range msgs {
			if m.folder == folder {
				want = append(want, m)
			}
		}
		got := snap[folder]
		if len(got) != len(want) {
			t.Errorf("dovecot folder %q: %d messages, want %d (folders %v)", folder, len(got), len(want), keys(snap))
			continue
		}
		// Dovecot numbers the files in the order it finds them: match by bytes.
		for _, w := range want {
			wantSHA := sha(imaptest.WantBody(imaptest.Dovecot, w.body))
			i := slices.IndexFunc(got, func(g imaptest.Msg) bool { return g.SHA256 == wantSHA && g.InternalDate.Equal(w.date) })
			if i < 0 {
				t.Errorf("dovecot folder %q: uid %d (date %v) not served", folder, w.uid, w.date)
				continue
			}
			// System flags and keywords (through dovecot-keywords).
			var wf, gf []string
			for _, f := range w.flags {
				if !strings.HasPrefix(f, `\`) || slices.Contains(system, f) {
					wf = append(wf, f)
				}
			}
			for _, f := range got[i].Flags {
				if f != `\Recent` {
					gf = append(gf, f)
				}
			}
			slices.Sort(wf)
			slices.Sort(gf)
			if !slices.Equal(wf, gf) {
				t.Errorf("dovecot folder %q uid %d: flags %v, want %v", folder, w.uid, got[i].Flags, w.flags)
			}
		}
	}
}

func keys(m map[string][]imaptest.Msg) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
