package catalog

import (
	"path/filepath"
	"testing"
	"time"
)

// TestHasLabels: a catalog has labels once a message with one is stored.
func TestHasLabels(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run, _ := c.BeginRun(t.Context(), "backup", "x", time.Now())
	f, _ := c.EnsureFolder(t.Context(), "[Gmail]/All Mail", '/', `\All`, "f")
	none := msg(1, 1)
	none.GmailMsgID, none.Labels = 5, []string{}
	if err := c.Commit(t.Context(), f.ID, 0, 2, run, []*Message{msg(1, 2), none}); err != nil {
		t.Fatal(err)
	}
	if has, err := c.HasLabels(t.Context()); has || err != nil {
		t.Fatalf("without labels: %v %v", has, err)
	}
	l := msg(1, 3)
	l.GmailMsgID, l.Labels = 6, []string{"Work"}
	if err := c.Commit(t.Context(), f.ID, 0, 3, run, []*Message{l}); err != nil {
		t.Fatal(err)
	}
	if has, err := c.HasLabels(t.Context()); !has || err != nil {
		t.Fatalf("with a label: %v %v", has, err)
	}
}
