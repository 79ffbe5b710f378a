package restore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// TestMultiAppendDovecot restores the nasty tree (keywords, dates, the
// corpus's odd messages, one over 1 MB) into Dovecot in MULTIAPPEND
// batches of at most 5 messages or 200 KB: the destination holds every
// message exactly (bytes, flags, keywords, INTERNALDATE), each message's
// progress record carries the UID its batch's APPENDUID range gave it (the
// very message there), --verify finds every copy exact (but for Dovecot's
// CRLF for bare LF), and a rerun
// appends nothing.
func TestMultiAppendDovecot(t *testing.T) {
	defer restore.SetBatchLimits(5, 200<<10)()
	batches, stop := restore.CountBatches()
	defer stop()
	dv := dovecottest.Start(t, nil)
	addUsers(t, dv, "multi")
	tg := target{dv.IMAPAddr, "multi", true}
	src, invalid := nastySource('/')
	big := make([]byte, 0, 1_300_000)
	big = append(big, "Message-ID: <big@multi>\r\nSubject: big\r\n\r\n"...)
	for len(big) < 1_200_000 {
		big = append(big, "a line of a big message, sent alone between batches\r\n"...)
	}
	src.add("INBOX", big, []string{`\Flagged`, "$Big"}, time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC))
	prog := newProgress()
	st, err := tg.run(context.Background(), src, prog, restore.Options{Verify: true})
	noErr(t, "restore", st, err)
	if st.Appended != src.total() || st.KeywordsDropped != invalid {
		t.Fatalf("stats %+v; want %d appended", st, src.total())
	}
	if batches.Load() == 0 {
		t.Fatal("no MULTIAPPEND batch was sent")
	}
	// Dovecot makes bare LFs CRLF (imaptest.WantBody): the only change.
	verified := 0
	for _, r := range st.Reports {
		verified += r.Exact + len(r.Altered)
		for _, a := range r.Altered {
			if len(a.Kinds) != 1 || a.Kinds[0] != restore.AlteredLineEnds {
				t.Errorf("%s altered: %v", a.Message, a.Kinds)
			}
		}
		if r.Unverified > 0 || r.Unchecked > 0 || len(r.Refused) > 0 {
			t.Errorf("report %s", r.String())
		}
	}
	if verified != src.total() {
		t.Errorf("verify: %d verified of %d", verified, src.total())
	}
	want := src.want(imaptest.Dovecot, func(f string) bool { return f == "not valid" })
	snap := tg.snapshot(t)
	if d := imaptest.Diff(want, snap, nil); d != "" {
		t.Fatalf("destination differs:\n%s", d)
	}
	// Every record names the UID of that very message.
	byUID := map[string]map[uint32]string{}
	for f, msgs := range snap {
		byUID[f] = map[uint32]string{}
		for _, m := range msgs {
			byUID[f][m.UID] = m.SHA256
		}
	}
	if len(prog.done) != src.total() {
		t.Fatalf("%d records, want %d", len(prog.done), src.total())
	}
	for k, rd := range prog.done {
		key := k[strings.LastIndex(k, "|")+1:]
		sum := sha256.Sum256(imaptest.WantBody(imaptest.Dovecot, src.bodies[key]))
		if rd.UID == 0 || rd.UIDValidity == 0 || byUID[rd.Folder][rd.UID] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s recorded as %+v: not that message on the destination", key, rd)
		}
	}
	st, err = tg.run(context.Background(), src, prog, restore.Options{})
	noErr(t, "rerun", st, err)
	if st.Appended != 0 || st.Missing != 0 || st.Skipped != src.total() {
		t.Errorf("rerun: %+v", st)
	}
}

// TestNoMultiAppend: a server without MULTIAPPEND (go-imap's) gets one
// pipelined APPEND per message, as before.
func TestNoMultiAppend(t *testing.T) {
	batches, stop := restore.CountBatches()
	defer stop()
	addr := memServer(t, memCaps, func(s imapserver.Session) imapserver.Session { return s })
	src := smallSource(50)
	tg := target{addr, "dst", true}
	st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
	noErr(t, "restore", st, err)
	if st.Appended != 50 || batches.Load() != 0 {
		t.Fatalf("%+v, %d batches", st, batches.Load())
	}
	if d := imaptest.Diff(src.want(imaptest.MemIMAP, nil), tg.snapshot(t), nil); d != "" {
		t.Fatal(d)
	}
}

// multiFront is a scripted IMAP server for the raw APPEND connection: it
// offers MULTIAPPEND and LITERAL+, refuses a whole command (NO) when one
// of its messages contains REFUSE-ME, and stores the others through a
// go-imap client into the server the restore's other connection uses.
type multiFront struct {
	t       *testing.T
	backend string // address of the server behind
	mu      sync.Mutex
	multi   int // commands of more than one message seen
	refused int // commands refused
}

func startMultiFront(t *testing.T, backend string) (*multiFront, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &multiFront{t: t, backend: backend}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f, ln.Addr().String()
}

var (
	appendHead = regexp.MustCompile(`^(\S+) APPEND ("(?:[^"\\]|\\.)*")`)
	appendMsg  = regexp.MustCompile(`^ \(([^)]*)\)(?: "([^"]+)")? \{(\d+)\+\}$`)
)

func (f *multiFront) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	say("* OK scripted MULTIAPPEND front")
	var back *imapclient.Client
	defer func() {
		if back != nil {
			back.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		tag, cmd, _ := strings.Cut(line, " ")
		verb, _, _ := strings.Cut(cmd, " ")
		switch strings.ToUpper(verb) {
		case "CAPABILITY":
			say("* CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS")
			say(tag + " OK done")
		case "LOGIN":
			back = imaptest.Dial(f.t, f.backend, "dst", pass)
			say(tag + " OK logged in")
		case "LOGOUT":
			say("* BYE")
			say(tag + " OK bye")
			return
		case "APPEND":
			m := appendHead.FindStringSubmatch(line)
			if m == nil {
				say(tag + " BAD syntax")
				continue
			}
			mbox, _ := strconv.Unquote(m[2])
			rest := line[len(m[0]):]
			type msg struct {
				flags []imap.Flag
				date  time.Time
				body  []byte
			}
			var msgs []msg
			for rest != "" {
				p := appendMsg.FindStringSubmatch(rest)
				if p == nil {
					say(tag + " BAD syntax: " + rest)
					return
				}
				var mg msg
				for _, fl := range strings.Fields(p[1]) {
					mg.flags = append(mg.flags, imap.Flag(fl))
				}
				if p[2] != "" {
					mg.date, _ = time.Parse("_2-Jan-2006 15:04:05 -0700", p[2])
				}
				n, _ := strconv.Atoi(p[3])
				mg.body = make([]byte, n)
				if _, err := io.ReadFull(r, mg.body); err != nil {
					return
				}
				msgs = append(msgs, mg)
				if rest, err = r.ReadString('\n'); err != nil {
					return
				}
				rest = strings.TrimRight(rest, "\r\n")
			}
			bad := false
			for _, mg := range msgs {
				bad = bad || bytes.Contains(mg.body, []byte("REFUSE-ME"))
			}
			f.mu.Lock()
			if len(msgs) > 1 {
				f.multi++
			}
			if bad {
				f.refused++
			}
			f.mu.Unlock()
			if bad {
				say(tag + " NO [CANNOT] policy says no")
				continue
			}
			var set imap.UIDSet
			var validity uint32
			for _, mg := range msgs {
				cmd := back.Append(mbox, int64(len(mg.body)), &imap.AppendOptions{Flags: mg.flags, Time: mg.date})
				cmd.Write(mg.body)
				cmd.Close()
				d, err := cmd.Wait()
				if err != nil {
					say(tag + " NO " + err.Error())
					return
				}
				set.AddNum(d.UID)
				validity = d.UIDValidity
			}
			say(fmt.Sprintf("%s OK [APPENDUID %d %s] done", tag, validity, set))
		default:
			say(tag + " BAD unknown")
		}
	}
}

// TestMultiAppendRefused: a server refuses a MULTIAPPEND batch because of
// one message in it (RFC 3502: none of the batch is stored). Its messages
// are sent again one by one: the bad one is refused and named, the others
// arrive, with their UIDs recorded, and the batches around go on. The
// folder's first message (sent alone) refused is named without a retry.
func TestMultiAppendRefused(t *testing.T) {
	defer restore.SetBatchLimits(4, 1<<20)()
	backend := memServer(t, memCaps, func(s imapserver.Session) imapserver.Session { return s })
	front, frontAddr := startMultiFront(t, backend)
	src, good := newSource(), newSource()
	src.folder("INBOX", '/', "")
	good.folder("INBOX", '/', "")
	date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		body := fmt.Sprintf("Message-ID: <%d@multi>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)
		if i == 0 || i == 6 { // 0: the folder's first message, sent alone
			body += "REFUSE-ME\r\n"
		}
		flags := []string{`\Seen`, "$Kw" + strconv.Itoa(i%3)}
		src.add("INBOX", []byte(body), flags, date.Add(time.Duration(i)*time.Hour))
		if i != 0 && i != 6 {
			good.add("INBOX", []byte(body), flags, date.Add(time.Duration(i)*time.Hour))
		}
	}
	cfg := imapconn.Config{Addr: frontAddr, TLS: imapconn.TLSNone, User: "dst", Password: pass}
	dial := func(ctx context.Context) (*imapclient.Client, error) {
		return imapconn.Dial(ctx, imapconn.Config{Addr: backend, TLS: imapconn.TLSNone, User: "dst", Password: pass})
	}
	prog := newProgress()
	st, err := restore.Run(context.Background(), dial, restore.Destination{Server: backend, User: "dst"}, src, prog, restore.Options{
		DialRaw: func(ctx context.Context) (restore.AppendConn, error) { return imapconn.DialRaw(ctx, cfg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Appended != 18 || len(st.Failures) != 2 {
		t.Fatalf("%+v; want 18 appended, INBOX#0 and INBOX#6 refused", st)
	}
	for i, want := range []string{"INBOX#0", "INBOX#6"} {
		if err := st.Failures[i].Error(); !strings.Contains(err, want) || !strings.Contains(err, "policy says no") {
			t.Errorf("failure %q; want it to name %s and quote the server", err, want)
		}
	}
	if len(st.Reports) != 1 || len(st.Reports[0].Refused) != 2 || st.Reports[0].Refused[1].Message != "INBOX#6" {
		t.Errorf("reports %+v", st.Reports)
	}
	front.mu.Lock()
	multi, refused := front.multi, front.refused
	front.mu.Unlock()
	// INBOX#0 alone once; INBOX#6's batch, then INBOX#6 alone.
	if multi < 4 || refused != 3 {
		t.Errorf("front saw %d MULTIAPPENDs, %d refusals; want at least 4 and 3", multi, refused)
	}
	tg := target{backend, "dst", false}
	snap := tg.snapshot(t)
	if d := imaptest.Diff(good.want(imaptest.MemIMAP, nil), snap, nil); d != "" {
		t.Fatal(d)
	}
	uids := map[uint32]bool{}
	for _, m := range snap["INBOX"] {
		uids[m.UID] = true
	}
	for k, rd := range prog.done {
		if !uids[rd.UID] {
			t.Errorf("%s recorded with UID %d, not on the destination", k, rd.UID)
		}
	}
	if len(prog.done) != 18 {
		t.Errorf("%d recorded, want 18", len(prog.done))
	}
}
