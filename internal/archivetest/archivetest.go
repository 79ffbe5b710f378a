// Package archivetest checks archives in tests: against what an IMAP server
// holds, and through readers that are not mailkeep's (Python's mailbox
// module, zstd and gzip tools).
package archivetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// Compare checks that an archive's live messages equal a server snapshot,
// folder by folder: exact bytes read back through the archive, flags and
// INTERNALDATE. Folders only in the archive are ignored.
func Compare(t testing.TB, snap map[string][]imaptest.Msg, dir string) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for folder, msgs := range snap {
		f, err := a.Cat.Folder(t.Context(), folder)
		if err != nil {
			t.Errorf("folder %q not archived: %v", folder, err)
			continue
		}
		live, err := a.Cat.Live(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != len(msgs) {
			t.Errorf("folder %q: archive has %d live messages, server %d", folder, len(live), len(msgs))
		}
		byUID := map[uint32]*catalog.Message{}
		for _, m := range live {
			if byUID[m.UID] != nil {
				t.Errorf("folder %q: uid %d archived twice", folder, m.UID)
			}
			byUID[m.UID] = m
		}
		for _, sm := range msgs {
			m := byUID[sm.UID]
			if m == nil {
				t.Errorf("folder %q: uid %d missing from archive", folder, sm.UID)
				continue
			}
			if got := ReadSHA(t, a, m); got != sm.SHA256 || m.SHA256 != sm.SHA256 {
				t.Errorf("folder %q uid %d: archive bytes %s, catalog %s, server %s", folder, sm.UID, got, m.SHA256, sm.SHA256)
			}
			if catalog.JoinFlags(m.Flags) != catalog.JoinFlags(sm.Flags) {
				t.Errorf("folder %q uid %d: flags %q, server %q", folder, sm.UID, m.Flags, sm.Flags)
			}
			if !m.InternalDate.Equal(sm.InternalDate) {
				t.Errorf("folder %q uid %d: date %v, server %v", folder, sm.UID, m.InternalDate, sm.InternalDate)
			}
		}
	}
}

// ReadSHA reads a message back through the archive and hashes it.
func ReadSHA(t testing.TB, a *archive.Archive, m *catalog.Message) string {
	t.Helper()
	r, err := a.Open(m)
	if err != nil {
		t.Fatalf("open uid %d: %v", m.UID, err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("read uid %d: %v", m.UID, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pyReader prints, for every message of every mbox file or Maildir folder
// given, the SHA-256 of its bytes as Python's mailbox module reads them
// (mboxrd quoting removed), and of those bytes minus one final newline.
const pyReader = `
import hashlib, json, mailbox, re, sys
out = []
for kind, path in zip(sys.argv[1::2], sys.argv[2::2]):
    box = mailbox.mbox(path, create=False) if kind == "mbox" else mailbox.Maildir(path, factory=None, create=False)
    for key in box.keys():
        b = box.get_bytes(key)
        if kind == "mbox":
            b = re.sub(rb"(?m)^>(>*From )", rb"\1", b)
        alt = b[:-1] if b.endswith(b"\n") else b
        out.append([hashlib.sha256(b).hexdigest(), hashlib.sha256(alt).hexdigest()])
json.dump(out, sys.stdout)
`

// Need fails (CI) or skips the test when a program is missing.
func Need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (run scripts/install-test-deps): %v", prog, err)
		}
		t.Skipf("%s is not installed; scripts/install-test-deps installs it (in CI this fails)", prog)
	}
	return p
}

// IndependentRead reads every message of the archive in dir with Python's
// mailbox module (after zstdcat/gzip -dc for compressed mbox) and checks that
// the multiset of their SHA-256 equals the catalog's (live and expunged).
func IndependentRead(t testing.TB, dir string) {
	t.Helper()
	py := Need(t, "python3")
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	folders, err := a.Cat.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	var want []string
	tmp := t.TempDir()
	for i, f := range folders {
		all, err := a.Cat.All(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range all {
			want = append(want, m.SHA256)
		}
		path := filepath.Join(dir, f.Path)
		switch a.Format {
		case archive.Maildir:
			args = append(args, "maildir", path)
		case archive.Mbox:
			args = append(args, "mbox", path)
		default:
			if _, err := os.Stat(path); os.IsNotExist(err) && len(all) == 0 {
				continue
			}
			tool := []string{Need(t, "zstd"), "-dc", path}
			if a.Format == archive.MboxGzip {
				tool = []string{Need(t, "gzip"), "-dc", path}
			}
			plain := filepath.Join(tmp, "f"+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)}))
			out, err := os.Create(plain)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool[0], tool[1:]...)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v %s", tool, err, stderr.String())
			}
			out.Close()
			args = append(args, "mbox", plain)
		}
	}
	cmd := exec.Command(py, append([]string{"-c", pyReader}, args...)...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python mailbox reader: %v", err)
	}
	var got [][2]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("python read %d messages, catalog has %d", len(got), len(want))
	}
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	var bad []string
	for _, g := range got {
		switch {
		case left[g[0]] > 0:
			left[g[0]]--
		case left[g[1]] > 0: // a message without a final newline gains one in mbox
			left[g[1]]--
		default:
			bad = append(bad, g[0])
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("python read %d messages whose bytes match nothing in the catalog: %v", len(bad), bad)
	}
}

// Messages lists a folder's catalogued messages, expunged ones included,
// in storage order (by position in the folder's file).
func Messages(t testing.TB, dir, folder string) []*catalog.Message {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := a.Cat.Folder(t.Context(), folder)
	if err != nil {
		t.Fatal(err)
	}
	all, err := a.Cat.All(t.Context(), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].FrameOffset != all[j].FrameOffset {
			return all[i].FrameOffset < all[j].FrameOffset
		}
		return all[i].FramePos < all[j].FramePos
	})
	return all
}

// SmallDisk mounts a tmpfs of the given size (e.g. "3m") on a temporary
// directory for a disk-full test and unmounts it at cleanup. Mounting
// needs root: without it the test is skipped, or failed when CI is set.
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the disk-full test mounts a tmpfs and needs root")
		}
		t.Skip("needs root to mount a small tmpfs (CI runs it)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// Gmail's three downloaded folders, as a Gmail-mode backup names them.
const (
	GmailAll   = "[Gmail]/All Mail"
	GmailSpam  = "[Gmail]/Spam"
	GmailTrash = "[Gmail]/Trash"
)

// GmailMessage is one message of a test Gmail archive.
type GmailMessage struct {
	Folder string // GmailAll, GmailSpam or GmailTrash
	UID    uint32 // 0: the next in its folder
	Flags  []string
	Date   time.Time
	Labels []string
	Body   []byte
}

// GmailArchive writes msgs into a new archive in dir (opt, archive.Open's)
// as a Gmail-mode backup records them: All Mail, Spam and Trash (with
// their special use) under UIDVALIDITY uidValidity, each message with its
// labels, X-GM-MSGID and X-GM-THRID (1000 + its index in msgs) in the
// catalog (catalog.SetGmail), in one run that ended "ok".
func GmailArchive(t testing.TB, dir string, opt archive.Options, uidValidity uint32, msgs []GmailMessage) {
	t.Helper()
	a, err := archive.Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	run, err := a.Cat.BeginRun(ctx, "backup", "imaps://u@imap.gmail.com", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	special := map[string]string{GmailAll: `\All`, GmailSpam: `\Junk`, GmailTrash: `\Trash`}
	for _, folder := range []string{GmailAll, GmailSpam, GmailTrash} {
		f, err := a.Folder(ctx, folder, '/', special[folder])
		if err != nil {
			t.Fatal(err)
		}
		w, err := a.NewWriter(ctx, f, run)
		if err != nil {
			t.Fatal(err)
		}
		var metas []catalog.GmailMeta
		var stored []*catalog.Message // their ids are set by the commit
		uid := uint32(0)
		for i, m := range msgs {
			if m.Folder != folder {
				continue
			}
			uid++
			if m.UID != 0 {
				uid = m.UID
			}
			cm, err := w.Add(&archive.Incoming{UIDValidity: uidValidity, UID: uid, Flags: m.Flags, InternalDate: m.Date}, bytes.NewReader(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, cm)
			metas = append(metas, catalog.GmailMeta{MsgID: uint64(1000 + i), ThrID: uint64(1000 + i), Labels: m.Labels})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for i := range metas {
			metas[i].ID = stored[i].ID
		}
		if err := a.Cat.SetGmail(ctx, metas); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Cat.EndRun(ctx, catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
}
