package verify_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/verify"
)

// TestPlanted: an mbox file or Maildir folder replaced by a symlink to an
// identical copy outside the archive, or a FIFO in place of an mbox file
// or a message file, is reported as a problem naming the path (verify does
// not follow the link, so the copy does not make the folder look fine),
// and verify never blocks on the FIFO.
func TestPlanted(t *testing.T) {
	for _, format := range formats {
		for _, kind := range []string{"symlink", "FIFO"} {
			t.Run(string(format)+"/"+kind, func(t *testing.T) {
				dir := build(t, spec{format: format, folders: twoFolders, size: 1000})
				var planted string
				switch {
				case format != archive.Maildir:
					planted = "mbox/INBOX." + string(format)
				case kind == "symlink":
					planted = "maildir/.Work.Projects"
				default:
					ents, err := os.ReadDir(filepath.Join(dir, "maildir/.Work.Projects/cur"))
					if err != nil || len(ents) == 0 {
						t.Fatal(err)
					}
					planted = "maildir/.Work.Projects/cur/" + ents[0].Name()
				}
				p := filepath.Join(dir, planted)
				if kind == "symlink" {
					outside := filepath.Join(t.TempDir(), "copy")
					if out, err := exec.Command("cp", "-a", p, outside).CombinedOutput(); err != nil {
						t.Fatalf("cp: %v %s", err, out)
					}
					if err := os.RemoveAll(p); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink(outside, p); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
					if err := syscall.Mkfifo(p, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				done := make(chan *verify.Report, 1)
				go func() { done <- check(t, dir, verify.Options{}) }()
				var rep *verify.Report
				select {
				case rep = <-done:
				case <-time.After(20 * time.Second):
					t.Fatal("verify blocked on the planted file")
				}
				all := problems(rep)
				if !strings.Contains(all, planted) || !strings.Contains(all, kind) {
					t.Errorf("no problem names %s as a %s:\n%s", planted, kind, all)
				}
			})
		}
	}
}
