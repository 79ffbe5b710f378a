package imapsrc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/mstest"
	"github.com/mailkeep/mailkeep/provlimit"
)

// sleepClock is a double's injected clock and the backup's Sleeper:
// sleeping advances it and is recorded, with what was stored by then.
type sleepClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	stored map[string]int // messages stored per folder (Options.Progress)
	mid    int            // sleeps taken with a folder partly stored
	total  map[string]int // messages per folder on the server
}

func newSleepClock(total map[string]int) *sleepClock {
	return &sleepClock{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), stored: map[string]int{}, total: total}
}

func (c *sleepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *sleepClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	for f, n := range c.stored {
		if n > 0 && n < c.total[f] {
			c.mid++
		}
	}
	return ctx.Err()
}

func (c *sleepClock) progress(folder string, n int, _ int64) {
	c.mu.Lock()
	c.stored[folder] += n
	c.mu.Unlock()
}

// msFolders fills the Microsoft double: folder name -> message count. It
// returns the SHA-256 of every message per folder.
func msFolders(t *testing.T, ms *mstest.Server, folders map[string]int) map[string]map[string]bool {
	t.Helper()
	sums := map[string]map[string]bool{}
	for name, n := range folders {
		if name != "INBOX" {
			if err := ms.User().Create(name, nil); err != nil {
				t.Fatal(err)
			}
		}
		sums[name] = map[string]bool{}
		for i := 0; i < n; i++ {
			b := []byte(fmt.Sprintf("From: a@example.com\r\nMessage-ID: <%s-%d@example.com>\r\nSubject: %s %d\r\n\r\n%s\r\n", name, i, name, i, strings.Repeat("throttle ", i%7+1)))
			if _, err := ms.User().Append(name, bytes.NewReader(b), &imap.AppendOptions{Time: time.Date(2025, 5, 1, 0, i, 0, 0, time.UTC)}); err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(b)
			sums[name][hex.EncodeToString(s[:])] = true
		}
	}
	return sums
}

// checkOnce checks that each folder's live messages in the archive are
// exactly want's, each once.
func checkOnce(t *testing.T, dir string, want map[string]map[string]bool) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for name, sums := range want {
		f, err := a.Cat.Folder(t.Context(), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		live, err := a.Cat.Live(t.Context(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range live {
			if seen[m.SHA256] {
				t.Errorf("%s: UID %d stored twice", name, m.UID)
			}
			seen[m.SHA256] = true
			if !sums[m.SHA256] {
				t.Errorf("%s: UID %d is not the server's", name, m.UID)
			}
		}
		if len(seen) != len(sums) {
			t.Errorf("%s: archive holds %d messages, the server %d", name, len(seen), len(sums))
		}
	}
}

func msBackup(t *testing.T, dir string, addr string, opt imapsrc.Options) (imapsrc.Stats, string) {
	t.Helper()
	a, run := openRun(t, dir, archive.Options{})
	defer a.Close()
	var logs strings.Builder
	var mu sync.Mutex
	opt.Account = imapconn.Config{Addr: addr, TLS: imapconn.TLSNone, User: user, Password: pass}
	opt.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
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
	mu.Lock()
	defer mu.Unlock()
	return st, logs.String()
}

// TestThrottleMicrosoftBackup: Microsoft 365 throttles the mailbox in the
// middle of a folder ("BAD Request is throttled. Suggested Backoff Time:
// 299961 milliseconds", imapsync FAQ.Office365; with bye, followed by "*
// BYE Connection closed. 14" as email-oauth2-proxy #191 logged). The
// backup waits exactly the suggested time (through the injected Sleeper:
// no real sleep), runs the folder again, and in the end holds every
// message once, with no failure.
func TestThrottleMicrosoftBackup(t *testing.T) {
	const suggested = 299961 * time.Millisecond
	for _, tc := range []struct {
		bye   bool
		conns int
	}{{false, 1}, {true, 1}, {false, 3}} {
		t.Run(fmt.Sprintf("bye %v conns %d", tc.bye, tc.conns), func(t *testing.T) {
			defer imapsrc.SetBodyChunk(4)()
			folders := map[string]int{"INBOX": 60, "Archive": 45, "Sent": 10}
			clk := newSleepClock(folders)
			ms := mstest.Start(t, user, pass, mstest.Options{
				Throttle:      mstest.Throttle{Commands: 20, Window: time.Minute, Backoff: suggested},
				ByeOnThrottle: tc.bye,
				Now:           clk.Now,
			})
			want := msFolders(t, ms, folders)
			dir := t.TempDir()
			st, logs := msBackup(t, dir, ms.Addr, imapsrc.Options{
				Connections: tc.conns, Sleeper: clk, Progress: clk.progress,
				Backoff: provlimit.Backoff{Rand: func() float64 { return 0 }, Attempts: 20},
			})
			if len(st.Failures) > 0 {
				t.Fatalf("failures: %v\n%s", st.Failures, logs)
			}
			if st.Fetched != 115 {
				t.Errorf("fetched %d, want 115", st.Fetched)
			}
			clk.mu.Lock()
			slept, mid := clk.slept, clk.mid
			clk.mu.Unlock()
			if len(slept) == 0 || mid == 0 {
				t.Fatalf("slept %v (%d with a folder half stored): the test proves nothing", slept, mid)
			}
			for _, d := range slept {
				if d <= 0 || d > suggested {
					t.Errorf("slept %v, want the suggested backoff (at most %v)", d, suggested)
				}
			}
			if tc.conns == 1 {
				for _, d := range slept {
					if d != suggested {
						t.Errorf("slept %v, want the suggested %v", d, suggested)
					}
				}
			}
			if !strings.Contains(logs, "Suggested Backoff Time") {
				t.Errorf("log does not name the answer:\n%s", logs)
			}
			t.Logf("%d waits, %d with a folder partly stored", len(slept), mid)
			checkOnce(t, dir, want)
		})
	}
}

// TestThrottleGiveUp: a server that keeps throttling gets Backoff.Attempts
// reruns of the folder; then the folder fails with an error naming the
// account and the folder (outcome partial), what was stored is kept, and
// the next run completes the archive with each message once.
func TestThrottleGiveUp(t *testing.T) {
	defer imapsrc.SetBodyChunk(2)()
	folders := map[string]int{"INBOX": 40}
	clk := newSleepClock(folders)
	ms := mstest.Start(t, user, pass, mstest.Options{
		Throttle: mstest.Throttle{Commands: 12, Window: time.Minute, Backoff: 30 * time.Second},
		Now:      clk.Now,
	})
	want := msFolders(t, ms, folders)
	dir := t.TempDir()
	st, logs := msBackup(t, dir, ms.Addr, imapsrc.Options{
		Connections: 1, Sleeper: clk, Progress: clk.progress,
		Backoff: provlimit.Backoff{Rand: func() float64 { return 0 }, Attempts: 1},
	})
	if len(st.Failures) != 1 {
		t.Fatalf("failures %v, want one (the folder)\n%s", st.Failures, logs)
	}
	var re *imapsrc.RetryError
	if !errors.As(st.Failures[0], &re) || !errors.Is(st.Failures[0], provlimit.ErrThrottled) {
		t.Fatalf("failure %v: not a RetryError on a throttling answer", st.Failures[0])
	}
	msg := st.Failures[0].Error()
	if !strings.Contains(msg, user) || !strings.Contains(msg, `"INBOX"`) || re.Attempts != 2 {
		t.Errorf("failure %q (attempts %d) does not name account and folder", msg, re.Attempts)
	}
	if st.Fetched == 0 || st.Fetched >= 40 {
		t.Fatalf("first run fetched %d: want some, not all", st.Fetched)
	}
	first := st.Fetched
	// The next run (more patience) continues: nothing fetched twice.
	st, logs = msBackup(t, dir, ms.Addr, imapsrc.Options{
		Connections: 1, Sleeper: clk,
		Backoff: provlimit.Backoff{Rand: func() float64 { return 0 }, Attempts: 50},
	})
	if len(st.Failures) > 0 {
		t.Fatalf("second run: %v\n%s", st.Failures, logs)
	}
	if first+st.Fetched != 40 {
		t.Errorf("fetched %d + %d, want 40 in all", first, st.Fetched)
	}
	checkOnce(t, dir, want)
}

// TestUIDValidityMicrosoftArchive: Exchange gives its Archive folder a new
// UIDVALIDITY (same messages, new UIDs; mstest.BumpUIDValidity). The next
// backup goes through the re-key path: every archived message is
// recognised under its new UID, nothing is stored twice, nothing lost.
func TestUIDValidityMicrosoftArchive(t *testing.T) {
	folders := map[string]int{"INBOX": 5, "Archive": 25}
	ms := mstest.Start(t, user, pass, mstest.Options{})
	want := msFolders(t, ms, folders)
	dir := t.TempDir()
	st, logs := msBackup(t, dir, ms.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Fetched != 30 {
		t.Fatalf("first run: fetched %d, failures %v\n%s", st.Fetched, st.Failures, logs)
	}
	before, _ := ms.UIDValidity("Archive")
	if err := ms.BumpUIDValidity("Archive"); err != nil {
		t.Fatal(err)
	}
	after, _ := ms.UIDValidity("Archive")
	if after == before {
		t.Fatal("UIDVALIDITY unchanged: the test proves nothing")
	}
	st, logs = msBackup(t, dir, ms.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 {
		t.Fatalf("second run: %v\n%s", st.Failures, logs)
	}
	if st.Fetched != 0 || st.Rekeyed != 25 || st.Expunged != 0 {
		t.Errorf("second run: fetched %d, rekeyed %d, expunged %d; want 0, 25, 0", st.Fetched, st.Rekeyed, st.Expunged)
	}
	checkOnce(t, dir, want)
	a, err := archive.Open(dir, archive.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := a.Cat.Folder(t.Context(), "Archive")
	live, _ := a.Cat.Live(t.Context(), f.ID)
	for _, m := range live {
		if m.UIDValidity != after {
			t.Errorf("UID %d still under UIDVALIDITY %d, want %d", m.UID, m.UIDValidity, after)
		}
	}
	a.Close()
	// A third run finds nothing new.
	if st, _ = msBackup(t, dir, ms.Addr, imapsrc.Options{Connections: 2}); st.Fetched != 0 || len(st.Failures) > 0 || st.Expunged != 0 {
		t.Errorf("third run: %+v", st)
	}
}

// TestByeStorm: Microsoft ends the connection after each throttled
// command ("* BYE Connection closed. 14", email-oauth2-proxy #191). After
// several BYEs in a row (provlimit.Storm) the backup dials no more
// connections while one is open, backs off each time, and still stores
// every message once.
func TestByeStorm(t *testing.T) {
	defer imapsrc.SetBodyChunk(2)()
	folders := map[string]int{"INBOX": 60, "Archive": 60, "Sent": 40, "Notes": 20}
	clk := newSleepClock(folders)
	ms := mstest.Start(t, user, pass, mstest.Options{
		Throttle:      mstest.Throttle{Commands: 12, Window: time.Minute, Backoff: 20 * time.Second},
		ByeOnThrottle: true,
		Now:           clk.Now,
	})
	want := msFolders(t, ms, folders)
	dir := t.TempDir()
	st, logs := msBackup(t, dir, ms.Addr, imapsrc.Options{
		Connections: 4, Sleeper: clk, Progress: clk.progress,
		Backoff: provlimit.Backoff{Rand: func() float64 { return 0 }, Attempts: 30},
	})
	if len(st.Failures) > 0 {
		t.Fatalf("failures: %v\n%s", st.Failures, logs)
	}
	if !strings.Contains(logs, "keeps ending connections: going on with fewer") {
		t.Errorf("no BYE storm noticed (%d waits): the test proves less\n%s", len(clk.slept), logs)
	}
	checkOnce(t, dir, want)
	t.Logf("%d waits", len(clk.slept))
}
