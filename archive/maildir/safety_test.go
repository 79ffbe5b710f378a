package maildir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// TestPlantedMaildir: a folder directory, its cur/ or tmp/, or a directory
// on the way replaced by a symlink (to a real Maildir outside the archive)
// is refused by OpenFolderIn naming it, and nothing is created outside.
// Inside cur/ and tmp/, planted symlinks and FIFOs are never followed:
// Deliver replaces a tmp/ entry and an old copy in cur/ without opening
// them, Open refuses them, and no call blocks.
func TestPlantedMaildir(t *testing.T) {
	for _, tc := range []struct{ name, link, rel string }{
		{"folder", "maildir/.Work", "maildir/.Work"},
		{"cur", "maildir/.Work/cur", "maildir/.Work"},
		{"tmp", "maildir/.Work/tmp", "maildir/.Work"},
		{"maildir root", "maildir", "maildir/.Work"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "archive"), filepath.Join(base, "outside")
			for _, s := range []string{"cur", "new", "tmp"} {
				os.MkdirAll(filepath.Join(outside, s), 0o700)
			}
			os.MkdirAll(filepath.Join(root, filepath.Dir(tc.link)), 0o700)
			if err := os.Symlink(outside, filepath.Join(root, tc.link)); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFolderIn(root, tc.rel, true)
			var ue *safefs.UnsafeError
			if !errors.As(err, &ue) || ue.Path != filepath.Join(root, tc.link) || ue.Kind != "symlink" {
				t.Fatalf("OpenFolderIn: %v, want a symlink error naming %s", err, tc.link)
			}
			for _, s := range []string{"cur", "new", "tmp"} {
				if ents, _ := os.ReadDir(filepath.Join(outside, s)); len(ents) != 0 {
					t.Errorf("files created outside: %s/%v", s, ents)
				}
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 3 {
				t.Errorf("files created outside: %v", ents)
			}
		})
	}

	t.Run("inside cur and tmp", func(t *testing.T) {
		base := t.TempDir()
		root := filepath.Join(base, "archive")
		victim := filepath.Join(base, "victim")
		want := []byte("outside the archive")
		os.WriteFile(victim, want, 0o644)
		os.Mkdir(root, 0o700)
		f, err := OpenFolderIn(root, "maildir/.Work", true)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dir := filepath.Join(root, "maildir/.Work")
		key := "1.M1U1.mailkeep"
		// tmp/<key> a FIFO, cur/<key>:2,S a symlink to the victim (an
		// "old copy"), cur/2…:2, a FIFO.
		if err := syscall.Mkfifo(filepath.Join(dir, "tmp", key), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Symlink(victim, filepath.Join(dir, "cur", key+":2,S"))
		syscall.Mkfifo(filepath.Join(dir, "cur", "2.M1U2.mailkeep:2,"), 0o600)
		done := make(chan struct{})
		go func() {
			defer close(done)
			name, _, err := f.Deliver(key, nil, time.Unix(1e9, 0), strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			if err != nil || name != "cur/"+key+":2," {
				t.Errorf("Deliver: %q %v", name, err)
			}
			for _, n := range []string{"cur/2.M1U2.mailkeep:2,", "cur/" + key + ":2,S"} {
				_, err := f.Open(n)
				var ue *safefs.UnsafeError
				if !errors.As(err, &ue) && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Open(%s): %v", n, err)
				}
			}
			if _, err := f.SetFlags("cur/2.M1U2.mailkeep:2,", []string{`\Seen`}); !errors.Is(err, safefs.ErrUnsafe) {
				t.Errorf("SetFlags of a FIFO: %v", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("blocked on a planted FIFO")
		}
		if b, _ := os.ReadFile(victim); !bytes.Equal(b, want) {
			t.Errorf("the victim changed: %q", b)
		}
		if st, _ := os.Lstat(filepath.Join(dir, "cur", key+":2,")); st == nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Errorf("delivered file: %v", st)
		}
	})
}
