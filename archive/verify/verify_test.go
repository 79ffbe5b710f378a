package verify_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/verify"
	"github.com/mailkeep/mailkeep/internal/archivetest"
)

var formats = []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox, archive.Maildir}

// body makes a message of about size bytes: varied text, lines that need
// mboxrd quoting, and (every fifth message) no final newline.
func body(rng *rand.Rand, i, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender%d@example.com\r\nSubject: message %d\r\nMessage-ID: <m%d@example.com>\r\n\r\n", i, i, i)
	words := []string{"archive", "mail", "From the start", ">From quoted", "zstd", "frame", "verify", "checksum", "catalog", "\x80\xff 8bit"}
	for b.Len() < size {
		for w := 0; w < 8; w++ {
			b.WriteString(words[rng.IntN(len(words))])
			fmt.Fprintf(&b, " %d ", rng.IntN(100000))
		}
		b.WriteString("\r\n")
		if rng.IntN(7) == 0 {
			b.WriteString("From somebody else\r\n")
		}
	}
	s := b.String()
	if i%5 == 4 {
		s = strings.TrimRight(s, "\r\n")
	}
	return s
}

// spec describes an archive to build.
type spec struct {
	format    archive.Format
	frameSize int
	folders   map[string]int // folder -> messages
	size      int            // typical message size
	commits   int            // backup runs the messages are spread over
	pop3      bool           // key by UIDL instead of UID
}

// build writes an archive with the real writer, one run per commit, and
// marks every seventh message expunged. It returns the archive directory.
func build(t testing.TB, sp spec) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "arch")
	a, err := archive.Open(dir, archive.Options{Format: sp.format, FrameSize: sp.frameSize})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rng := rand.New(rand.NewPCG(7, uint64(len(sp.format))))
	if sp.commits == 0 {
		sp.commits = 2
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range sp.folders {
			if !yield(k) {
				return
			}
		}
	})
	uid := map[string]int{}
	for c := 0; c < sp.commits; c++ {
		run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var expunge []int64
		for _, name := range names {
			f, err := a.Folder(t.Context(), name, '/', "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.NewWriter(t.Context(), f, run)
			if err != nil {
				t.Fatal(err)
			}
			n := sp.folders[name] / sp.commits
			if c == sp.commits-1 {
				n = sp.folders[name] - uid[name]
			}
			for k := 0; k < n; k++ {
				uid[name]++
				u := uid[name]
				in := &archive.Incoming{UIDValidity: 42, UID: uint32(u), InternalDate: time.Date(2024, 1, 1, 0, 0, u, 0, time.UTC), Flags: []string{`\Seen`}}
				if sp.pop3 {
					in = &archive.Incoming{UIDL: fmt.Sprintf("uidl-%d", u)}
				}
				m, err := w.Add(in, strings.NewReader(body(rng, u, sp.size/2+rng.IntN(sp.size))))
				if err != nil {
					t.Fatal(err)
				}
				_ = m
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			all, err := a.Cat.All(t.Context(), f.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range all {
				if m.UID%7 == 3 || m.UIDL != "" && len(m.UIDL)%7 == 3 {
					expunge = append(expunge, m.ID)
				}
			}
		}
		if err := a.Cat.MarkExpunged(t.Context(), run, expunge); err != nil {
			t.Fatal(err)
		}
		if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// check opens dir read-only and verifies it.
func check(t testing.TB, dir string, opt verify.Options) *verify.Report {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := verify.Run(context.Background(), a, opt)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// messages lists a folder's catalogued messages in storage order.
func messages(t testing.TB, dir, folder string) []*catalog.Message {
	return archivetest.Messages(t, dir, folder)
}

func problems(rep *verify.Report) string {
	var b strings.Builder
	for _, p := range rep.Problem {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// reportedUIDs returns the UIDs of a folder's message problems.
func reportedUIDs(rep *verify.Report, folder string) map[uint32]verify.Finding {
	out := map[uint32]verify.Finding{}
	for _, p := range rep.Problem {
		if p.Folder == folder && p.UID != 0 {
			out[p.UID] = p
		}
	}
	return out
}

var twoFolders = map[string]int{"INBOX": 60, "Work/Projects": 25}

func TestCleanArchive(t *testing.T) {
	for _, format := range formats {
		for _, pop3 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pop3=%v", format, pop3), func(t *testing.T) {
				folders := twoFolders
				if pop3 {
					folders = map[string]int{"INBOX": 40}
				}
				dir := build(t, spec{format: format, frameSize: 16 << 10, folders: folders, size: 3000, commits: 3, pop3: pop3})
				var progressed int
				rep := check(t, dir, verify.Options{Progress: func(string, int, int64) { progressed++ }})
				want := 0
				for _, n := range folders {
					want += n
				}
				if rep.Problems != 0 || rep.Notes != 0 {
					t.Fatalf("clean archive: %d problems, %d notes:\n%s%v", rep.Problems, rep.Notes, problems(rep), rep.Note)
				}
				if rep.Messages != want || progressed != want || rep.Folders != len(folders) || rep.Bytes == 0 {
					t.Errorf("checked %d messages (%d progress calls, %d bytes) in %d folders; want %d in %d", rep.Messages, progressed, rep.Bytes, rep.Folders, want, len(folders))
				}
			})
		}
	}
}

// TestFlippedFrameByte damages one compressed frame in the middle of a
// folder: the messages stored in it are reported by folder and UID, and
// those of every other frame, and the other folder, still verify.
func TestFlippedFrameByte(t *testing.T) {
	for _, format := range []archive.Format{archive.MboxZstd, archive.MboxGzip} {
		t.Run(string(format), func(t *testing.T) {
			dir := build(t, spec{format: format, frameSize: 16 << 10, folders: twoFolders, size: 3000, commits: 2})
			msgs := messages(t, dir, "INBOX")
			var frames []int64
			for _, m := range msgs {
				if len(frames) == 0 || frames[len(frames)-1] != m.FrameOffset {
					frames = append(frames, m.FrameOffset)
				}
			}
			if len(frames) < 5 {
				t.Fatalf("only %d frames with message starts; the test needs more", len(frames))
			}
			k := len(frames) / 2
			start, end := frames[k], frames[k+1]
			path := filepath.Join(dir, msgs[0].File)
			flip(t, path, start+(end-start)/2)

			rep := check(t, dir, verify.Options{})
			t.Logf("%d frames, damaged the one at %d:\n%s", len(frames), start, problems(rep))
			got := reportedUIDs(rep, "INBOX")
			if len(got) == 0 {
				t.Fatalf("flipped byte at %d not reported:\n%s", start+(end-start)/2, problems(rep))
			}
			// Allowed: messages starting in the frame, and the one before
			// that may run into it.
			allowed := map[uint32]bool{}
			for i, m := range msgs {
				if m.FrameOffset == start {
					allowed[m.UID] = true
					if i > 0 && msgs[i-1].FrameOffset < start {
						allowed[msgs[i-1].UID] = true
					}
				}
			}
			for uid, p := range got {
				if !allowed[uid] {
					t.Errorf("uid %d is outside the damaged frame but was reported: %s", uid, p)
				}
				if p.Folder != "INBOX" || p.File != msgs[0].File || (p.Kind != verify.Unreadable && p.Kind != verify.Checksum && p.Kind != verify.Size) {
					t.Errorf("finding lacks folder, file or kind: %+v", p)
				}
			}
			if len(reportedUIDs(rep, "Work/Projects")) != 0 {
				t.Errorf("the other folder was reported:\n%s", problems(rep))
			}
			if want := 85; rep.Messages != want {
				t.Errorf("checked %d messages, want all %d: verification did not go on", rep.Messages, want)
			}
			for _, p := range rep.Problem {
				if p.UID == 0 && p.Kind != verify.Gap { // a gap may lie at the frame's end
					t.Errorf("problem without a UID: %s", p)
				}
			}
		})
	}
}

func flip(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedMessage changes one byte of one message's text in a plain
// mbox file (an expunged message) and of a POP3 archive's Maildir file:
// exactly that message is reported, with its UID or UIDL.
func TestDamagedMessage(t *testing.T) {
	for _, tt := range []struct {
		format archive.Format
		pop3   bool
	}{{archive.Mbox, false}, {archive.Mbox, true}, {archive.Maildir, false}, {archive.Maildir, true}} {
		t.Run(fmt.Sprintf("%s/pop3=%v", tt.format, tt.pop3), func(t *testing.T) {
			dir := build(t, spec{format: tt.format, folders: map[string]int{"INBOX": 30}, size: 2000, pop3: tt.pop3})
			msgs := messages(t, dir, "INBOX")
			var victim *catalog.Message
			for _, m := range msgs {
				if m.ExpungedRun != 0 {
					victim = m
					break
				}
			}
			if victim == nil {
				victim = msgs[10]
			}
			off := victim.FrameOffset + 200 // past the From line, inside the header or text
			if tt.format == archive.Maildir {
				off = 200
			}
			flip(t, filepath.Join(dir, victim.File), off)
			rep := check(t, dir, verify.Options{})
			if rep.Problems != 1 {
				t.Fatalf("want 1 problem, got %d:\n%s", rep.Problems, problems(rep))
			}
			p := rep.Problem[0]
			if p.Kind != verify.Checksum || p.UID != victim.UID || p.UIDL != victim.UIDL || p.Expunged != (victim.ExpungedRun != 0) || p.Folder != "INBOX" {
				t.Errorf("finding %+v, want checksum of uid %d uidl %q", p, victim.UID, victim.UIDL)
			}
			if want := victim.UIDL; want != "" && !strings.Contains(p.String(), want) {
				t.Errorf("text %q does not name the UIDL", p.String())
			}
			if rep.Messages != 30 {
				t.Errorf("checked %d of 30", rep.Messages)
			}
		})
	}
}

func TestDeletedMaildirFile(t *testing.T) {
	dir := build(t, spec{format: archive.Maildir, folders: twoFolders, size: 1000})
	msgs := messages(t, dir, "Work/Projects")
	gone := msgs[4]
	if err := os.Remove(filepath.Join(dir, gone.File)); err != nil {
		t.Fatal(err)
	}
	// Another message renamed by some other program (flags changed).
	moved := msgs[7]
	to := strings.Replace(moved.File, ":2,S", ":2,FS", 1)
	if err := os.Rename(filepath.Join(dir, moved.File), filepath.Join(dir, to)); err != nil {
		t.Fatal(err)
	}
	rep := check(t, dir, verify.Options{})
	got := reportedUIDs(rep, "Work/Projects")
	if p, ok := got[gone.UID]; !ok || p.Kind != verify.Missing || p.File != gone.File {
		t.Errorf("deleted uid %d: %+v\n%s", gone.UID, p, problems(rep))
	}
	if p, ok := got[moved.UID]; !ok || p.Kind != verify.Renamed || !strings.Contains(p.Detail, filepath.Base(to)) {
		t.Errorf("renamed uid %d: %+v\n%s", moved.UID, p, problems(rep))
	}
	if rep.Problems != 2 {
		t.Errorf("want 2 problems:\n%s", problems(rep))
	}
	if !strings.Contains(got[gone.UID].String(), fmt.Sprintf(`folder "Work/Projects" uid %d`, gone.UID)) {
		t.Errorf("text: %s", got[gone.UID])
	}
}

func TestStrayFiles(t *testing.T) {
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			dir := build(t, spec{format: format, folders: twoFolders, size: 1000})
			var strays []string
			if format == archive.Maildir {
				strays = []string{"maildir/cur/1700000000.M1U1.other:2,S", "maildir/.Lost/cur/x", "maildir/.Work.Projects/tmp/junk", "notes.txt"}
			} else {
				strays = []string{"mbox/Lost." + string(format), "mbox/Work/old.mbox", "notes.txt"}
			}
			for _, s := range strays {
				p := filepath.Join(dir, s)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Files the archive owns or a killed run left are not problems.
			if format == archive.Maildir {
				os.WriteFile(filepath.Join(dir, "maildir/tmp/1.M1U1.mailkeep"), nil, 0o600)
				os.WriteFile(filepath.Join(dir, "maildir/dovecot-uidlist"), nil, 0o600)
			}
			rep := check(t, dir, verify.Options{})
			var got []string
			for _, p := range rep.Problem {
				if p.Kind != verify.Stray {
					t.Errorf("unexpected problem %s", p)
				}
				got = append(got, p.File)
			}
			sort.Strings(got)
			sort.Strings(strays)
			if !slices.Equal(got, strays) {
				t.Errorf("strays reported %q, want %q", got, strays)
			}
			if rep.Messages != 85 {
				t.Errorf("checked %d messages", rep.Messages)
			}
			// With --folder, only that folder is looked at.
			rep = check(t, dir, verify.Options{Folders: []string{"INBOX"}})
			if rep.Folders != 1 || rep.Messages != 60 {
				t.Errorf("--folder INBOX: %d folders, %d messages", rep.Folders, rep.Messages)
			}
		})
	}
}

// TestTruncatedMbox cuts an mbox file: the file and every message past the
// cut are reported, those before it verify.
func TestTruncatedMbox(t *testing.T) {
	for _, format := range []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox} {
		t.Run(string(format), func(t *testing.T) {
			dir := build(t, spec{format: format, frameSize: 16 << 10, folders: twoFolders, size: 3000})
			msgs := messages(t, dir, "INBOX")
			path := filepath.Join(dir, msgs[0].File)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := st.Size() * 2 / 3
			if err := os.Truncate(path, cut); err != nil {
				t.Fatal(err)
			}
			rep := check(t, dir, verify.Options{})
			t.Logf("cut at %d:\n%s", cut, problems(rep))
			got := reportedUIDs(rep, "INBOX")
			var truncated bool
			for _, p := range rep.Problem {
				truncated = truncated || p.Kind == verify.Truncated && p.File == msgs[0].File
			}
			if !truncated {
				t.Errorf("truncated file not reported:\n%s", problems(rep))
			}
			// Past the cut: reported. In frames wholly before the frame
			// holding the cut (and not running into it): verified.
			var fc int64
			for _, m := range msgs {
				if m.FrameOffset < cut {
					fc = m.FrameOffset
				}
			}
			for i, m := range msgs {
				_, reported := got[m.UID]
				runsIntoCut := i+1 < len(msgs) && msgs[i+1].FrameOffset == fc
				switch {
				case m.FrameOffset >= cut && !reported:
					t.Errorf("uid %d at %d, past the cut at %d, not reported", m.UID, m.FrameOffset, cut)
				case m.FrameOffset < fc && !runsIntoCut && reported:
					t.Errorf("uid %d at %d, before the cut's frame at %d, reported: %s", m.UID, m.FrameOffset, fc, got[m.UID])
				}
			}
			if len(got) == 0 || len(got) == len(msgs) {
				t.Errorf("%d of %d messages reported", len(got), len(msgs))
			}
			if len(reportedUIDs(rep, "Work/Projects")) != 0 {
				t.Errorf("other folder reported")
			}
		})
	}
}

// TestUncommittedTail: bytes past the committed size are a problem when no
// backup explains them, a note while one is pending.
func TestUncommittedTail(t *testing.T) {
	dir := build(t, spec{format: archive.MboxZstd, folders: twoFolders, size: 1000})
	msgs := messages(t, dir, "INBOX")
	f, err := os.OpenFile(filepath.Join(dir, msgs[0].File), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("torn frame")
	f.Close()
	rep := check(t, dir, verify.Options{})
	if rep.Problems != 1 || rep.Problem[0].Kind != verify.Tail || !strings.Contains(rep.Problem[0].Detail, "10 bytes past") {
		t.Fatalf("tail without a pending run:\n%s", problems(rep))
	}
	// A backup that never ended (killed): the next run truncates. (The
	// catalog is opened by itself: opening the archive would repair it.)
	c, err := catalog.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BeginRun(t.Context(), "backup", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	rep = check(t, dir, verify.Options{})
	if rep.Problems != 0 || rep.Notes != 1 || rep.Note[0].Kind != verify.Tail {
		t.Fatalf("tail with a pending run: problems\n%snotes %v", problems(rep), rep.Note)
	}
}

// TestGap: data the catalog does not list inside the committed part of a
// plain mbox file is reported, the messages around it still verify.
func TestGap(t *testing.T) {
	dir := build(t, spec{format: archive.Mbox, folders: map[string]int{"INBOX": 10}, size: 1000})
	msgs := messages(t, dir, "INBOX")
	path := filepath.Join(dir, msgs[0].File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the From line of message 5: message 4 then runs on into it.
	at := msgs[5].FrameOffset
	copy(b[at:], "Xrom ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep := check(t, dir, verify.Options{})
	t.Logf("%s", problems(rep))
	got := reportedUIDs(rep, "INBOX")
	if len(got) != 1 || got[msgs[5].UID].Kind != verify.Unreadable {
		t.Errorf("want only uid %d unreadable:\n%s", msgs[5].UID, problems(rep))
	}
}

// BenchmarkVerifyZstd measures verification speed of an mbox.zst archive
// (decompression, mboxrd decoding and SHA-256), in MB of mail per second;
// "floor" decompresses and hashes the same files as plain streams.
func BenchmarkVerifyZstd(b *testing.B) {
	dir := build(b, spec{format: archive.MboxZstd, folders: map[string]int{"INBOX": 1500, "Archive": 500}, size: 25000, commits: 2})
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	rep, err := verify.Run(context.Background(), a, verify.Options{})
	if err != nil || !rep.OK() {
		b.Fatalf("%v %+v", err, rep.Problem)
	}
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(rep.Bytes)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := verify.Run(context.Background(), a, verify.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		b.SetBytes(rep.Bytes)
		for i := 0; i < b.N; i++ {
			for _, f := range []string{"INBOX", "Archive"} {
				rc, err := mboxfile.OpenReader(filepath.Join(dir, "mbox", f+".mbox.zst"), mboxfile.CodecZstd, mboxfile.Pos{})
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				if _, err := io.Copy(h, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		}
	})
}

// TestUncataloguedMessage deletes catalog rows (in the middle and at the
// end of a folder): the file then holds messages the catalog does not
// list, which is reported, and every catalogued message still verifies.
func TestUncataloguedMessage(t *testing.T) {
	for _, format := range []archive.Format{archive.MboxZstd, archive.MboxGzip, archive.Mbox} {
		t.Run(string(format), func(t *testing.T) {
			dir := build(t, spec{format: format, frameSize: 16 << 10, folders: map[string]int{"INBOX": 20}, size: 2000, commits: 1})
			msgs := messages(t, dir, "INBOX")
			a, err := archive.Open(dir, archive.Options{} /* writes: not read-only */)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*catalog.Message{msgs[8], msgs[19]} {
				for _, q := range []string{`DELETE FROM flag_history WHERE message=?`, `DELETE FROM messages WHERE id=?`} {
					if _, err := a.Cat.DB().Exec(q, m.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			a.Close()
			rep := check(t, dir, verify.Options{})
			t.Logf("\n%s", problems(rep))
			if rep.Problems != 2 || rep.Messages != 18 {
				t.Fatalf("want 2 problems in 18 messages, got %d in %d", rep.Problems, rep.Messages)
			}
			if p := rep.Problem[0]; p.Kind != verify.Gap || p.UID != 0 || !strings.Contains(p.Detail, fmt.Sprintf("between uid %d and uid %d", msgs[7].UID, msgs[9].UID)) {
				t.Errorf("middle: %s", p)
			}
			if p := rep.Problem[1]; p.Kind != verify.Gap || p.UID != 0 || !strings.Contains(p.Detail, fmt.Sprintf("after uid %d", msgs[18].UID)) {
				t.Errorf("end: %s", p)
			}
		})
	}
}

// TestPendingBackupMaildir: a message file under a mailkeep key that the
// catalog lacks is a leftover of a pending (running or killed) backup, and
// a stray once no backup explains it.
func TestPendingBackupMaildir(t *testing.T) {
	dir := build(t, spec{format: archive.Maildir, folders: map[string]int{"INBOX": 5}, size: 500})
	name := "maildir/cur/1704067200.M42U999.mailkeep:2,S"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("Subject: x\r\n\r\nx\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := check(t, dir, verify.Options{})
	if rep.Problems != 1 || rep.Problem[0].Kind != verify.Stray || rep.Problem[0].File != name {
		t.Errorf("no pending backup: want a stray %s:\n%s", name, problems(rep))
	}
	c, err := catalog.Open(filepath.Join(dir, "catalog.db")) // not the archive: that would repair it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BeginRun(t.Context(), "backup", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	rep = check(t, dir, verify.Options{})
	if rep.Problems != 0 || rep.Notes != 1 || rep.Note[0].Kind != verify.Leftover || rep.Note[0].File != name {
		t.Errorf("pending backup: want a leftover note:\n%s%v", problems(rep), rep.Note)
	}
}

// TestDuringBackup verifies while a backup is writing (committed and
// uncommitted messages, a new folder, a flag change): read-only verify
// sees no problem, only notes; after the run ends, nothing at all.
func TestDuringBackup(t *testing.T) {
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			dir := build(t, spec{format: format, frameSize: 16 << 10, folders: twoFolders, size: 2000})
			a, err := archive.Open(dir, archive.Options{FrameSize: 16 << 10})
			if err != nil {
				t.Fatal(err)
			}
			run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			var ws []*archive.FolderWriter
			for _, name := range []string{"INBOX", "New/Folder"} {
				f, err := a.Folder(t.Context(), name, '/', "")
				if err != nil {
					t.Fatal(err)
				}
				w, err := a.NewWriter(t.Context(), f, run)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 20; i++ {
					if i == 10 {
						if err := w.Commit(); err != nil {
							t.Fatal(err)
						}
					}
					in := &archive.Incoming{UIDValidity: 42, UID: uint32(1000 + i), InternalDate: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC)}
					if _, err := w.Add(in, strings.NewReader(body(rng, 1000+i, 40000))); err != nil {
						t.Fatal(err)
					}
				}
				ws = append(ws, w)
			}
			if format == archive.Maildir { // a flag change renames a file
				f, _ := a.Cat.Folder(t.Context(), "INBOX")
				all, _ := a.Cat.All(t.Context(), f.ID)
				byID := map[int64]*catalog.Message{all[0].ID: all[0]}
				if err := ws[0].SetFlags([]catalog.FlagChange{{ID: all[0].ID, Flags: []string{`\Seen`, `\Flagged`}}}, byID); err != nil {
					t.Fatal(err)
				}
			}
			rep := check(t, dir, verify.Options{})
			t.Logf("during the backup: %d notes: %v", rep.Notes, rep.Note)
			if rep.Problems != 0 {
				t.Errorf("during a backup: problems:\n%s", problems(rep))
			}
			for _, w := range ws {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
			a.Close()
			rep = check(t, dir, verify.Options{})
			if rep.Problems != 0 || rep.Notes != 0 || rep.Messages != 85+40 {
				t.Errorf("after the backup: %d messages, problems:\n%snotes %v", rep.Messages, problems(rep), rep.Note)
			}
		})
	}
}
