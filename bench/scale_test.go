package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
)

// The scale cases run only with MAILKEEP_BENCH_SCALE=1 (they take many
// minutes): one folder of 10k / 50k / 200k messages (full, no-op, +100
// new, 1,000 flag changes), 100,000 mostly empty folders (full, no-op,
// ls, verify) and 1,000,000 small messages over 100 folders (full, no-op,
// ls, verify, index, search, catalog bytes per message). Each case prints wall, CPU and peak RSS, and the growth
// ratio from one size to the next. With MAILKEEP_BENCH_PREV the previous
// build runs each case too, right before this one, on the same server
// state. The mail is written straight into the private Dovecot's Maildirs
// and indexed with doveadm, not APPENDed.
//
//	MAILKEEP_BENCH_SCALE_SIZES    messages per folder sizes (10000,50000,200000)
//	MAILKEEP_BENCH_SCALE_FOLDERS  folder count (100000; 0 skips)
//	MAILKEEP_BENCH_SCALE_MILLION  messages over 100 folders (1000000; 0 skips)
//	MAILKEEP_BENCH_SCALE_KEEP     a directory (same file system as TMPDIR) to move the million-message archive to
//	MAILKEEP_BENCH_SCALE_DOVECOT  the folders case's Dovecot configurations (stock,large)
//	MAILKEEP_BENCH_SCALE_SHAPE    the folders case's shape: flat or tree (flat)
//	MAILKEEP_BENCH_SCALE_FOLDER_DOVECOT  the one-folder case's Dovecot configurations (stock)

// The scale cases have a Dovecot of their own that does not fsync
// (mail_fsync = never): filling and indexing 100,000 folders would
// otherwise take most of an hour, and mailkeep's figures are what is
// measured. Its accounts are created up front (Dovecot notices
// passwd-file changes by mtime only).
//
// BenchmarkScaleFolders also runs against a second Dovecot configured as
// a large installation is (scaleConfigs, bench/README.md): Dovecot's
// defaults re-read the whole folder tree at every login, which costs time
// quadratic in the number of sibling folders.
var (
	scaleMu    sync.Mutex
	scaleDVs   = map[string]*dovecottest.Server{}
	scaleUsers = []string{"scale0", "scale1", "scale2", "scale3", "scale4", "folders", "million"}
)

// scaleConfigs are the scale Dovecots' configurations beyond
// mail_fsync = never. "stock" is Dovecot 2.3's defaults (the mailbox list
// index is on, and refreshed from the file system at every login);
// "large" is what a large Maildir installation that delivers through
// Dovecot (LMTP or LDA, never a foreign MDA writing into the Maildirs)
// sets: the list index and each folder's index are trusted without a
// stat() of every folder directory.
var scaleConfigs = map[string]string{
	"stock": "",
	"large": "mailbox_list_index = yes\nmailbox_list_index_very_dirty_syncs = yes\nmaildir_very_dirty_syncs = yes",
}

// The scale cases' server directory is MAILKEEP_BENCH_SCALE_SERVERDIR
// (default /dev/shm when it exists).

// scaleOn skips the case unless MAILKEEP_BENCH_SCALE is set, and returns
// the bench environment with the stock scale Dovecot in place of the
// shared one.
func scaleOn(b *testing.B) *env {
	return scaleOnConfig(b, "stock")
}

// scaleOnConfig is scaleOn with the scale Dovecot of configuration conf
// (scaleConfigs), started at its first use.
func scaleOnConfig(b *testing.B, conf string) *env {
	b.Helper()
	if os.Getenv("MAILKEEP_BENCH_SCALE") == "" {
		b.Skip("scale cases: set MAILKEEP_BENCH_SCALE=1")
	}
	extra, ok := scaleConfigs[conf]
	if !ok {
		b.Fatalf("no scale Dovecot configuration %q", conf)
	}
	e := setup(b)
	scaleMu.Lock()
	defer scaleMu.Unlock()
	dv := scaleDVs[conf]
	if dv == nil {
		var err error
		if dv, err = newScaleServer(extra); err != nil {
			b.Fatal(err)
		}
		scaleDVs[conf] = dv
	}
	se := *e
	se.dv = dv
	return &se
}

func newScaleServer(extra string) (*dovecottest.Server, error) {
	// The server's mail lives in memory where it can (tmpfs): it stands
	// for a server with a warm page cache, and filling 100,000 folders
	// takes seconds instead of many minutes. The archives stay on disk.
	if dir := cmp.Or(os.Getenv("MAILKEEP_BENCH_SCALE_SERVERDIR"), "/dev/shm"); isDir(dir) {
		old, had := os.LookupEnv("TMPDIR")
		os.Setenv("TMPDIR", dir)
		defer func() {
			if had {
				os.Setenv("TMPDIR", old)
			} else {
				os.Unsetenv("TMPDIR")
			}
		}()
	}
	dv, err := dovecottest.New(&dovecottest.Options{ExtraConfig: "mail_fsync = never\n" + extra})
	if err != nil {
		return nil, err
	}
	for _, u := range scaleUsers {
		if err := dv.CreateUser(u, benchPass); err != nil {
			dv.Close()
			return nil, err
		}
	}
	return dv, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func closeScale() {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	for _, dv := range scaleDVs {
		dv.Close()
	}
}

func envInts(name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}

// smallMessage is a ~400-byte text message, different for every i.
func smallMessage(i int, date int64) []byte {
	return fmt.Appendf(nil, "From: user%d@example.com\nTo: alice@example.com\nSubject: scale message %d\nDate: %s\nMessage-ID: <scale.%d@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nThis is message %d of the scale benchmark.\nIt is small on purpose: the case measures per-message costs.\n",
		i%300, i, time.Unix(date, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 +0000"), i, i)
}

// fillMaildir writes n small messages into the Maildir folder dir (its
// cur/ or new/), numbered from first, with the info flags given.
func fillMaildir(dir, sub string, first, n int, flags string) error {
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
			return err
		}
	}
	for i := first; i < first+n; i++ {
		date := int64(1_700_000_000 - i*60)
		data := smallMessage(i, date)
		name := fmt.Sprintf("%d.M%dP1.scale,S=%d", date, i, len(data))
		if sub == "cur" {
			name += ":2," + flags
		}
		p := filepath.Join(dir, sub, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		t := time.Unix(date, 0)
		os.Chtimes(p, t, t)
	}
	return nil
}

type build struct{ name, bin string }

func builds(e *env) []build {
	out := []build{{"mailkeep", e.bin}}
	if prev := os.Getenv("MAILKEEP_BENCH_PREV"); prev != "" {
		out = append([]build{{"previous", prev}}, out...)
	}
	return out
}

func (e *env) doveadm(b *testing.B, args ...string) {
	b.Helper()
	start := time.Now()
	if out, err := e.dv.RunDoveadm(args...); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	fmt.Printf("%-34s %7.2f s (setup: doveadm %s)\n", "", time.Since(start).Seconds(), strings.Join(args, " "))
}

// growth prints how each case's wall time grew from one size to the next.
func growth(label string, sizes []int, cases []string, wall map[string][]float64) {
	for _, c := range cases {
		w := wall[c]
		var parts []string
		for i := 1; i < len(w) && i < len(sizes); i++ {
			parts = append(parts, fmt.Sprintf("%d->%d: %.2fx (size %.1fx)", sizes[i-1], sizes[i], w[i]/w[i-1], float64(sizes[i])/float64(sizes[i-1])))
		}
		if len(parts) > 0 {
			fmt.Printf("growth %-8s %-26s %s\n", label, c, strings.Join(parts, ", "))
		}
	}
}

// BenchmarkScaleFolder: one folder of 10k / 50k / 200k messages, on the
// scale Dovecots of MAILKEEP_BENCH_SCALE_FOLDER_DOVECOT (default
// "stock"; "stock,large" for both: scaleConfigs).
func BenchmarkScaleFolder(b *testing.B) {
	for _, conf := range strings.Split(cmp.Or(os.Getenv("MAILKEEP_BENCH_SCALE_FOLDER_DOVECOT"), "stock"), ",") {
		fmt.Printf("Dovecot %s\n", conf)
		scaleFolder(b, scaleOnConfig(b, conf), conf)
	}
}

func scaleFolder(b *testing.B, e *env, conf string) {
	sizes := envInts("MAILKEEP_BENCH_SCALE_SIZES", []int{10000, 50000, 200000})
	if len(sizes) > 5 {
		b.Fatal("at most 5 sizes")
	}
	cases := []string{"full", "no-op", "+100 new", "1000 flag changes"}
	wall := map[string]map[string][]float64{}
	for _, bu := range builds(e) {
		wall[bu.name] = map[string][]float64{}
	}
	for si, n := range sizes {
		u := fmt.Sprintf("scale%d", si)
		md := e.dv.Maildir(u)
		start := time.Now()
		if err := fillMaildir(md, "cur", 0, n, "S"); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("%-34s %7.2f s (setup: %d messages written)\n", "", time.Since(start).Seconds(), n)
		e.doveadm(b, "index", "-u", u, "INBOX")
		url := "imap://" + u + "@" + e.dv.IMAPAddr
		mk := func(bu build, dir string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, "backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet")
		}
		dirs := map[string]string{}
		step := func(c string, msgs int) {
			for _, bu := range builds(e) {
				r := mk(bu, dirs[bu.name])
				report(b, fmt.Sprintf("%s %s, %d msgs %s", bu.name, c, n, conf), r, msgs, 0, 0, "")
				wall[bu.name][c] = append(wall[bu.name][c], r.secs)
			}
		}
		for _, bu := range builds(e) {
			dirs[bu.name] = filepath.Join(e.tmp, fmt.Sprintf("scale%d-%s", si, bu.name))
			os.RemoveAll(dirs[bu.name])
		}
		step("full", n)
		step("no-op", 0)
		if err := fillMaildir(md, "new", n, 100, ""); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		e.doveadm(b, "force-resync", "-u", u, "INBOX")
		step("+100 new", 100)
		e.doveadm(b, "flags", "add", "-u", u, `\Flagged`, "mailbox", "INBOX", "uid", fmt.Sprintf("%d:%d", n/2, n/2+999))
		step("1000 flag changes", 0)
		os.RemoveAll(md) // the next size starts from an empty account
		for _, bu := range builds(e) {
			os.RemoveAll(dirs[bu.name])
		}
	}
	for _, bu := range builds(e) {
		growth(bu.name+" "+conf, sizes, cases, wall[bu.name])
	}
}

// BenchmarkScaleFolders: 100,000 folders, one in a hundred holding 3
// messages, the rest empty, on each scale Dovecot configuration of
// MAILKEEP_BENCH_SCALE_DOVECOT (default "stock,large"; scaleConfigs).
// MAILKEEP_BENCH_SCALE_SHAPE is "flat" (default: every folder a child of
// the root, Dovecot's worst case: its list index finds a folder among its
// siblings by a linear search) or "tree" (a parent folder per hundred
// folders: "P0001/F000100").
func BenchmarkScaleFolders(b *testing.B) {
	n := envInts("MAILKEEP_BENCH_SCALE_FOLDERS", []int{100000})[0]
	if n == 0 {
		b.Skip("MAILKEEP_BENCH_SCALE_FOLDERS=0")
	}
	shape := cmp.Or(os.Getenv("MAILKEEP_BENCH_SCALE_SHAPE"), "flat")
	if shape != "flat" && shape != "tree" {
		b.Fatalf("MAILKEEP_BENCH_SCALE_SHAPE=%q: flat or tree", shape)
	}
	for _, conf := range strings.Split(cmp.Or(os.Getenv("MAILKEEP_BENCH_SCALE_DOVECOT"), "stock,large"), ",") {
		scaleFolders(b, scaleOnConfig(b, conf), conf, shape, n)
	}
}

// fillFolders writes n Maildir++ folders into md, one in a hundred
// holding 3 messages; with shape "tree" under a parent folder per hundred.
// It returns the folders and messages written.
func fillFolders(md, shape string, n int) (folders, msgs int, err error) {
	for fi := 1; fi <= n; fi++ {
		name := fmt.Sprintf(".F%06d", fi)
		if shape == "tree" {
			parent := fmt.Sprintf(".P%04d", (fi-1)/100)
			if (fi-1)%100 == 0 {
				if err := fillMaildir(filepath.Join(md, parent), "cur", 0, 0, ""); err != nil {
					return 0, 0, err
				}
				os.WriteFile(filepath.Join(md, parent, "maildirfolder"), nil, 0o600)
				folders++
			}
			name = parent + name
		}
		dir := filepath.Join(md, name)
		k := 0
		if fi%100 == 0 {
			k = 3
		}
		if err := fillMaildir(dir, "cur", fi*10, k, "S"); err != nil {
			return 0, 0, err
		}
		os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
		folders++
		msgs += k
	}
	return folders, msgs, chownForDovecot(md)
}

func scaleFolders(b *testing.B, e *env, conf, shape string, n int) {
	md := e.dv.Maildir("folders")
	start := time.Now()
	folders, msgs, err := fillFolders(md, shape, n)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		// The next configuration's server is another one; this one's
		// memory is given back.
		entries, _ := os.ReadDir(md)
		for _, d := range entries {
			if strings.HasPrefix(d.Name(), ".") {
				os.RemoveAll(filepath.Join(md, d.Name()))
			}
		}
	}()
	fmt.Printf("%-34s %7.2f s (setup: Dovecot %s, %s, %d folders, %d messages written)\n", "", time.Since(start).Seconds(), conf, shape, folders, msgs)
	e.doveadm(b, "index", "-u", "folders", "*")
	url := "imap://folders@" + e.dv.IMAPAddr
	label := fmt.Sprintf("%d folders %s %s", folders, shape, conf)
	// The server's share: one LIST with STATUS of every folder, the
	// floor of a no-op backup; and the LIST alone.
	report(b, "floor LIST-STATUS, "+label, rawListStatus(b, e.dv.IMAPAddr, "folders", true), 0, 0, 0, "")
	report(b, "LIST alone, "+label, rawListStatus(b, e.dv.IMAPAddr, "folders", false), 0, 0, 0, "")
	for _, bu := range builds(e) {
		dir := filepath.Join(e.tmp, "folders-"+bu.name)
		os.RemoveAll(dir)
		mk := func(args ...string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, args...)
		}
		// Dovecot answers a LIST of 100,000 Maildir++ folders after minutes
		// of silence: more than mailkeep's default I/O timeout.
		report(b, bu.name+" full, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--timeout", "20m"), msgs, 0, 0, "")
		report(b, bu.name+" no-op, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet", "--timeout", "20m"), 0, 0, 0, "")
		ls := mk("ls", "--archive", dir)
		report(b, bu.name+" ls, "+label, ls, 0, 0, 0, "")
		fmt.Printf("%-34s ls: %d lines\n", "", bytes.Count([]byte(ls.out), []byte("\n")))
		report(b, bu.name+" verify, "+label, mk("verify", "--archive", dir, "--quiet"), msgs, 0, 0, "")
		files := 0
		filepath.WalkDir(filepath.Join(dir, "mbox"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
			}
			return nil
		})
		fmt.Printf("%-34s archive: %d folder files\n", "", files)
		os.RemoveAll(dir)
	}
	// The floor once more, after the runs: on a busy machine one sample
	// of it is not enough to tell mailkeep's share.
	report(b, "floor LIST-STATUS again, "+label, rawListStatus(b, e.dv.IMAPAddr, "folders", true), 0, 0, 0, "")
}

// BenchmarkScaleMillion: 1,000,000 small messages over 100 folders.
func BenchmarkScaleMillion(b *testing.B) {
	e := scaleOn(b)
	total := envInts("MAILKEEP_BENCH_SCALE_MILLION", []int{1000000})[0]
	if total == 0 {
		b.Skip("MAILKEEP_BENCH_SCALE_MILLION=0")
	}
	md := e.dv.Maildir("million")
	per := total / 100
	start := time.Now()
	for fi := range 100 {
		dir := md
		if fi > 0 {
			dir = filepath.Join(md, fmt.Sprintf(".M%03d", fi))
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
		}
		if err := fillMaildir(dir, "cur", fi*per, per, "S"); err != nil {
			b.Fatal(err)
		}
	}
	if err := chownForDovecot(md); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("%-34s %7.2f s (setup: %d messages written)\n", "", time.Since(start).Seconds(), per*100)
	e.doveadm(b, "index", "-u", "million", "*")
	url := "imap://million@" + e.dv.IMAPAddr
	for _, bu := range builds(e) {
		dir := filepath.Join(e.tmp, "million-"+bu.name)
		os.RemoveAll(dir)
		mk := func(args ...string) result {
			return run(b, []string{"MAILKEEP_PASSWORD=" + benchPass}, bu.bin, args...)
		}
		label := fmt.Sprintf("%d msgs/100 folders", per*100)
		report(b, bu.name+" full, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"), per*100, 0, 0, "")
		report(b, bu.name+" no-op, "+label, mk("backup", "--imap", url, "--tls", "none", "--archive", dir, "--quiet"), 0, 0, 0, "")
		report(b, bu.name+" ls, "+label, mk("ls", "--archive", dir), 0, 0, 0, "")
		report(b, bu.name+" verify, "+label, mk("verify", "--archive", dir, "--quiet"), per*100, 0, 0, "")
		archiveSizes(b, bu.name, dir, per*100)
		// The search index: built once over the whole archive, then one
		// query of a word every message has, and one of a rare one.
		report(b, bu.name+" index, "+label, mk("index", "--archive", dir, "--quiet"), per*100, 0, 0, "")
		if fi, err := os.Stat(filepath.Join(dir, "index.db")); err == nil {
			fmt.Printf("%-34s index.db %.1f MB, %.0f bytes/message\n", "", float64(fi.Size())/1e6, float64(fi.Size())/float64(per*100))
			metric(b, bu.name+" index bytes per message", float64(fi.Size())/float64(per*100), "B/msg")
		}
		report(b, bu.name+" search common word, "+label, mk("search", "--archive", dir, "--limit", "50", "benchmark"), 0, 0, 0, "")
		report(b, bu.name+" search rare subject, "+label, mk("search", "--archive", dir, "subject:\"scale message 123457\""), 0, 0, 0, "")
		if keep := os.Getenv("MAILKEEP_BENCH_SCALE_KEEP"); keep != "" {
			to := filepath.Join(keep, "million-"+bu.name)
			if err := os.Rename(dir, to); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("%-34s archive kept: %s\n", "", to)
			continue
		}
		os.RemoveAll(dir)
	}
}

// archiveSizes prints the archive's mail bytes and the catalog's bytes
// per message: the SQLite database (with its WAL) and its redo journal.
func archiveSizes(b *testing.B, name, dir string, msgs int) {
	b.Helper()
	mail := treeBytes(filepath.Join(dir, "mbox"))
	size := func(names ...string) (n int64) {
		for _, s := range names {
			if fi, err := os.Stat(filepath.Join(dir, s)); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	db, journal := size("catalog.db", "catalog.db-wal"), size("catalog.journal")
	per := func(n int64) float64 { return float64(n) / float64(msgs) }
	fmt.Printf("%-34s archive: mail %.1f MB, catalog.db %.1f MB (%.0f B/msg), catalog.journal %.1f MB (%.0f B/msg), whole dir %.1f MB\n", "",
		float64(mail)/1e6, float64(db)/1e6, per(db), float64(journal)/1e6, per(journal), float64(treeBytes(dir))/1e6)
	metric(b, name+" catalog.db bytes per message", per(db), "B/msg")
	metric(b, name+" catalog.journal bytes per message", per(journal), "B/msg")
	metric(b, name+" archive mail MB", float64(mail)/1e6, "MB")
}

// rawListStatus times one LIST "" "*" (with status: RETURN (STATUS ...))
// on its own connection, the answer read and discarded.
func rawListStatus(b *testing.B, addr, user string, status bool) result {
	b.Helper()
	start := time.Now()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, benchPass).Wait(); err != nil {
		b.Fatal(err)
	}
	opt := &imap.ListOptions{}
	if status {
		opt.ReturnStatus = &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}
	}
	cmd := c.List("", "*", opt)
	n := 0
	for cmd.Next() != nil {
		n++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	c.Logout().Wait()
	return result{secs: time.Since(start).Seconds()}
}
