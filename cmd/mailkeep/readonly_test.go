package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/rodir"
)

// fillDovecot appends the corpus to INBOX and Work/Sub and returns the
// server's snapshot (with an IMAP URL for backups).
func fillDovecot(t *testing.T) (url string, snap map[string][]imaptest.Msg) {
	t.Helper()
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i, m := range imaptest.Corpus() {
		imaptest.Append(t, c, []string{"INBOX", "Work/Sub"}[i%2], []string{`\Seen`}, time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC), m.Body)
	}
	return "imap://" + user + "@" + dv.IMAPAddr, imaptest.Snapshot(t, c, false)
}

func treeNames(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
		return nil
	})
	return out
}

// TestReadOnlyMediaCLI: an archive made by a real backup, seen through a
// read-only bind mount (a snapshot, a write-protected backup disk), is
// read by ls, cat, verify and export with every message's exact bytes;
// backup there fails saying it cannot write, not that there is no
// catalog; nothing is created.
func TestReadOnlyMediaCLI(t *testing.T) {
	url, snap := fillDovecot(t)
	var all []string
	for _, msgs := range snap {
		for _, m := range msgs {
			all = append(all, m.SHA256)
		}
	}
	sort.Strings(all)
	for _, format := range []string{"mbox.zst", "maildir"} {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "arch")
			r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--quiet")
			if r.code != 0 {
				t.Fatalf("backup exit %d: %s", r.code, r.stderr)
			}
			ro := rodir.Bind(t, dir)
			before := treeNames(t, dir)

			r = mailkeep(t, nil, "ls", "--archive", ro)
			if r.code != 0 || !strings.Contains(r.stdout, "INBOX") || !strings.Contains(r.stdout, "Work/Sub") {
				t.Errorf("ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			r = mailkeep(t, nil, "ls", "--archive", ro, "--folder", "INBOX")
			if r.code != 0 || strings.Count(r.stdout, "\n") != 1+len(snap["INBOX"]) {
				t.Errorf("ls --folder INBOX: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, folder := range []string{"INBOX", "Work/Sub"} {
				for _, m := range snap[folder] {
					r = mailkeep(t, nil, "cat", "--archive", ro, folder, fmt.Sprint(m.UID))
					sum := sha256.Sum256([]byte(r.stdout))
					if r.code != 0 || hex.EncodeToString(sum[:]) != m.SHA256 {
						t.Errorf("cat %s %d: exit %d, sha %x, want %s (%s)", folder, m.UID, r.code, sum, m.SHA256, r.stderr)
					}
				}
			}
			r = mailkeep(t, nil, "verify", "--archive", ro)
			if r.code != 0 {
				t.Errorf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			to := filepath.Join(t.TempDir(), "eml")
			r = mailkeep(t, nil, "export", "--archive", ro, "--to", to, "--format", "eml", "--quiet")
			if r.code != 0 {
				t.Errorf("export: exit %d\n%s", r.code, r.stderr)
			}
			var got []string
			filepath.WalkDir(to, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".eml") {
					b, _ := os.ReadFile(p)
					sum := sha256.Sum256(b)
					got = append(got, hex.EncodeToString(sum[:]))
				}
				return nil
			})
			sort.Strings(got)
			if !slices.Equal(got, all) {
				t.Errorf("export wrote %d messages, the server has %d (or their bytes differ)", len(got), len(all))
			}

			// Restore reads the archive and records no progress: the
			// destination itself says what is there, so a second restore
			// appends nothing.
			dst := startDovecot(t)
			durl := "imap://" + user + "@" + dst.IMAPAddr
			for i, want := range []string{`"appended": ` + fmt.Sprint(len(all)), `"appended": 0`} {
				r = mailkeep(t, pwEnv(), "restore", "--archive", ro, "--imap", durl, "--tls", "none", "--no-special-use", "--json")
				if r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, `"progress_not_recorded": true`) {
					t.Errorf("restore %d from read-only media: exit %d, want %s\n%s%s", i+1, r.code, want, r.stdout, r.stderr)
				}
			}
			dc := imaptest.Dial(t, dst.IMAPAddr, user, pass)
			var restored []string
			for _, msgs := range imaptest.Snapshot(t, dc, false) {
				for _, m := range msgs {
					restored = append(restored, m.SHA256)
				}
			}
			sort.Strings(restored)
			if !slices.Equal(restored, all) {
				t.Errorf("restored %d messages from read-only media, want %d", len(restored), len(all))
			}

			r = mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", ro)
			if r.code != 1 || !strings.Contains(r.stderr, "cannot write here") || strings.Contains(r.stderr, "not a mailkeep catalog") {
				t.Errorf("backup on read-only media: exit %d, stderr %q; want 1 and \"cannot write here\"", r.code, r.stderr)
			}
			if after := treeNames(t, dir); !slices.Equal(before, after) {
				t.Errorf("files changed under the read-only view: %v -> %v", before, after)
			}
		})
	}
}

// TestModesUmask022CLI: with umask 022, a backup of each format leaves
// only 0600 files and 0700 directories in the archive.
func TestModesUmask022CLI(t *testing.T) {
	url, _ := fillDovecot(t)
	old := syscall.Umask(0o022) // inherited by the mailkeep processes
	defer syscall.Umask(old)
	for _, format := range []string{"mbox.zst", "mbox.gz", "mbox", "maildir"} {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "arch")
			r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--quiet")
			if r.code != 0 {
				t.Fatalf("backup exit %d: %s", r.code, r.stderr)
			}
			files := 0
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				st, _ := os.Lstat(p)
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = fs.ModeDir | 0o700
				} else {
					files++
				}
				if st.Mode() != want {
					t.Errorf("%s: %v, want %v", p, st.Mode(), want)
				}
				return nil
			})
			if files < 3 {
				t.Errorf("only %d files in the archive", files)
			}
		})
	}
}
