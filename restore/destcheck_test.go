package restore_test

// Tests of issue 17: the destination is the truth, the progress record a
// hint. A wiped account, an emptied folder and a few expunged messages are
// all restored again, on Dovecot and on go-imap's in-process server.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
	"github.com/mailkeep/mailkeep/restore/archivesrc"
)

// cmdCounts counts the commands a memimap session served, by name.
type cmdCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *cmdCounts) add(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

// take returns the counts so far and starts again from zero.
func (c *cmdCounts) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

type countingSession struct {
	imapserver.Session
	n         *cmdCounts
	noUIDPlus bool // answer APPEND without APPENDUID
}

func (s countingSession) Select(mb string, o *imap.SelectOptions) (*imap.SelectData, error) {
	s.n.add("SELECT")
	return s.Session.Select(mb, o)
}

func (s countingSession) Search(k imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	s.n.add("SEARCH")
	return s.Session.Search(k, c, o)
}

func (s countingSession) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	s.n.add("FETCH")
	return s.Session.Fetch(w, set, o)
}

// Append stores nothing of a literal cut short (imapmemserver would store
// the part received when a client dies mid-literal; real servers do not).
func (s countingSession) Append(mb string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	s.n.add("APPEND")
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != r.Size() {
		return nil, fmt.Errorf("literal cut after %d of %d bytes", len(b), r.Size())
	}
	data, err := s.Session.Append(mb, &sizedReader{bytes.NewReader(b)}, o)
	if s.noUIDPlus {
		data = nil
	}
	return data, err
}

type sizedReader struct{ *bytes.Reader }

func (r *sizedReader) Size() int64 { return r.Reader.Size() }

// memAccount is a go-imap in-process server whose account "dst" can be
// re-created (a wiped account), counting the commands it serves.
type memAccount struct {
	mem    *imapmemserver.Server
	addr   string
	counts *cmdCounts
}

func startMemAccount(t *testing.T) *memAccount { return startMemAccountCaps(t, memCaps) }

// startMemAccountCaps is startMemAccount with other capabilities; without
// UIDPLUS, APPEND answers carry no APPENDUID.
func startMemAccountCaps(t *testing.T, caps imap.CapSet) *memAccount {
	t.Helper()
	m := &memAccount{mem: imapmemserver.New(), counts: &cmdCounts{n: map[string]int{}}}
	_, uidplus := caps[imap.CapUIDPlus]
	m.recreate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return countingSession{m.mem.NewSession(), m.counts, !uidplus}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
	})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.addr = ln.Addr().String()
	return m
}

// recreate replaces the account with a new, empty one (INBOX only): its
// folders start again at UIDVALIDITY 1 and UID 1, as before.
func (m *memAccount) recreate(t *testing.T) {
	u := imapmemserver.NewUser("dst", pass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	m.mem.AddUser(u)
}

// addUser adds another account with an empty INBOX.
func (m *memAccount) addUser(t *testing.T, name string) {
	u := imapmemserver.NewUser(name, pass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	m.mem.AddUser(u)
}

// recreateDovecotUser deletes a Dovecot user's home (mail and indexes) and
// creates the user again, as an administrator re-creating the account.
func recreateDovecotUser(t *testing.T, dv *dovecottest.Server, user string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Dir(dv.Maildir(user))); err != nil {
		t.Fatal(err)
	}
	if err := dv.CreateUser(user, pass); err != nil {
		t.Fatal(err)
	}
}

// deleteAllFolders deletes every folder but INBOX over IMAP and empties
// INBOX.
func deleteAllFolders(t *testing.T, addr, user string) {
	t.Helper()
	c := imaptest.Dial(t, addr, user, pass)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		if !strings.EqualFold(l.Mailbox, "INBOX") {
			names = append(names, l.Mailbox)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) }) // children first
	for _, n := range names {
		if err := c.Delete(n).Wait(); err != nil {
			t.Fatalf("DELETE %q: %v", n, err)
		}
	}
	expunge(t, c, "INBOX", nil)
}

// expunge deletes the messages with sequence numbers seqs of folder (all
// when nil).
func expunge(t *testing.T, c *imapclient.Client, folder string, seqs []uint32) {
	t.Helper()
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return
	}
	var set imap.SeqSet
	if seqs == nil {
		set.AddRange(1, 0)
	} else {
		set.AddNum(seqs...)
	}
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

// wipeSource is three folders of the corpus with flags, keywords and
// dates; a message is there twice. With exact, only the messages a server
// of that kind serves as given (the already-present rule cannot recognise
// the others: imapmemserver serves a message without a parsable header
// as empty).
func wipeSource(exact imaptest.Kind) *memSource {
	src := newSource()
	date := time.Date(2021, 6, 7, 8, 9, 10, 0, time.FixedZone("", 3600))
	for i, name := range []string{"INBOX", "Work", "Work/Projects"} {
		src.folder(name, '/', "")
		for j, m := range imaptest.Corpus() {
			if m.Name == "large-300k" && i > 0 || exact != "" && !bytes.Equal(imaptest.WantBody(exact, m.Body), m.Body) {
				continue
			}
			flags := []string{`\Seen`}
			if j%2 == 0 {
				flags = append(flags, `\Flagged`, "$Work", "Custom_kw")
			}
			src.add(name, m.Body, flags, date.Add(time.Duration(i*100+j)*time.Minute))
		}
	}
	c := imaptest.Corpus()[0]
	src.add("Work", c.Body, nil, date)
	src.add("Work", c.Body, nil, date)
	return src
}

// TestDestinationIsTheTruth restores, damages the destination in every way
// issue 17 lists, and restores again: each time exactly what is missing
// comes back, counted in Stats.Missing, with no duplicate anywhere. A rerun
// onto an intact destination costs one SELECT and one UID SEARCH per
// folder, and fetches nothing.
func TestDestinationIsTheTruth(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "wipe-true", "wipe-false")
	mem := startMemAccount(t)
	type server struct {
		name     string
		kind     imaptest.Kind
		tg       target
		recreate func(t *testing.T)
		counts   *cmdCounts
		exact    imaptest.Kind // wipeSource(exact)
	}
	var servers []server
	for _, raw := range []bool{true, false} {
		user := fmt.Sprintf("wipe-%v", raw)
		servers = append(servers, server{fmt.Sprintf("dovecot/pipelined=%v", raw), imaptest.Dovecot, target{dv.IMAPAddr, user, raw},
			func(t *testing.T) { recreateDovecotUser(t, dv, user) }, nil, ""})
	}
	servers = append(servers, server{"memimap", imaptest.MemIMAP, target{mem.addr, "dst", true}, mem.recreate, mem.counts, ""})
	// Without UIDPLUS nothing is recorded with a UID: every recorded
	// message goes through the already-present rule (Message-ID, size,
	// date; SHA-256 of the destination's copy without Message-ID).
	plain := startMemAccountCaps(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralPlus: {}})
	servers = append(servers, server{"memimap/no-UIDPLUS", imaptest.MemIMAP, target{plain.addr, "dst", true}, plain.recreate, nil, imaptest.MemIMAP})
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			src := wipeSource(s.exact)
			want := src.want(s.kind, nil)
			prog := newProgress()
			check := func(what string, missing int) {
				t.Helper()
				st, err := s.tg.run(context.Background(), src, prog, restore.Options{})
				noErr(t, what, st, err)
				if st.Appended != missing || st.Missing != missing || st.Skipped != src.total()-missing {
					t.Errorf("%s: appended %d, missing %d, skipped %d; want %d, %d, %d", what, st.Appended, st.Missing, st.Skipped, missing, missing, src.total()-missing)
				}
				if d := imaptest.Diff(want, s.tg.snapshot(t), nil); d != "" {
					t.Fatalf("%s: destination differs:\n%s", what, d)
				}
			}
			st, err := s.tg.run(context.Background(), src, prog, restore.Options{})
			noErr(t, "first restore", st, err)
			if st.Appended != src.total() || st.Missing != 0 {
				t.Fatalf("first restore: %+v", st)
			}
			if s.counts != nil {
				s.counts.take()
			}
			st, err = s.tg.run(context.Background(), src, prog, restore.Options{})
			noErr(t, "rerun onto an intact destination", st, err)
			if st.Appended != 0 || st.Missing != 0 || st.Skipped != src.total() {
				t.Errorf("rerun onto an intact destination: %+v", st)
			}
			if s.counts != nil {
				n := s.counts.take()
				if n["SELECT"] != len(src.folders) || n["SEARCH"] != len(src.folders) || n["FETCH"] != 0 || n["APPEND"] != 0 {
					t.Errorf("rerun onto an intact destination sent %v; want one SELECT and one SEARCH per folder (%d), no FETCH", n, len(src.folders))
				}
			}

			c := imaptest.Dial(t, s.tg.addr, s.tg.user, pass)
			expunge(t, c, "Work", []uint32{2, 5, 6})
			c.Close()
			check("three messages expunged", 3)

			c = imaptest.Dial(t, s.tg.addr, s.tg.user, pass)
			expunge(t, c, "Work/Projects", nil)
			c.Close()
			check("one folder emptied", len(src.msgs["Work/Projects"]))

			deleteAllFolders(t, s.tg.addr, s.tg.user)
			check("every folder deleted", src.total())

			s.recreate(t)
			check("account re-created", src.total())
			check("rerun after the re-creation", 0)
		})
	}
}

// killChildEnv tells TestKilledRestoreChild, run by TestKilledRestore as a
// child process, what to restore: "archive dir|address|user".
const killChildEnv = "MAILKEEP_TEST_KILLED_RESTORE"

// TestKilledRestoreChild is the restore that TestKilledRestore kills: it
// writes one byte to stdout per APPEND confirmed. Without killChildEnv it
// does nothing.
func TestKilledRestoreChild(t *testing.T) {
	spec := os.Getenv(killChildEnv)
	if spec == "" {
		return
	}
	p := strings.Split(spec, "|")
	if len(p) > 3 {
		// MULTIAPPEND batches this small: kills land in and between them.
		n, _ := strconv.Atoi(p[3])
		defer restore.SetBatchLimits(n, 1<<20)()
	}
	st, err := doRestore(t, p[0], p[1], p[2], restoreOpts{Options: restore.Options{Connections: 2, Progress: func(restore.Event) {
		os.Stdout.Write([]byte{'.'})
	}}})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("%v %v", err, st.Failures)
	}
}

// killedRestore runs TestKilledRestoreChild with spec (killChildEnv) and
// kills it (SIGKILL) once it has confirmed kill APPENDs; kill < 0 lets it
// finish. It returns the APPENDs confirmed and whether the child finished.
func killedRestore(t *testing.T, exe, spec string, kill, round int) (int, bool) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestKilledRestoreChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := 0
	buf := make([]byte, 1)
	for kill < 0 || n < kill {
		if _, err := out.Read(buf); err != nil {
			break // the child ended
		}
		if buf[0] == '.' {
			n++
		}
	}
	cmd.Process.Kill()
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if err == nil {
		return n, true
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("round %d: child failed: %v\n%s", round, err, stderr.String())
	}
	return n, false
}

// TestKilledRestore kills restores (SIGKILL, as kill -9) at random points,
// after 0 to 59 confirmed APPENDs (with up to 32 more in flight), until one
// finishes: the destination then holds every message exactly once, and a
// rerun appends nothing. On Dovecot (MULTIAPPEND batches of 1 to 12
// messages, several in flight) and on go-imap's in-process server (single
// pipelined APPENDs).
func TestKilledRestore(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "src", "dst")
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	// Not the corpus: imapmemserver serves some of it other than stored,
	// and a copy left in flight cannot be recognised then. Every tenth
	// message has no Message-ID; some are there twice.
	for i := 0; i < 240; i++ {
		j := i % 200 // 200 and up: the same message again, in the same folder
		body := fmt.Sprintf("Message-ID: <k%d@kill>\r\nSubject: %d\r\n\r\n%s\r\n", j, j, strings.Repeat("kill me softly ", 10+(j*997)%3000))
		if j%10 == 3 {
			body = fmt.Sprintf("Subject: no id %d\r\n\r\n%s\r\n", j, strings.Repeat("x", 100+j))
		}
		imaptest.Append(t, c, []string{"INBOX", "A", "B/C", "D"}[j%4], []string{`\Seen`, "$Label"}[:1+j%2], time.Date(2022, 1, 1, 0, j, 0, 0, time.UTC), []byte(body))
	}
	wantDovecot := imaptest.Snapshot(t, c, false)
	c.Close()
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)
	// imapmemserver serves some messages of the corpus other than it was
	// given (imaptest.WantBody): compare with an uninterrupted restore.
	mem := startMemAccount(t)
	mem.addUser(t, "ref")
	st, err := doRestore(t, dir, mem.addr, "ref", restoreOpts{})
	noErr(t, "reference restore", st, err)
	wantMem := imaptest.Snapshot(t, imaptest.Dial(t, mem.addr, "ref", pass), false)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	for _, tg := range []struct {
		name, addr, user string
		want             map[string][]imaptest.Msg
	}{{"dovecot", dv.IMAPAddr, "dst", wantDovecot}, {"memimap", mem.addr, "dst", wantMem}} {
		want := tg.want
		t.Run(tg.name, func(t *testing.T) {
			finished := false
			for round := 0; round < 30 && !finished; round++ {
				kill := rng.IntN(60)
				if round == 29 {
					kill = -1 // let it finish
				}
				var n int
				n, finished = killedRestore(t, exe, dir+"|"+tg.addr+"|"+tg.user+"|"+strconv.Itoa(1+rng.IntN(12)), kill, round)
				t.Logf("round %d: killed after %d of %d APPENDs (finished: %v)", round, n, kill, finished)
			}
			got := imaptest.Snapshot(t, imaptest.Dial(t, tg.addr, tg.user, pass), false)
			if d := imaptest.Diff(nonEmpty(want), nonEmpty(got), nil); d != "" {
				t.Fatalf("after killed restores:\n%s", d)
			}
			st, err := doRestore(t, dir, tg.addr, tg.user, restoreOpts{})
			noErr(t, "rerun", st, err)
			if st.Appended != 0 || st.Missing != 0 || st.Skipped != total(want) {
				t.Fatalf("rerun: %+v", st)
			}
		})
	}
}

// TestReadOnlyArchive restores from an archive opened read-only (as on
// read-only media): the progress record cannot be written, the restore
// goes on without it and says so (Stats.ProgressNotRecorded), and a rerun
// finds everything on the destination.
func TestReadOnlyArchive(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "src", "dst")
	c := imaptest.Dial(t, dv.IMAPAddr, "src", pass)
	fill(t, c, []string{"INBOX", "A", "B/C"})
	want := imaptest.Snapshot(t, c, false)
	c.Close()
	dir := t.TempDir()
	backup(t, dv.IMAPAddr, "src", dir, archive.MboxZstd)
	run := func() restore.Stats {
		t.Helper()
		a, err := archive.Open(dir, archive.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		src, err := archivesrc.New(t.Context(), a, 0, archivesrc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		dial := func(ctx context.Context) (*imapclient.Client, error) {
			return imapconn.Dial(ctx, acct(dv.IMAPAddr, "dst"))
		}
		st, err := restore.Run(context.Background(), dial, restore.Destination{Server: dv.IMAPAddr, User: "dst"}, src, src, restore.Options{})
		noErr(t, "restore", st, err)
		return st
	}
	st := run()
	if st.Appended != total(want) || !st.ProgressNotRecorded {
		t.Fatalf("restore from a read-only archive: %+v", st)
	}
	if d := imaptest.Diff(nonEmpty(want), nonEmpty(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "dst", pass), false)), nil); d != "" {
		t.Fatal(d)
	}
	st = run()
	if st.Appended != 0 || st.Skipped != total(want) || !st.ProgressNotRecorded {
		t.Fatalf("rerun from a read-only archive: %+v", st)
	}
}

// BenchmarkRerunIntact reruns a restore of about 2,000 messages in 5
// folders onto a destination that holds them all: the destination check
// costs one SELECT and one UID SEARCH per folder.
func BenchmarkRerunIntact(b *testing.B) {
	dv := dovecottest.Start(b, nil)
	dv.AddUser(b, "bench", pass)
	src, _ := benchSource(2000)
	tg := target{dv.IMAPAddr, "bench", true}
	prog := newProgress()
	if st, err := tg.run(context.Background(), src, prog, restore.Options{}); err != nil || st.Appended != src.total() {
		b.Fatalf("%+v %v", st, err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := tg.run(context.Background(), src, prog, restore.Options{})
		if err != nil || st.Skipped != src.total() {
			b.Fatalf("%+v %v", st, err)
		}
	}
}
