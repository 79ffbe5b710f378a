package restore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// TestCollisions: source folders that would land in one destination folder
// (INBOX's children on a server whose namespace is INBOX's children; the
// case of INBOX) refuse the restore before anything is created or
// appended, naming every folder; with RenameCollisions the later ones get
// " (2)", " (3)", every message arrives once, and a rerun maps the same.
func TestCollisions(t *testing.T) {
	dv := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	addUsers(t, dv, "refused", "renamed")
	src := newSource()
	date := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range []string{"INBOX", "Child", "INBOX/Child", "inbox/Child", "INBOX/Sub", "Inbox/Sub", "Alone"} {
		src.folder(n, '/', "")
		src.add(n, []byte("Message-ID: <"+n+"@coll>\r\nSubject: "+n+"\r\n\r\nx\r\n"), []string{`\Seen`}, date)
	}
	tg := target{dv.IMAPAddr, "refused", true}
	before := tg.snapshot(t)
	st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
	var ce *restore.CollisionError
	if !errors.Is(err, restore.ErrCollision) || !errors.As(err, &ce) || len(ce.Collisions) != 2 {
		t.Fatalf("restore: %v; want ErrCollision with 2 collisions", err)
	}
	for _, w := range []string{`folders "Child" and "INBOX/Child" and "inbox/Child" would all be restored into "INBOX.Child"`, `folders "INBOX/Sub" and "Inbox/Sub" would all be restored into "INBOX.Sub"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %s", err, w)
		}
	}
	if st.Appended != 0 || st.Created != 0 {
		t.Errorf("refused restore: %+v", st)
	}
	if d := imaptest.Diff(before, tg.snapshot(t), nil); d != "" {
		t.Errorf("refused restore changed the destination:\n%s", d)
	}

	tg = target{dv.IMAPAddr, "renamed", true}
	opt := restore.Options{RenameCollisions: true}
	st, err = tg.run(context.Background(), src, newProgress(), opt)
	noErr(t, "restore with renames", st, err)
	want := map[string]string{"INBOX": "INBOX", "Child": "INBOX.Child", "INBOX/Child": "INBOX.Child (2)", "inbox/Child": "INBOX.Child (3)",
		"INBOX/Sub": "INBOX.Sub", "Inbox/Sub": "INBOX.Sub (2)", "Alone": "INBOX.Alone"}
	if d := imaptest.Diff(src.want(imaptest.Dovecot, nil), nonEmpty(tg.snapshot(t)), func(n string) string { return want[n] }); d != "" {
		t.Fatalf("restore with renames:\n%s", d)
	}
	if len(st.Renamed) != 3 || st.Renamed[0] != (restore.Renamed{Folder: "INBOX/Child", Dest: "INBOX.Child (2)", Instead: "INBOX.Child"}) {
		t.Errorf("renamed: %+v", st.Renamed)
	}
	st, err = tg.run(context.Background(), src, newProgress(), opt)
	noErr(t, "rerun with renames", st, err)
	if st.Appended != 0 || st.Skipped != src.total() {
		t.Errorf("rerun with renames: %+v", st)
	}
}
