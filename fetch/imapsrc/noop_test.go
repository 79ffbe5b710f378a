package imapsrc_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptap"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// recorder is a loopback proxy in front of a server that records the
// command names (the word after the tag) clients send through it.
type recorder struct {
	addr  string
	mu    sync.Mutex
	cmds  []string
	lines []string // the whole command lines, beside cmds
}

type recHooks struct{ r *recorder }

func (h recHooks) Command(line []byte) []byte {
	if f := bytes.Fields(line); len(f) >= 2 {
		name := strings.ToUpper(string(f[1]))
		if name == "UID" && len(f) >= 3 {
			name += " " + strings.ToUpper(string(f[2]))
		}
		h.r.mu.Lock()
		h.r.cmds = append(h.r.cmds, name)
		h.r.lines = append(h.r.lines, strings.TrimSpace(string(line)))
		h.r.mu.Unlock()
	}
	return line
}

func (recHooks) Response(line []byte) []byte { return line }

func startRecorder(t *testing.T, upstream string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().String()}
	tl := &imaptap.Listener{Listener: ln, New: func(*imaptap.Conn) imaptap.Hooks { return recHooks{r} }}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", upstream, 10*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return r
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.cmds
	r.cmds, r.lines = nil, nil
	return out
}

// takeLines is take with the whole command lines.
func (r *recorder) takeLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.cmds, r.lines = nil, nil
	return out
}

// TestNoopSendsOnlyTheListing: once a folder's STATUS (UIDVALIDITY,
// UIDNEXT, MESSAGES, HIGHESTMODSEQ) equals the catalog's, a backup sends
// nothing for it: a no-op run of an account of empty and non-empty
// folders is login, NAMESPACE, one LIST (with its STATUS) and LOGOUT.
func TestNoopSendsOnlyTheListing(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := range 30 {
		f := fmt.Sprintf("Box%02d", i)
		imaptest.Create(t, c, f)
		if i%3 == 0 {
			imaptest.Append(t, c, f, []string{`\Seen`}, time.Now(), []byte(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)))
		}
	}
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: inbox\r\n\r\nx\r\n"))
	rec := startRecorder(t, dv.IMAPAddr)
	s := server{name: "dovecot", addr: rec.addr, delim: '/', condstore: true, dv: dv}
	dir := filepath.Join(t.TempDir(), "a")
	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 11 {
		t.Fatalf("first run fetched %d, want 11", st.Fetched)
	}
	first := rec.take()
	if !slices.Contains(first, "EXAMINE") && !slices.Contains(first, "SELECT") {
		t.Fatalf("the recorder saw no EXAMINE in the first run: %v", first)
	}
	for range 2 {
		st := backup(t, s, dir, archive.MboxZstd)
		if st.Fetched+st.FlagChanges+st.Expunged != 0 || st.Unchanged != st.Folders {
			t.Errorf("no-op run did work: %+v", st)
		}
		cmds := rec.take()
		lists := 0
		for _, name := range cmds {
			switch name {
			case "LIST":
				lists++
			case "LOGIN", "AUTHENTICATE", "CAPABILITY", "NAMESPACE", "LOGOUT":
			default:
				t.Errorf("no-op run sent %s (all: %v)", name, cmds)
			}
		}
		if lists != 1 {
			t.Errorf("no-op run sent %d LIST commands, want 1: %v", lists, cmds)
		}
	}
	// A folder that changed is the only one examined.
	imaptest.Append(t, c, "Box07", nil, time.Now(), []byte("Subject: new\r\n\r\nnew\r\n"))
	if st := backup(t, s, dir, archive.MboxZstd); st.Fetched != 1 || st.Unchanged != st.Folders-1 {
		t.Errorf("after one new message: %+v", st)
	}
	if n := strings.Count(strings.Join(rec.take(), "\n"), "EXAMINE"); n != 1 {
		t.Errorf("%d EXAMINE after one folder changed, want 1", n)
	}
}
