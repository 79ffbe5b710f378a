package archive

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive/mboxfile"
)

// A compression level may change from run to run: frames are independent,
// so an archive written at one level appends at another and reads back
// whole. The uncompressed formats refuse a level.
func TestCompressionLevelChangesBetweenRuns(t *testing.T) {
	for _, format := range []Format{MboxZstd, MboxGzip} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			uid := uint32(0)
			var want []string
			for _, level := range []int{0, -1, 19, 3, 0} {
				if format == MboxGzip && level == 19 {
					level = 9
				}
				a, err := Open(dir, Options{Format: format, CompressionLevel: level, FrameSize: 1 << 10})
				if err != nil {
					t.Fatal(err)
				}
				run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
				f, err := a.Folder(t.Context(), "INBOX", '/', "")
				if err != nil {
					t.Fatal(err)
				}
				w, err := a.NewWriter(t.Context(), f, run)
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					uid++
					body := fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", uid, strings.Repeat(fmt.Sprintf("level %d line\r\n", level), 200))
					want = append(want, body)
					if _, err := w.Add(&Incoming{UIDValidity: 1, UID: uid, InternalDate: time.Now()}, strings.NewReader(body)); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				w.Close()
				if err := a.Cat.EndRun(t.Context(), runOK(run)); err != nil {
					t.Fatal(err)
				}
				a.Close()
			}
			a, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			f, err := a.Folder(t.Context(), "INBOX", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			checkBodies(t, a, f, want)
		})
	}
	for _, format := range []Format{Mbox, Maildir} {
		_, err := Open(t.TempDir(), Options{Format: format, CompressionLevel: 3})
		if !errors.Is(err, mboxfile.ErrLevel) {
			t.Errorf("%s with level 3: %v, want ErrLevel", format, err)
		}
	}
	if _, err := Open(t.TempDir(), Options{CompressionLevel: 23}); !errors.Is(err, mboxfile.ErrLevel) {
		t.Errorf("mbox.zst level 23: %v, want ErrLevel", err)
	}
}
