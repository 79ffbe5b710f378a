package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	_ "modernc.org/sqlite"
)

// catalogRows is what a catalog knows of every message, without row ids:
// folder, UIDVALIDITY, UID, flags and keywords, size, checksum, dates,
// position and whether the server expunged it.
func catalogRows(t *testing.T, dir string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "catalog.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT f.name, m.uidvalidity, m.uid, COALESCE(m.uidl,''), m.flags, m.size, lower(hex(m.sha256)), m.internal_date, COALESCE(NULLIF(m.file,''), f.path), m.frame_offset, m.frame_pos, m.expunged_run IS NOT NULL
		FROM messages m JOIN folders f ON f.id=m.folder_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, uidl, flags, sha, date, file string
		var uv, uid, size, fo, fp int64
		var exp bool
		if err := rows.Scan(&name, &uv, &uid, &uidl, &flags, &size, &sha, &date, &file, &fo, &fp, &exp); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%d|%d|%s|%s|%d|%s|%s|%s|%d|%d|%v", name, uv, uid, uidl, flags, size, sha, date, file, fo, fp, exp))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// mailFiles hashes every file under the archive's mail tree.
func mailFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"mbox", "maildir"} {
		root := filepath.Join(dir, sub)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = hex.EncodeToString(sum[:])
			return nil
		})
	}
	return out
}

func expungeHalf(t *testing.T, c *imapclient.Client, folder string) {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var set imap.SeqSet
	set.AddRange(1, 6)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestReindexAfterCatalogLoss: mail that only the archive holds (expunged
// on the server) survives a deleted, emptied, corrupted or WAL-less
// catalog: writing commands refuse and touch nothing, reindex brings back
// every row (UIDs, flags, keywords, expunge state) from the journal, the
// next backup fetches nothing, and verify is clean.
func TestReindexAfterCatalogLoss(t *testing.T) {
	dv := startDovecot(t)
	damages := []string{"deleted", "emptied", "corrupted", "wal-lost", "journal-lost-too"}
	formats := []string{"mbox.zst", "mbox.gz", "mbox", "maildir"}
	userOf := func(format, damage string) string {
		return strings.NewReplacer(".", "", "-", "").Replace("r" + format + damage)
	}
	// All users first: Dovecot rereads its passwd file by mtime.
	for _, format := range formats {
		for _, damage := range damages {
			dv.AddUser(t, userOf(format, damage), pass)
			dv.AddUser(t, userOf(format, damage)+"dst", pass)
		}
	}
	for _, format := range formats {
		for _, damage := range damages {
			t.Run(format+"/"+damage, func(t *testing.T) {
				u := userOf(format, damage)
				c := imaptest.Dial(t, dv.IMAPAddr, u, pass)
				for i, m := range imaptest.Corpus() {
					folder := []string{"INBOX", "Work/Projects"}[i%2]
					flags := [][]string{{`\Seen`}, {`\Flagged`, "$Label1"}, nil, {`\Answered`, "Junk"}}[i%4]
					imaptest.Append(t, c, folder, flags, time.Date(2014, 3, 1, 10, 0, i, 0, time.UTC), m.Body)
				}
				dir := filepath.Join(t.TempDir(), "arch")
				url := "imap://" + u + "@" + dv.IMAPAddr
				backup := func() result {
					return mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format, "--json")
				}
				if r := backup(); r.code != 0 {
					t.Fatalf("backup: %d %s", r.code, r.stderr)
				}
				var walCopy []byte
				if damage == "wal-lost" {
					// The catalog as a crash would leave it without its
					// -wal: everything after this point lost.
					r := mailkeep(t, nil, "ls", "--archive", dir) // ls checkpoints nothing; copy the db after a clean close
					if r.code != 0 {
						t.Fatal(r.stderr)
					}
					var err error
					if walCopy, err = os.ReadFile(filepath.Join(dir, "catalog.db")); err != nil {
						t.Fatal(err)
					}
				}
				expungeHalf(t, c, "INBOX")
				if r := backup(); r.code != 0 {
					t.Fatalf("second backup: %d %s", r.code, r.stderr)
				}
				want := catalogRows(t, dir)
				expunged := 0
				for _, r := range want {
					if strings.HasSuffix(r, "|true") {
						expunged++
					}
				}
				if expunged == 0 {
					t.Fatal("no message is archive-only: the test proves nothing")
				}
				files := mailFiles(t, dir)
				db := filepath.Join(dir, "catalog.db")
				switch damage {
				case "deleted", "journal-lost-too":
					for _, s := range []string{"", "-wal", "-shm"} {
						os.Remove(db + s)
					}
					if damage == "journal-lost-too" {
						os.Remove(filepath.Join(dir, "catalog.journal"))
					}
				case "emptied":
					for _, s := range []string{"-wal", "-shm"} {
						os.Remove(db + s)
					}
					if err := os.WriteFile(db, nil, 0o600); err != nil {
						t.Fatal(err)
					}
				case "corrupted":
					b, err := os.ReadFile(db)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(1, uint64(len(format))))
					for p := 0; p < len(b); p += 4096 { // random bytes over every page
						for i := 0; i < 64 && p+i < len(b); i++ {
							b[p+rng.IntN(min(4096, len(b)-p))] = byte(rng.Uint32())
						}
					}
					for _, s := range []string{"-wal", "-shm"} {
						os.Remove(db + s)
					}
					if err := os.WriteFile(db, b, 0o600); err != nil {
						t.Fatal(err)
					}
				case "wal-lost":
					for _, s := range []string{"-wal", "-shm"} {
						os.Remove(db + s)
					}
					if err := os.WriteFile(db, walCopy, 0o600); err != nil {
						t.Fatal(err)
					}
				}

				if damage == "wal-lost" {
					// The journal brings the catalog forward by itself.
					r := backup()
					if r.code != 0 || !strings.Contains(r.stdout, `"fetched": 0`) {
						t.Fatalf("backup after a lost -wal: %d %s %s", r.code, r.stdout, r.stderr)
					}
					if got := catalogRows(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("catalog after replaying the journal differs:\n%s", diffLines(want, got))
					}
					return
				}
				// Writing and reading commands refuse and change nothing.
				for _, args := range [][]string{
					{"backup", "--imap", url, "--tls", "none", "--archive", dir},
					{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--format", format},
					{"ls", "--archive", dir},
				} {
					r := mailkeep(t, pwEnv(), args...)
					if r.code == 0 || !strings.Contains(r.stderr, "mailkeep reindex --archive "+dir) {
						t.Errorf("%s with a %s catalog: exit %d, %s", args[0], damage, r.code, r.stderr)
					}
				}
				if got := mailFiles(t, dir); fmt.Sprint(got) != fmt.Sprint(files) {
					t.Fatalf("mail files changed by refused commands:\nbefore %v\nafter  %v", files, got)
				}
				r := mailkeep(t, nil, "reindex", "--archive", dir, "--json")
				if r.code != 0 {
					t.Fatalf("reindex: %d %s %s", r.code, r.stdout, r.stderr)
				}
				if (damage == "emptied" || damage == "corrupted") && !strings.Contains(r.stdout, "catalog.db.old-") {
					t.Errorf("reindex did not keep the damaged catalog: %s", r.stdout)
				}
				got := catalogRows(t, dir)
				if damage == "journal-lost-too" {
					// The files alone: every message is back, with its
					// bytes, but without what only the catalog knew.
					if len(got) != len(want) {
						t.Fatalf("files-only reindex: %d messages, want %d", len(got), len(want))
					}
					// Same bytes at the same places. mbox cannot tell a
					// message stored without a final newline from one
					// with it: the files alone give it one more byte.
					at := map[string][]string{}
					for _, r := range want {
						f := strings.Split(r, "|")
						at[strings.Join(f[8:11], "|")] = f
					}
					for _, r := range got {
						f := strings.Split(r, "|")
						w := at[strings.Join(f[8:11], "|")]
						switch {
						case w == nil:
							t.Errorf("files-only reindex: unexpected message %s", r)
						case f[6] == w[6] && f[5] == w[5]:
						case format != "maildir" && fmt.Sprint(atoi(t, f[5])) == fmt.Sprint(atoi(t, w[5])+1):
						default:
							t.Errorf("files-only reindex: %s\nwant %s", r, strings.Join(w, "|"))
						}
					}
					if r := mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
						t.Fatalf("verify after a files-only reindex: %d %s", r.code, r.stderr)
					}
					// The next backup recognises what the files hold
					// (size, date, Message-ID, then SHA-256) instead of
					// storing it twice.
					r := backup()
					if r.code != 0 {
						t.Fatalf("backup after a files-only reindex: %d %s", r.code, r.stderr)
					}
					t.Logf("backup after a files-only reindex: %s", r.stdout)
					after := catalogRows(t, dir)
					live := 0
					for _, r := range after {
						if !strings.HasSuffix(r, "|true") {
							live++
						}
					}
					if wantLive := len(want) - expunged; live != wantLive {
						t.Errorf("after a files-only reindex and a backup: %d live messages, want %d", live, wantLive)
					}
					return
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("catalog after reindex differs:\n%s", diffLines(want, got))
				}
				r = backup()
				if r.code != 0 || !strings.Contains(r.stdout, `"fetched": 0`) {
					t.Fatalf("backup after reindex: %d %s %s", r.code, r.stdout, r.stderr)
				}
				if r := mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
					t.Fatalf("verify after reindex: %d %s", r.code, r.stderr)
				}
				if got := mailFiles(t, dir); fmt.Sprint(got) != fmt.Sprint(files) {
					t.Fatalf("mail files changed:\nbefore %v\nafter  %v", files, got)
				}
				// Restore gives back every message, the archive-only ones
				// included, with flags and keywords.
				dst := "imap://" + u + "dst@" + dv.IMAPAddr
				if r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", dst, "--tls", "none", "--include-expunged", "--no-special-use"); r.code != 0 {
					t.Fatalf("restore after reindex: %d %s", r.code, r.stderr)
				}
				dc := imaptest.Dial(t, dv.IMAPAddr, u+"dst", pass)
				snap := imaptest.Snapshot(t, dc, true)
				var restored []string
				for folder, msgs := range snap {
					for _, m := range msgs {
						sum := sha256.Sum256(m.Body)
						restored = append(restored, folder+"|"+catalogFlags(m.Flags)+"|"+hex.EncodeToString(sum[:]))
					}
				}
				var archived []string
				for _, r := range want {
					f := strings.Split(r, "|")
					archived = append(archived, f[0]+"|"+f[4]+"|"+f[6])
				}
				sort.Strings(restored)
				sort.Strings(archived)
				if strings.Join(restored, "\n") != strings.Join(archived, "\n") {
					t.Fatalf("restored after reindex differs from the archive:\n%s", diffLines(archived, restored))
				}
			})
		}
	}
}

func diffLines(want, got []string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	for _, s := range got {
		g[s] = true
	}
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	for _, s := range got {
		if !w[s] {
			fmt.Fprintf(&b, "+ %s\n", s)
		}
	}
	return b.String()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func catalogFlags(fl []string) string {
	var out []string
	for _, f := range fl {
		if f != `\Recent` {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestReindexPOP3AfterDelete: a POP3 archive whose server copies were
// deleted by --delete is the only copy. Losing its catalog loses nothing:
// backup refuses, reindex gives back every row (UIDLs included) and the
// next backup stores nothing twice.
func TestReindexPOP3AfterDelete(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i, m := range imaptest.Corpus() {
		imaptest.Append(t, c, "INBOX", nil, time.Date(2014, 5, 1, 0, 0, i, 0, time.UTC), m.Body)
	}
	dir := filepath.Join(t.TempDir(), "arch")
	url := "pop3://" + user + "@" + dv.POP3Addr
	if r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete"); r.code != 0 {
		t.Fatalf("backup --delete: %d %s", r.code, r.stderr)
	}
	if n := len(imaptest.Snapshot(t, c, false)["INBOX"]); n != 0 {
		t.Fatalf("server still holds %d messages after --delete", n)
	}
	want := catalogRows(t, dir)
	if len(want) != len(imaptest.Corpus()) {
		t.Fatalf("archive holds %d messages, want %d", len(want), len(imaptest.Corpus()))
	}
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "catalog.db") + s)
	}
	r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete")
	if r.code == 0 || !strings.Contains(r.stderr, "reindex") {
		t.Fatalf("backup without a catalog: %d %s", r.code, r.stderr)
	}
	if r := mailkeep(t, nil, "reindex", "--archive", dir); r.code != 0 {
		t.Fatalf("reindex: %d %s", r.code, r.stderr)
	}
	if got := catalogRows(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("catalog after reindex differs:\n%s", diffLines(want, got))
	}
	if r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"fetched": 0`) {
		t.Fatalf("backup after reindex: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}
}
