package export_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/archivetest"
)

// TestDiskFull exports into a 1 MB tmpfs an archive four times that size:
// the export stops with an error that names the folder (and, when a
// message's write failed, its UID) and ENOSPC, leaves no temporary file,
// and everything it did write reads back as complete original messages.
func TestDiskFull(t *testing.T) {
	var msgs []src
	for i := 0; i < 40; i++ {
		body := fmt.Sprintf("Subject: %d\r\nMessage-ID: <%d@full>\r\n\r\n%s", i, i, strings.Repeat(fmt.Sprintf("line of message %d, not very compressible %x\r\n", i, i*7919), 2500))
		msgs = append(msgs, src{folder: []string{"A", "B", "C", "D"}[i/10], uid: uint32(i%10 + 1), body: []byte(body), flags: []string{`\Seen`}, date: time.Date(2024, 1, 1, 0, i, 0, 0, time.UTC)})
	}
	dir := build(t, archive.MboxZstd, msgs)
	originals := map[string]bool{}
	for _, m := range msgs {
		originals[sha(m.body)] = true
	}
	for _, f := range []export.Format{export.Mbox, export.Maildir, export.EML} {
		t.Run(string(f), func(t *testing.T) {
			to := filepath.Join(archivetest.SmallDisk(t, "1m"), "out")
			st, err := runExport(t, dir, to, export.Options{Format: f, Account: "alice"})
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("export into a full disk: %v (stats %+v)", err, st)
			}
			t.Logf("%s: %v (%d messages written)", f, err, st.Messages)
			if !strings.Contains(err.Error(), "account alice: folder ") {
				t.Errorf("error does not name account and folder: %v", err)
			}
			var me *archive.MessageError
			if errors.As(err, &me) && (me.UID == 0 || me.Folder == "") {
				t.Errorf("message error without folder or uid: %+v", me)
			}
			if st.Messages >= len(msgs) || st.Skipped != 0 {
				t.Errorf("stats %+v: a full disk must stop the export, not skip messages", st)
			}
			noTempFiles(t, to)
			if st.Messages%10 != 0 {
				t.Errorf("stats count %d messages: want those of whole folders only", st.Messages)
			}
			for _, g := range pyReadExport(t, f, to) {
				body := g.SHA
				if f == export.Mbox {
					continue // mbox files are renamed into place only when complete: checked below
				}
				if !originals[body] {
					t.Errorf("%s %s: not one of the original messages (a torn write?)", g.Path, g.Name)
				}
			}
			if f == export.Mbox {
				// Only whole folders: every mbox file holds its 10 messages.
				n := map[string]int{}
				for _, g := range pyReadExport(t, f, to) {
					n[g.Path]++
				}
				for p, c := range n {
					if c != 10 {
						t.Errorf("%s holds %d messages, want a whole folder (10)", p, c)
					}
				}
			}
		})
	}
}
