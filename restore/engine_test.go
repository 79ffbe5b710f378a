package restore_test

// Tests of the engine against real servers (a private Dovecot, go-imap's
// in-process server), fed by an in-memory Source: the archive side has its
// own tests (restore_test.go runs the whole way from a backup).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// memSource is a restore.Source backed by byte slices.
type memSource struct {
	folders []restore.Folder
	msgs    map[string][]restore.Message
	bodies  map[string][]byte // key -> bytes
}

func newSource() *memSource {
	return &memSource{msgs: map[string][]restore.Message{}, bodies: map[string][]byte{}}
}

func (s *memSource) folder(name string, delim rune, specialUse string) {
	s.folders = append(s.folders, restore.Folder{Name: name, Delim: delim, SpecialUse: specialUse})
}

// add appends a message to a folder (which must have been added) and
// returns a pointer to it, to spoil it.
func (s *memSource) add(folder string, body []byte, flags []string, date time.Time) *restore.Message {
	key := fmt.Sprintf("%s#%d", folder, len(s.msgs[folder]))
	sum := sha256.Sum256(body)
	s.bodies[key] = body
	s.msgs[folder] = append(s.msgs[folder], restore.Message{
		Key: key, Flags: flags, InternalDate: date, Size: int64(len(body)),
		SHA256: hex.EncodeToString(sum[:]), MessageID: messageID(body),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	})
	return &s.msgs[folder][len(s.msgs[folder])-1]
}

func (s *memSource) Folders(ctx context.Context) ([]restore.Folder, error) {
	return s.folders, nil
}

func (s *memSource) Messages(ctx context.Context, f restore.Folder, fn func(restore.Message) error) error {
	for _, m := range s.msgs[f.Name] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) total() int {
	n := 0
	for _, m := range s.msgs {
		n += len(m)
	}
	return n
}

// messageID is the Message-ID header's value, as an archive records it.
func messageID(b []byte) string {
	hdr, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	for _, l := range strings.Split(strings.ReplaceAll(string(hdr), "\r\n", "\n"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.Trim(v, " <>")
		}
	}
	return ""
}

// want is the snapshot a server of kind k should hold after restoring s
// (by source folder name; pass the name mapping to imaptest.Diff). Flags
// are those given, less \Recent and those drop says the server refuses.
func (s *memSource) want(k imaptest.Kind, drop func(flag string) bool) map[string][]imaptest.Msg {
	out := map[string][]imaptest.Msg{}
	for _, f := range s.folders {
		out[f.Name] = []imaptest.Msg{}
		for _, m := range s.msgs[f.Name] {
			var flags []string
			for _, fl := range m.Flags {
				if !strings.EqualFold(fl, `\Recent`) && (drop == nil || !drop(fl)) {
					flags = append(flags, fl)
				}
			}
			sort.Strings(flags)
			sum := sha256.Sum256(imaptest.WantBody(k, s.bodies[m.Key]))
			out[f.Name] = append(out[f.Name], imaptest.Msg{Flags: flags, InternalDate: m.InternalDate.UTC(), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	return out
}

// memProgress is a restore.Progress in memory. forget makes it record
// nothing (a crash after every OK); failAt makes the failAt-th record fail.
type memProgress struct {
	mu     sync.Mutex
	done   map[string]restore.Restored
	forget bool
	failAt int
	marks  int
}

func newProgress() *memProgress { return &memProgress{done: map[string]restore.Restored{}} }

func (p *memProgress) IsRestored(ctx context.Context, d restore.Destination, key string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.done[d.Server+"|"+d.User+"|"+key]
	return ok, nil
}

// RestoredIn makes memProgress a restore.Lister.
func (p *memProgress) RestoredIn(ctx context.Context, d restore.Destination, folder string) (map[string]restore.Restored, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]restore.Restored{}
	pre := d.Server + "|" + d.User + "|"
	for k, r := range p.done {
		if key, ok := strings.CutPrefix(k, pre); ok && r.Folder == folder {
			out[key] = r
		}
	}
	return out, nil
}

func (p *memProgress) MarkRestored(ctx context.Context, d restore.Destination, key string, r restore.Restored) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marks++
	if p.marks == p.failAt {
		return errors.New("simulated crash before the record")
	}
	if !p.forget {
		p.done[d.Server+"|"+d.User+"|"+key] = r
	}
	return nil
}

// target is a destination account and how to reach it.
type target struct {
	addr, user string
	raw        bool // pipeline APPENDs over a raw LITERAL+ connection
}

func (tg target) cfg() imapconn.Config {
	return imapconn.Config{Addr: tg.addr, TLS: imapconn.TLSNone, User: tg.user, Password: pass}
}

func (tg target) run(ctx context.Context, src restore.Source, prog restore.Progress, opt restore.Options) (restore.Stats, error) {
	dial := func(ctx context.Context) (*imapclient.Client, error) { return imapconn.Dial(ctx, tg.cfg()) }
	if tg.raw {
		opt.DialRaw = func(ctx context.Context) (restore.AppendConn, error) { return imapconn.DialRaw(ctx, tg.cfg()) }
	}
	return restore.Run(ctx, dial, restore.Destination{Server: tg.addr, User: tg.user}, src, prog, opt)
}

func (tg target) snapshot(t *testing.T) map[string][]imaptest.Msg {
	t.Helper()
	c := imaptest.Dial(t, tg.addr, tg.user, pass)
	defer c.Close()
	return imaptest.Snapshot(t, c, false)
}

// nastySource is every nasty folder (and INBOX) holding the corpus, with
// keywords, \Recent, an invalid keyword, and a message twice.
func nastySource(delim rune) (*memSource, int) {
	s := newSource()
	invalid := 0
	for i, name := range append([]string{"INBOX"}, imaptest.NastyFolders(delim)...) {
		s.folder(name, delim, "")
		for j, m := range imaptest.Corpus() {
			if (i+j)%3 == 1 || m.Name == "large-300k" && i%4 != 0 {
				continue
			}
			flags := slices.Clone(m.Flags)
			if j%3 == 0 {
				flags = append(flags, `\Flagged`, "$Work", "Custom_kw", `\Recent`)
			}
			if j%5 == 0 {
				flags = append(flags, "not valid")
				invalid++
			}
			s.add(name, m.Body, flags, m.Date.Add(time.Duration(i)*time.Hour))
		}
	}
	c := imaptest.Corpus()[0]
	s.add("INBOX", c.Body, nil, c.Date)
	s.add("INBOX", c.Body, nil, c.Date)
	return s, invalid
}

// addUsers creates destination accounts. Dovecot notices changes of its
// users file by modification time, so a test adds all its users at once,
// before any login.
func addUsers(t *testing.T, dv *dovecottest.Server, users ...string) {
	t.Helper()
	for _, u := range users {
		dv.AddUser(t, u, pass)
	}
}

func noErr(t *testing.T, what string, st restore.Stats, err error) {
	t.Helper()
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("%s: %v, failures %v", what, err, st.Failures)
	}
}

// TestNastyTreeRoundTrip restores awkward folder names and messages into an
// empty Dovecot, compares everything, then reruns: with the progress
// record (nothing to do), and without it (every message found already
// present on the server, including those without Message-ID and those
// Dovecot stores with CRLF for bare LF).
func TestNastyTreeRoundTrip(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "nasty-true", "nasty-false")
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%v", raw), func(t *testing.T) {
			tg := target{dv.IMAPAddr, fmt.Sprintf("nasty-%v", raw), raw}
			src, invalid := nastySource('/')
			prog := newProgress()
			st, err := tg.run(context.Background(), src, prog, restore.Options{})
			noErr(t, "restore", st, err)
			if st.Appended != src.total() || st.Skipped != 0 || st.KeywordsDropped != invalid || st.Folders != len(src.folders) {
				t.Errorf("stats %+v; want %d appended, %d keywords dropped, %d folders", st, src.total(), invalid, len(src.folders))
			}
			want := src.want(imaptest.Dovecot, func(f string) bool { return f == "not valid" })
			if d := imaptest.Diff(want, tg.snapshot(t), nil); d != "" {
				t.Fatalf("destination differs:\n%s", d)
			}
			st, err = tg.run(context.Background(), src, prog, restore.Options{})
			noErr(t, "rerun", st, err)
			if st.Appended != 0 || st.Skipped != src.total() || st.Created != 0 {
				t.Errorf("rerun: %+v; want nothing appended or created, %d skipped", st, src.total())
			}
			// The progress record lost: the destination is checked instead.
			fresh := newProgress()
			st, err = tg.run(context.Background(), src, fresh, restore.Options{})
			noErr(t, "rerun without progress", st, err)
			if st.Appended != 0 || st.Skipped != src.total() {
				t.Errorf("rerun without progress: %+v; want 0 appended, %d skipped", st, src.total())
			}
			if len(fresh.done) != src.total() {
				t.Errorf("rerun without progress recorded %d messages, want %d", len(fresh.done), src.total())
			}
			if d := imaptest.Diff(want, tg.snapshot(t), nil); d != "" {
				t.Fatalf("after reruns:\n%s", d)
			}
		})
	}
}

// TestAlreadyPresent: the destination holds some of the messages already
// (another tool, or an OK the progress record missed).
func TestAlreadyPresent(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "dst", pass)
	tg := target{dv.IMAPAddr, "dst", true}
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	a := []byte("Message-ID: <same@x>\r\nSubject: a\r\n\r\nfirst\r\n")
	b := []byte("Message-ID: <same@x>\r\nSubject: b\r\n\r\nsecond, longer\r\n") // same ID, other size
	c := []byte("Message-ID: <same@x>\r\nSubject: c\r\n\r\nfirst\r\n")          // same ID and size, other date
	noID := []byte("Subject: no id\r\n\r\nbody one\r\n")                        // no Message-ID, on the server
	noID2 := []byte("Subject: no id\r\n\r\nbody two\r\n")                       // same size and date, other bytes
	lf := []byte("Message-ID: <lf@x>\nSubject: bare LF\n\nstored with CRLF\n")  // Dovecot's copy differs in size
	lfNoID := []byte("Subject: bare LF, no id\n\nstored with CRLF as well\n")   // and in SHA-256
	src := newSource()
	src.folder("INBOX", '/', "")
	for _, m := range [][]byte{a, b, noID, noID2, lf, lfNoID, a} {
		src.add("INBOX", m, []string{`\Seen`}, date)
	}
	src.add("INBOX", c, nil, date.Add(time.Hour))
	dc := imaptest.Dial(t, dv.IMAPAddr, "dst", pass)
	for _, m := range [][]byte{a, noID, lf, lfNoID} {
		imaptest.Append(t, dc, "INBOX", []string{`\Seen`}, date, m)
	}
	st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
	noErr(t, "restore", st, err)
	// a (once: the second copy in the source is a second message), noID,
	// lf and lfNoID are there; b, noID2, the second a and c are not.
	if st.Skipped != 4 || st.Appended != 4 {
		t.Fatalf("skipped %d appended %d; want 4 and 4", st.Skipped, st.Appended)
	}
	if d := imaptest.Diff(src.want(imaptest.Dovecot, nil), tg.snapshot(t), nil); d != "" {
		t.Fatal(d)
	}
}

// TestNamespaceAndDelimiter restores into a server with personal namespace
// "INBOX." and delimiter '.', under a prefix; a folder with a '.' in a
// name component cannot be represented and fails alone.
func TestNamespaceAndDelimiter(t *testing.T) {
	dv := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	dv.AddUser(t, "dst", pass)
	date := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := func(s string) []byte {
		return []byte("Message-ID: <" + s + "@ns>\r\nSubject: " + s + "\r\n\r\n" + s + "\r\n")
	}
	cases := []struct {
		prefix string
		mapped map[string]string // source name -> destination name; "" = fails
	}{
		{"", map[string]string{
			"INBOX": "INBOX", "Work": "INBOX.Work", "Work/Projects": "INBOX.Work.Projects",
			"inbox/Child": "INBOX.Child", "Größe & Co": "INBOX.Größe & Co", "v1.2": "",
		}},
		{"Restored/2026", map[string]string{
			"INBOX": "INBOX.Restored.2026.INBOX", "Work/Projects": "INBOX.Restored.2026.Work.Projects", "a.b/c": "",
		}},
	}
	for _, tc := range cases {
		t.Run("prefix="+tc.prefix, func(t *testing.T) {
			src := newSource()
			var names []string
			for n := range tc.mapped {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				src.folder(n, '/', "")
				src.add(n, msg(n), []string{`\Seen`}, date)
			}
			tg := target{dv.IMAPAddr, "dst", true}
			before := tg.snapshot(t)
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{Prefix: tc.prefix})
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Failures) != 1 || !errors.Is(st.Failures[0], restore.ErrUnrepresentable) || !strings.Contains(st.Failures[0].Error(), `contains the destination's hierarchy delimiter '.'`) {
				t.Fatalf("failures %v; want one for the name with a '.'", st.Failures)
			}
			var fe *restore.FolderError
			if !errors.As(st.Failures[0], &fe) || tc.mapped[fe.Folder] != "" {
				t.Fatalf("failure %v names the wrong folder", st.Failures[0])
			}
			got := tg.snapshot(t)
			for _, n := range names {
				d := tc.mapped[n]
				if d == "" {
					continue
				}
				if len(got[d])-len(before[d]) != 1 {
					t.Errorf("%q -> %q: %d new messages, want 1 (folders %v)", n, d, len(got[d])-len(before[d]), keys(got))
				}
			}
			if st.Appended != len(names)-1 {
				t.Errorf("appended %d, want %d", st.Appended, len(names)-1)
			}
		})
	}
}

// cutProxy forwards TCP connections to a server and can cut all open ones.
type cutProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut drops every connection open now (as a network failure would: RST).
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	p.conns = nil
}

// TestResumeAfterInterruption stops restores part way, by cancelling the
// context and by dropping the connections, and checks that reruns finish
// the job with exact counts and no duplicate.
func TestResumeAfterInterruption(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	src := newSource()
	date := time.Date(2019, 5, 6, 7, 8, 9, 0, time.FixedZone("", -5*3600))
	for f, name := range []string{"INBOX", "A", "B/C", "D"} {
		src.folder(name, '/', "")
		for i := 0; i < 40; i++ {
			body := fmt.Sprintf("Message-ID: <%d.%d@resume>\r\nSubject: %d\r\n\r\n%s\r\n", f, i, i, strings.Repeat("line of text\r\n", i*37))
			if i%7 == 3 {
				body = fmt.Sprintf("Subject: no id %d\r\n\r\n%s\r\n", i, strings.Repeat("x", i*11))
			}
			src.add(name, []byte(body), []string{`\Seen`, "$Label" + fmt.Sprint(i%3)}, date.Add(time.Duration(i)*time.Minute))
		}
	}
	want := src.want(imaptest.Dovecot, nil)
	addUsers(t, dv, "cancel-true", "cancel-false", "cut-true", "cut-false")
	for _, how := range []string{"cancel", "cut"} {
		for _, raw := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/pipelined=%v", how, raw), func(t *testing.T) {
				user := fmt.Sprintf("%s-%v", how, raw)
				proxy := newCutProxy(t, dv.IMAPAddr)
				tg := target{proxy.addr(), user, raw}
				prog := newProgress()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var once sync.Once
				n := 0
				var mu sync.Mutex
				opt := restore.Options{Connections: 2, Progress: func(restore.Event) {
					mu.Lock()
					n++
					hit := n == 25
					mu.Unlock()
					if hit {
						once.Do(func() {
							if how == "cancel" {
								cancel()
							} else {
								proxy.cut()
							}
						})
					}
				}}
				st1, err := tg.run(ctx, src, prog, opt)
				switch how {
				case "cancel":
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("cancelled run returned %v", err)
					}
				case "cut":
					if err != nil || len(st1.Failures) == 0 {
						t.Fatalf("cut run: %v, failures %v; want failures", err, st1.Failures)
					}
					// A folder cut while sending names the message; one cut
					// while being selected or indexed names none.
					keyed := 0
					for _, f := range st1.Failures {
						var fe *restore.FolderError
						if !errors.As(f, &fe) || fe.Folder == "" {
							t.Errorf("failure %v does not name its folder", f)
						} else if fe.Key != "" {
							keyed++
						}
					}
					if keyed == 0 {
						t.Errorf("no failure names a message: %v", st1.Failures)
					}
				}
				if st1.Appended < 25 || st1.Appended >= src.total() {
					t.Fatalf("interrupted run appended %d of %d", st1.Appended, src.total())
				}
				st2, err := tg.run(context.Background(), src, prog, restore.Options{Connections: 2})
				noErr(t, "resumed run", st2, err)
				// Everything recorded is skipped; APPENDs the first run had
				// in flight are found on the server.
				if st2.Appended+st2.Skipped != src.total() || st2.Skipped < st1.Appended {
					t.Errorf("first run appended %d; resumed run appended %d, skipped %d; want a sum of %d", st1.Appended, st2.Appended, st2.Skipped, src.total())
				}
				if d := imaptest.Diff(want, tg.snapshot(t), nil); d != "" {
					t.Fatalf("after the resumed run:\n%s", d)
				}
				st3, err := tg.run(context.Background(), src, prog, restore.Options{})
				noErr(t, "third run", st3, err)
				if st3.Appended != 0 || st3.Skipped != src.total() {
					t.Errorf("third run: appended %d, skipped %d", st3.Appended, st3.Skipped)
				}
			})
		}
	}
}

// TestCrashBetweenOKAndRecord: the record after the server's OK fails (as
// a crash at that instant would leave it); the rerun finds the message on
// the server instead of appending it again.
func TestCrashBetweenOKAndRecord(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "crash-true", "crash-false")
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%v", raw), func(t *testing.T) {
			user := fmt.Sprintf("crash-%v", raw)
			tg := target{dv.IMAPAddr, user, raw}
			src := newSource()
			src.folder("INBOX", '/', "")
			for i := 0; i < 20; i++ {
				body := fmt.Sprintf("Message-ID: <%d@crash>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
				if i == 7 {
					body = "Subject: no Message-ID\r\n\r\nbody\r\n"
				}
				src.add("INBOX", []byte(body), nil, time.Date(2020, 1, 1, 0, i, 0, 0, time.UTC))
			}
			prog := newProgress()
			prog.failAt = 8 // the message without Message-ID
			st, err := tg.run(context.Background(), src, prog, restore.Options{Connections: 1})
			if err != nil || len(st.Failures) != 1 || !strings.Contains(st.Failures[0].Error(), "simulated crash") || !strings.Contains(st.Failures[0].Error(), "INBOX#7") {
				t.Fatalf("first run: %v, failures %v; want one naming INBOX#7", err, st.Failures)
			}
			if st.Appended != 7 {
				t.Fatalf("first run recorded %d, want 7", st.Appended)
			}
			prog.failAt = 0
			st, err = tg.run(context.Background(), src, prog, restore.Options{})
			noErr(t, "rerun", st, err)
			if st.Appended+st.Skipped != 20 || st.Skipped < 8 {
				t.Fatalf("rerun: appended %d, skipped %d; want at least 8 skipped, 20 in all", st.Appended, st.Skipped)
			}
			if d := imaptest.Diff(src.want(imaptest.Dovecot, nil), tg.snapshot(t), nil); d != "" {
				t.Fatalf("duplicates or losses:\n%s", d)
			}
		})
	}
}

// spoiled returns a copy of b with one byte changed at i.
func spoiled(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x20
	return c
}

// TestDamaged: a message whose bytes do not match, one that cannot be
// opened, one short, and a large one that changes between the checking
// read and the sending one are counted and named; none reaches the server
// and the others are restored.
func TestDamaged(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	big, err := io.ReadAll(imaptest.BigMessage(3 << 20))
	if err != nil {
		t.Fatal(err)
	}
	addUsers(t, dv, "damaged-true", "damaged-false")
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%v", raw), func(t *testing.T) {
			user := fmt.Sprintf("damaged-%v", raw)
			tg := target{dv.IMAPAddr, user, raw}
			src := newSource()
			src.folder("INBOX", '/', "")
			good := newSource()
			good.folder("INBOX", '/', "")
			date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < 12; i++ {
				body := []byte(fmt.Sprintf("Message-ID: <%d@damaged>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i))
				if i == 9 {
					body = big
				}
				m := src.add("INBOX", body, nil, date.Add(time.Duration(i)*time.Minute))
				switch i {
				case 2: // bit rot
					bad := spoiled(body, len(body)-3)
					m.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bad)), nil }
				case 4: // unreadable
					m.Open = func() (io.ReadCloser, error) { return nil, errors.New("input/output error") }
				case 6: // truncated
					m.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body[:len(body)-1])), nil }
				case 9: // good when checked, bad when sent: in its last byte, and in the middle
					opens := 0
					m.Open = func() (io.ReadCloser, error) {
						opens++
						b := body
						if opens == 2 {
							b = spoiled(body, len(body)-2)
						}
						return io.NopCloser(bytes.NewReader(b)), nil
					}
				case 10:
					mid := spoiled(body, len(body)/2)
					opens := 0
					m.Open = func() (io.ReadCloser, error) {
						opens++
						if opens == 2 {
							return io.NopCloser(bytes.NewReader(mid)), nil
						}
						return io.NopCloser(bytes.NewReader(body)), nil
					}
				default:
					good.add("INBOX", body, nil, date.Add(time.Duration(i)*time.Minute))
				}
			}
			// Message 10 is small: it is read once, so the spoiled second
			// read never happens and it is restored.
			good.add("INBOX", src.bodies["INBOX#10"], nil, date.Add(10*time.Minute))
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Damaged != 4 || st.Appended != 8 || len(st.Failures) != 4 {
				t.Fatalf("damaged %d appended %d failures %v; want 4, 8, 4", st.Damaged, st.Appended, st.Failures)
			}
			for i, key := range []string{"INBOX#2", "INBOX#4", "INBOX#6", "INBOX#9"} {
				f := st.Failures[i]
				if !errors.Is(f, restore.ErrDamaged) || !strings.Contains(f.Error(), key) {
					t.Errorf("failure %d: %v; want ErrDamaged naming %s", i, f, key)
				}
			}
			if d := imaptest.Diff(good.want(imaptest.Dovecot, nil), tg.snapshot(t), nil); d != "" {
				t.Fatalf("server holds other than the good messages:\n%s", d)
			}
		})
	}
}

// memCaps are those of memimap less IMAP4rev2, which a wrapped session
// would have to implement.
var memCaps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}}

// memServer starts go-imap's in-memory server with sessions wrapped by
// wrap, and returns its address. User "dst" has an INBOX.
func memServer(t *testing.T, caps imap.CapSet, wrap func(imapserver.Session) imapserver.Session) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("dst", pass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return wrap(mem.NewSession()), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
	})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// refusing refuses APPENDs of messages containing "REFUSE-ME" (after
// reading them), and literals over 50 KB (before: NO [TOOBIG]).
type refusing struct{ imapserver.Session }

func (s refusing) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("REFUSE-ME")) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "policy says no"}
	}
	return s.Session.Append(mailbox, bytes.NewReader(b), options)
}

func (s refusing) AppendLimit() uint32 { return 50_000 }

// TestServerRefuses: a NO for one APPEND fails that message alone, both
// after the literal (LITERAL+ pipelining and go-imap) and before it
// (go-imap's synchronising literal: the client must reconnect). A message
// refused as too big ([TOOBIG], sent despite APPENDLIMIT here to exercise
// the refusal) is skipped and named in Stats.TooBig, not a failure.
func TestServerRefuses(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%v", raw), func(t *testing.T) {
			addr := memServer(t, memCaps, func(s imapserver.Session) imapserver.Session { return refusing{s} })
			src := newSource()
			src.folder("INBOX", '/', "")
			good := newSource()
			good.folder("INBOX", '/', "")
			date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			wantFail := []string{"INBOX#3"}
			var wantTooBig []string
			defer restore.IgnoreAppendLimit()()
			for i := 0; i < 10; i++ {
				body := fmt.Sprintf("Message-ID: <%d@no>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
				switch {
				case i == 3:
					body += "REFUSE-ME\r\n"
				case i == 6 && !raw: // too big: refused before the literal
					body += strings.Repeat("z", 60_000) + "\r\n"
					wantTooBig = append(wantTooBig, "INBOX#6")
				}
				src.add("INBOX", []byte(body), []string{`\Seen`}, date.Add(time.Duration(i)*time.Minute))
				if k := fmt.Sprintf("INBOX#%d", i); !slices.Contains(wantFail, k) && !slices.Contains(wantTooBig, k) {
					good.add("INBOX", []byte(body), []string{`\Seen`}, date.Add(time.Duration(i)*time.Minute))
				}
			}
			tg := target{addr, "dst", raw}
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Appended != 10-len(wantFail)-len(wantTooBig) || len(st.Failures) != len(wantFail) || st.Damaged != 0 || len(st.TooBig) != len(wantTooBig) {
				t.Fatalf("%+v; want %d appended, failures for %v, too big %v", st, 10-len(wantFail)-len(wantTooBig), wantFail, wantTooBig)
			}
			for i, tb := range st.TooBig {
				if tb.Folder != "INBOX" || tb.Message != wantTooBig[i] || !strings.Contains(tb.Text, "TOOBIG") {
					t.Errorf("too big %+v; want INBOX %s refused with TOOBIG", tb, wantTooBig[i])
				}
			}
			for i, f := range st.Failures {
				if !strings.Contains(f.Error(), wantFail[i]) {
					t.Errorf("failure %v; want it to name %s", f, wantFail[i])
				}
			}
			if d := imaptest.Diff(good.want(imaptest.MemIMAP, nil), tg.snapshot(t), nil); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// systemOnly is a session whose folders keep only system flags.
type systemOnly struct{ imapserver.Session }

func (s systemOnly) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := s.Session.Select(mailbox, options)
	if d != nil {
		d.PermanentFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "$Allowed"}
	}
	return d, err
}

// TestKeywordsNotPermanent: keywords a folder does not list in PERMANENTFLAGS
// (and non-standard system flags) are dropped and counted, the rest kept.
func TestKeywordsNotPermanent(t *testing.T) {
	addr := memServer(t, memCaps, func(s imapserver.Session) imapserver.Session { return systemOnly{s} })
	src := newSource()
	src.folder("INBOX", '/', "")
	src.folder("Box", '/', "")
	date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	src.add("INBOX", []byte("Subject: a\r\n\r\na\r\n"), []string{`\Seen`, "$Keep", "Extra", "$allowed", `\Recent`}, date)
	src.add("Box", []byte("Subject: b\r\n\r\nb\r\n"), []string{`\Answered`, `\Important`, "Extra"}, date)
	src.add("Box", []byte("Subject: c\r\n\r\nc\r\n"), []string{`\Draft`}, date)
	st, err := target{addr, "dst", true}.run(context.Background(), src, newProgress(), restore.Options{})
	noErr(t, "restore", st, err)
	if st.Appended != 3 || st.KeywordsDropped != 4 {
		t.Fatalf("%+v; want 3 appended, 4 keywords dropped", st)
	}
	// The report of each folder names them.
	notSent := map[string]string{}
	for _, r := range st.Reports {
		notSent[r.Folder] = strings.Join(r.FlagsNotSent, " ")
	}
	if notSent["INBOX"] != "$Keep Extra" || notSent["Box"] != `Extra \Important` {
		t.Errorf("flags not sent, by folder: %q", notSent)
	}
	allowed := func(f string) bool { return strings.HasPrefix(f, `\`) && f != `\Important` || f == "$allowed" }
	if d := imaptest.Diff(src.want(imaptest.MemIMAP, func(f string) bool { return !allowed(f) }), target{addr, "dst", true}.snapshot(t), nil); d != "" {
		t.Fatal(d)
	}
}

// TestSpecialUse maps folders by special-use attribute and by well-known
// name onto a destination whose \Sent and \Trash have other names.
func TestSpecialUse(t *testing.T) {
	dv := dovecottest.Start(t, &dovecottest.Options{ExtraConfig: renamedSpecialUse})
	src := newSource()
	for _, f := range []struct{ name, su string }{
		{"INBOX", ""}, {"Sent Items", ""}, {"Trash", ""}, {"[Gmail]", ""}, {"[Gmail]/Bin", `\Trash`}, {"Work", ""}, {"Work/Sent", ""}, {"Drafts", ""},
	} {
		src.folder(f.name, '/', f.su)
		src.add(f.name, []byte("Message-ID: <"+f.name+"@su>\r\nSubject: "+f.name+"\r\n\r\nx\r\n"), nil, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	cases := []struct {
		opt    restore.Options
		mapped map[string]string
	}{
		// Trash (a well-known name) and [Gmail]/Bin (\Trash) would share
		// the destination's trash: the attribute wins, Trash keeps its name.
		{restore.Options{}, map[string]string{"Sent Items": "Sent Messages", "[Gmail]/Bin": "Deleted Messages"}},
		{restore.Options{NoSpecialUse: true}, map[string]string{}},
		{restore.Options{Prefix: "Old"}, map[string]string{}},
	}
	addUsers(t, dv, "su0", "su1", "su2")
	for i, tc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			user := fmt.Sprintf("su%d", i)
			tg := target{dv.IMAPAddr, user, true}
			st, err := tg.run(context.Background(), src, newProgress(), tc.opt)
			noErr(t, "restore", st, err)
			got := tg.snapshot(t)
			for _, f := range src.folders {
				d := f.Name
				if m, ok := tc.mapped[d]; ok {
					d = m
				}
				if tc.opt.Prefix != "" {
					d = tc.opt.Prefix + "/" + d
				}
				n := 0
				for _, m := range got[d] {
					if m.SHA256 == src.msgs[f.Name][0].SHA256 {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%q: want its message in %q (folders %v)", f.Name, d, keys(got))
				}
			}
		})
	}
}

// TestDryRun reports what it would do and changes nothing.
func TestDryRun(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "dst", pass)
	tg := target{dv.IMAPAddr, "dst", true}
	date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	src := newSource()
	src.folder("INBOX", '/', "")
	src.folder("New/Folder", '/', "")
	there := []byte("Message-ID: <there@dry>\r\n\r\nx\r\n")
	src.add("INBOX", there, nil, date)
	src.add("INBOX", []byte("Message-ID: <new@dry>\r\n\r\ny\r\n"), []string{`\Seen`, "$Kw"}, date)
	src.add("New/Folder", []byte("Message-ID: <new2@dry>\r\n\r\nz\r\n"), nil, date)
	imaptest.Append(t, imaptest.Dial(t, dv.IMAPAddr, "dst", pass), "INBOX", nil, date, there)
	before := tg.snapshot(t)
	var out bytes.Buffer
	prog := newProgress()
	st, err := tg.run(context.Background(), src, prog, restore.Options{DryRun: true, DryRunOutput: &out})
	noErr(t, "dry run", st, err)
	if st.Created != 1 || st.Appended != 2 || st.Skipped != 1 {
		t.Errorf("dry run %+v; want 1 created, 2 appended, 1 skipped", st)
	}
	if d := imaptest.Diff(before, tg.snapshot(t), nil); d != "" {
		t.Errorf("dry run changed the server:\n%s", d)
	}
	if len(prog.done) != 0 {
		t.Errorf("dry run recorded progress: %v", prog.done)
	}
	for _, w := range []string{`would create folder "New/Folder"`, `would append to "INBOX" from "INBOX": INBOX#1`, `would append to "New/Folder" from "New/Folder": New/Folder#0`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("dry-run report lacks %q:\n%s", w, out.String())
		}
	}
}

// TestLargeMessageMemory restores a 64 MB message, which must stream:
// the heap stays far below its size.
func TestLargeMessageMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dv := dovecottest.Start(t, nil)
	const size = 64 << 20
	h := sha256.New()
	io.Copy(h, imaptest.BigMessage(size))
	src := newSource()
	src.folder("INBOX", '/', "")
	src.msgs["INBOX"] = []restore.Message{{
		Key: "big", Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), InternalDate: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(imaptest.BigMessage(size)), nil },
	}}
	addUsers(t, dv, "big-true", "big-false")
	for _, raw := range []bool{true, false} {
		user := fmt.Sprintf("big-%v", raw)
		tg := target{dv.IMAPAddr, user, raw}
		peak := heapPeak(t, func() {
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
			noErr(t, "restore", st, err)
		})
		if peak > 40<<20 {
			t.Errorf("pipelined=%v: heap peaked at %d MB restoring a %d MB message", raw, peak>>20, size>>20)
		}
		// Without Message-ID and progress, the rerun compares the
		// destination's copy by streaming it through SHA-256.
		peak = heapPeak(t, func() {
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
			noErr(t, "rerun", st, err)
			if st.Skipped != 1 {
				t.Errorf("rerun: %+v; want it skipped", st)
			}
		})
		if peak > 40<<20 {
			t.Errorf("pipelined=%v: heap peaked at %d MB comparing a %d MB message", raw, peak>>20, size>>20)
		}
	}
}

// heapPeak runs f and returns how far the heap grew above its size
// before f, sampled every few milliseconds.
func heapPeak(t *testing.T, f func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
				peak = ms.HeapAlloc - base
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak
}
