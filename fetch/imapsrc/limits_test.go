package imapsrc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

type dayClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *dayClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *dayClock) nextDay()       { c.mu.Lock(); c.now = c.now.Add(24 * time.Hour); c.mu.Unlock() }

// TestDailyLimitGmail: Gmail's daily download quota runs out in the middle
// of a first backup ("NO [OVERQUOTA] Account exceeded command or bandwidth
// limits."). The run stops cleanly: what was stored is committed, the
// outcome is partial with one failure saying what is left, and no further
// folder is started. The next "day" (the double's injected clock) the
// backup continues, and in the end the archive holds exactly what the
// double holds, each message once per folder: nothing lost or doubled.
func TestDailyLimitGmail(t *testing.T) {
	for _, bye := range []bool{false, true} {
		t.Run(fmt.Sprintf("bye %v", bye), func(t *testing.T) { testDailyLimitGmail(t, bye) })
	}
}

// With bye, the double answers as Gmail also does: "* BYE Session
// expired, please login again." (imapsync FAQ.Gmail).
func testDailyLimitGmail(t *testing.T, bye bool) {
	clk := &dayClock{now: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)}
	g := gmailtest.Start(t, user, pass, gmailtest.Options{DailyDownload: 6000, Now: clk.Now, ByeOnQuota: bye})
	for i := 0; i < 24; i++ {
		labels := []string{`\Inbox`}
		if i%3 == 0 {
			labels = append(labels, "Work")
		}
		body := fmt.Sprintf("From: a@example.com\r\nMessage-ID: <%d@example.com>\r\nSubject: message %d\r\n\r\n%s\r\n", i, i, strings.Repeat("text ", 40))
		g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: labels, Date: time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC)})
	}
	dir := t.TempDir()
	cfg := imapconn.Config{Addr: g.Addr, TLS: imapconn.TLSNone, User: user, Password: pass}
	runs := 0
	for ; runs < 10; runs++ {
		st := limitedBackup(t, dir, cfg)
		t.Logf("run %d (%s): fetched %d, %d bytes, stopped %v, remaining %+v", runs+1, clk.Now().Format(time.DateOnly), st.Fetched, st.Bytes, st.Stopped, st.Remaining)
		if runs == 0 {
			if st.Stopped == nil || !errors.Is(st.Stopped, provlimit.ErrDailyLimit) {
				t.Fatalf("first run not stopped by the daily limit: %+v", st)
			}
			if st.Fetched == 0 || len(st.Failures) != 1 || st.Remaining.Messages == 0 || st.Remaining.Runs == 0 {
				t.Fatalf("first run: %+v; want some stored, one failure, messages left", st)
			}
			if !strings.Contains(st.Failures[0].Error(), "next run continues") {
				t.Errorf("failure %q does not say what is left", st.Failures[0])
			}
		}
		if st.Stopped == nil {
			if len(st.Failures) > 0 {
				t.Fatalf("run %d: failures %v", runs+1, st.Failures)
			}
			break
		}
		// A second run the same day stores nothing more and loses nothing.
		clk.nextDay()
	}
	if runs == 0 || runs == 10 {
		t.Fatalf("finished after %d runs", runs+1)
	}
	compareGmail(t, g, dir)
}

func limitedBackup(t *testing.T, dir string, cfg imapconn.Config) imapsrc.Stats {
	t.Helper()
	return endedBackup(t, dir, imapsrc.Options{Account: cfg, Connections: 2})
}

// endedBackup runs one backup into dir (mbox.zst) with opt and ends its
// run as the CLI does: "partial" when a folder failed, else "ok".
func endedBackup(t *testing.T, dir string, opt imapsrc.Options) imapsrc.Stats {
	t.Helper()
	a, run := openRun(t, dir, archive.Options{Format: archive.MboxZstd})
	defer a.Close()
	st, err := imapsrc.Backup(context.Background(), a, run, opt)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	outcome := "ok"
	if len(st.Failures) > 0 {
		outcome = "partial"
	}
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: outcome, Fetched: st.Fetched, Bytes: st.Bytes, Failed: len(st.Failures)}); err != nil {
		t.Fatal(err)
	}
	return st
}

// compareGmail checks that each folder of the archive holds the double's
// messages of that folder, by UID and SHA-256, each exactly once.
func compareGmail(t *testing.T, g *gmailtest.Server, dir string) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	folders, err := a.Cat.Folders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*catalog.Folder{}
	for _, f := range folders {
		byName[f.Name] = f
	}
	total := 0
	for _, name := range g.Folders() {
		entries, _, _ := g.Folder(name)
		if len(entries) == 0 {
			continue
		}
		f := byName[name]
		if f == nil {
			t.Errorf("folder %q not in the archive", name)
			continue
		}
		live, err := a.Cat.Live(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint32]string{}
		for _, m := range live {
			if _, dup := got[m.UID]; dup {
				t.Errorf("%s: UID %d stored twice", name, m.UID)
			}
			got[m.UID] = m.SHA256
		}
		if len(live) != len(entries) {
			t.Errorf("%s: archive holds %d messages, the double %d", name, len(live), len(entries))
		}
		for _, e := range entries {
			m, _ := g.Message(e.MsgID)
			sum := sha256.Sum256(m.Body)
			if got[uint32(e.UID)] != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: UID %d missing or different in the archive", name, e.UID)
			}
		}
		total += len(entries)
	}
	t.Logf("archive matches the double: %d messages in %d folders", total, len(g.Folders()))
}

// TestTooManyConnectionsGmail: the account allows fewer connections than
// the backup asks for ("NO [ALERT] Too many simultaneous connections.
// (Failure)" to LOGIN): the backup goes on with the ones it has, no folder
// fails, and the archive holds everything.
func TestTooManyConnectionsGmail(t *testing.T) {
	g := gmailtest.Start(t, user, pass, gmailtest.Options{MaxConns: 2})
	for i := 0; i < 12; i++ {
		body := fmt.Sprintf("From: a@example.com\r\nMessage-ID: <c%d@example.com>\r\nSubject: %d\r\n\r\nhi\r\n", i, i)
		g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: []string{gmailtest.LabelInbox, fmt.Sprintf("L%d", i%5)}})
	}
	dir := t.TempDir()
	a, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	cfg := imapconn.Config{Addr: g.Addr, TLS: imapconn.TLSNone, User: user, Password: pass}
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: cfg, Connections: 6, Logger: log})
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("backup: %v %v", err, st.Failures)
	}
	mu.Lock()
	if !strings.Contains(logs.String(), "going on with fewer") || !strings.Contains(logs.String(), "Too many simultaneous connections") {
		t.Errorf("no connection was refused: the test proves nothing; log:\n%s", logs.String())
	}
	mu.Unlock()
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	a.Close()
	compareGmail(t, g, dir)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestBudget: max_messages_per_run / max_bytes_per_run spread a first
// backup over several runs; each run stops at its budget with outcome
// partial and says what is left and in how many runs; in the end the
// archive holds everything once.
func TestBudget(t *testing.T) {
	for _, bg := range []provlimit.Budget{{MaxMessages: 10}, {MaxBytes: 4000}} {
		t.Run(fmt.Sprintf("%+v", bg), func(t *testing.T) {
			g := gmailtest.Start(t, user, pass, gmailtest.Options{})
			for i := 0; i < 30; i++ {
				body := fmt.Sprintf("From: a@example.com\r\nMessage-ID: <b%d@example.com>\r\nSubject: %d\r\n\r\n%s\r\n", i, i, strings.Repeat("budget ", 20))
				labels := []string{gmailtest.LabelInbox}
				if i%4 == 0 {
					labels = append(labels, "Keep")
				}
				g.Add(gmailtest.NewMessage{Body: []byte(body), Labels: labels})
			}
			dir := t.TempDir()
			cfg := imapconn.Config{Addr: g.Addr, TLS: imapconn.TLSNone, User: user, Password: pass}
			runs := 0
			for ; runs < 20; runs++ {
				st := budgetBackup(t, dir, cfg, bg)
				t.Logf("run %d: fetched %d, %d bytes; %v; left %v", runs+1, st.Fetched, st.Bytes, st.Stopped, st.Remaining)
				if bg.MaxMessages > 0 && int64(st.Fetched) > bg.MaxMessages || bg.MaxBytes > 0 && st.Bytes > bg.MaxBytes {
					t.Fatalf("run %d went over the budget", runs+1)
				}
				if st.Stopped == nil {
					break
				}
				if !errors.Is(st.Stopped, provlimit.ErrBudget) || len(st.Failures) != 1 || st.Remaining.Runs < 1 || st.Remaining.Messages < 1 {
					t.Fatalf("run %d: %+v", runs+1, st)
				}
				if runs == 0 && st.Remaining.Bytes == 0 {
					t.Errorf("no bytes left reported")
				}
			}
			if runs < 2 || runs == 20 {
				t.Fatalf("finished after %d runs", runs+1)
			}
			compareGmail(t, g, dir)
		})
	}
}

func budgetBackup(t *testing.T, dir string, cfg imapconn.Config, bg provlimit.Budget) imapsrc.Stats {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, _ := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: cfg, Connections: 2, Budget: bg})
	if err != nil {
		t.Fatal(err)
	}
	a.Cat.EndRun(t.Context(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "partial"})
	return st
}
