package catalog

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Gmail ids and labels round-trip through Commit and SetGmail, survive a
// reopen, and a message from elsewhere has none.
func TestGmailLabels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := c.BeginRun(t.Context(), "backup", "imaps://a@imap.gmail.com", time.Now())
	f, err := c.EnsureFolder(t.Context(), "[Gmail]/All Mail", '/', `\All`, "mbox/[Gmail]/All Mail.mbox.zst")
	if err != nil {
		t.Fatal(err)
	}
	g := msg(7, 1)
	g.GmailMsgID, g.GmailThrID, g.Labels = 1278455344230334865, 1278455344230334865, []string{`\Inbox`, `\Important`, "Reçus 2014", "a\nb"}
	plain := msg(7, 2)
	none := msg(7, 3)
	none.GmailMsgID, none.Labels = 9, []string{}
	if err := c.Commit(t.Context(), f.ID, 0, 3, run, []*Message{g, plain, none}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetGmail(t.Context(), []GmailMeta{{ID: none.ID, MsgID: 9, ThrID: 10, Labels: []string{"Later"}}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	all, err := c.All(t.Context(), f.ID)
	if err != nil || len(all) != 3 {
		t.Fatal(len(all), err)
	}
	if m := all[0]; m.GmailMsgID != 1278455344230334865 || !slices.Equal(m.Labels, []string{`\Inbox`, `\Important`, "Reçus 2014", "a b"}) {
		t.Errorf("gmail message: %d %q", m.GmailMsgID, m.Labels)
	}
	if m := all[1]; m.GmailMsgID != 0 || m.Labels != nil {
		t.Errorf("plain message: %d %q", m.GmailMsgID, m.Labels)
	}
	if m := all[2]; m.GmailThrID != 10 || !slices.Equal(m.Labels, []string{"Later"}) {
		t.Errorf("relabelled message: %d %q", m.GmailThrID, m.Labels)
	}
	fs, err := c.Folders(t.Context())
	if err != nil || len(fs) != 1 || fs[0].IsView() || fs[0].Label != "" {
		t.Fatalf("folders: %+v %v", fs, err)
	}
}
