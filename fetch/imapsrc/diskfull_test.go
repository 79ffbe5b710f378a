package imapsrc_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestDiskFull backs up into a small tmpfs: the run reports failures that
// name the folder and message, and what it committed stays readable and
// exact; with room again, the next run completes the archive.
func TestDiskFull(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := 0; i < 40; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat(fmt.Sprintf("incompressible? no, but big %d\r\n", i), 4000))
		imaptest.Append(t, c, []string{"INBOX", "Other"}[i%2], nil, time.Now(), []byte(body))
	}
	mnt := archivetest.SmallDisk(t, "3m")
	dir := filepath.Join(mnt, "a")
	s := server{name: "dovecot", addr: dv.IMAPAddr, delim: '/', condstore: true, dv: dv}

	a, err := archive.Open(dir, archive.Options{Format: archive.Mbox, CommitBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: account(s), Connections: 1})
	a.Close()
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Logf("run error: %v", err)
	}
	if len(st.Failures) == 0 && err == nil {
		t.Fatal("a full disk went unreported")
	}
	named := false
	for _, f := range st.Failures {
		if errors.Is(f, syscall.ENOSPC) && strings.Contains(f.Error(), `folder "`) && strings.Contains(f.Error(), "uid ") {
			named = true
		}
	}
	if !named {
		t.Errorf("no failure names the folder, the message and the full disk: %v", st.Failures)
	}
	// What was committed reads back exactly.
	ro, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := ro.Cat.Folders(t.Context())
	stored := 0
	for _, f := range fl {
		ms, _ := ro.Cat.All(t.Context(), f.ID)
		for _, m := range ms {
			if got := archivetest.ReadSHA(t, ro, m); got != m.SHA256 {
				t.Errorf("committed uid %d reads back wrong after the disk filled", m.UID)
			}
			stored++
		}
	}
	ro.Close()
	t.Logf("%d of 40 messages committed before the disk filled", stored)
	// Room again: the next run completes the archive, nothing twice.
	exec.Command("mount", "-o", "remount,size=64m", mnt).Run()
	a, err = archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, _ = a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	st, err = imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: account(s)})
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	a.Close()
	if err != nil || len(st.Failures) > 0 || st.Fetched != 40-stored {
		t.Fatalf("after freeing space: fetched %d (want %d), %v %v", st.Fetched, 40-stored, err, st.Failures)
	}
	archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)
}
