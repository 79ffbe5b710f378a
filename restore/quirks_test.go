package restore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/mstest"
	"github.com/mailkeep/mailkeep/internal/yahootest"
	"github.com/mailkeep/mailkeep/provlimit"
	"github.com/mailkeep/mailkeep/restore"
)

// TestThrottleEveryNthAppendMicrosoft: a restore into Microsoft 365 that
// throttles every 4th APPEND ("BAD Request is throttled. Suggested
// Backoff Time: 7300 milliseconds", imapsync FAQ.Office365) whatever the
// rate. Each refused APPEND is sent again after exactly the suggested
// delay (injected Sleeper, no real sleep) and the destination holds every
// message exactly once: no duplicate, nothing lost.
func TestThrottleEveryNthAppendMicrosoft(t *testing.T) {
	const suggested = 7300 * time.Millisecond
	for _, tc := range []struct {
		raw   bool
		conns int
		_     bool
	}{{false, 1, false}, {true, 1, false}, {true, 2, false}, {false, 2, false}} {
		t.Run(fmt.Sprintf("raw %v conns %d", tc.raw, tc.conns), func(t *testing.T) {
			clk := &fakeClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
			ms := mstest.Start(t, "bob", pass, mstest.Options{ThrottleAppends: 4, AppendBackoff: suggested, Now: clk.Now})
			tg := target{addr: ms.Addr, user: "bob", raw: tc.raw}
			src := limitSource(30)
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{
				Connections: tc.conns, NoMultiAppend: true, Sleeper: clk,
				Backoff: provlimit.Backoff{Rand: func() float64 { return 0 }},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Failures) > 0 {
				t.Fatalf("failures: %v", st.Failures)
			}
			clk.mu.Lock()
			slept := clk.slept
			clk.mu.Unlock()
			// The suggested delay after each throttled APPEND; Microsoft
			// also ends a connection after its 10th error (throttled
			// APPENDs count): then the folder runs again on a new one
			// after the policy's backoff (0.5 s with no jitter).
			honoured := 0
			for _, d := range slept {
				switch d {
				case suggested:
					honoured++
				case 500 * time.Millisecond:
				default:
					t.Errorf("slept %v, want the suggested %v (or the backoff after a BYE)", d, suggested)
				}
			}
			// On the raw connection each throttled APPEND is waited for
			// and sent again; through go-imap the folder fails at the
			// first one and runs again after the wait (the APPENDs
			// pipelined behind it are found by the destination check).
			// Every 4th APPEND over both connections is throttled, but a
			// throttled APPEND in flight on a connection Microsoft ends
			// (its 10th error) is sent again after the BYE's backoff
			// instead: on two connections a few of the quarter go so.
			if honoured == 0 || tc.raw && honoured < src.total()/8 {
				t.Errorf("%d waits of the suggested delay for %d messages", honoured, src.total())
			}
			if st.Appended == 0 || st.Appended > src.total() {
				t.Errorf("appended %d, want 1 to %d", st.Appended, src.total())
			}
			snap := tg.snapshot(t)
			for _, f := range []string{"INBOX", "Work"} {
				seen := map[string]bool{}
				for _, m := range snap[f] {
					if seen[m.SHA256] {
						t.Errorf("%s: a message is there twice", f)
					}
					seen[m.SHA256] = true
				}
				if len(snap[f]) != 31 {
					t.Errorf("%s holds %d messages, want 31 (each once)", f, len(snap[f]))
				}
			}
			t.Logf("%d waits (%d of the suggested delay), %d appended", len(slept), honoured, st.Appended)
		})
	}
}

// TestYahooNoFinalCRLF: Yahoo refuses an APPEND of a message without a
// final CRLF ("BAD [CLIENTBUG] ...", imapsync FAQ.Yahoo). The restore
// sends such a message again with the CRLF added, and --verify reports it
// altered (line ends), naming it; the others are exact. A second run
// appends nothing (the first one's APPENDUIDs are on the destination).
func TestYahooNoFinalCRLF(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw %v", raw), func(t *testing.T) {
			y := yahootest.Start(t, "dst", pass, yahootest.Options{})
			src := newSource()
			src.folder("INBOX", '/', "")
			date := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
			for i := 0; i < 6; i++ {
				b := fmt.Sprintf("Message-ID: <y%d@example.com>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)
				if i == 2 || i == 4 {
					b = strings.TrimSuffix(b, "\r\n") // no final CRLF
				}
				src.add("INBOX", []byte(b), []string{`\Seen`}, date)
			}
			tg := target{addr: y.Addr, user: "dst", raw: raw}
			prog := newProgress()
			st, err := tg.run(context.Background(), src, prog, restore.Options{Verify: true})
			if err != nil || len(st.Failures) > 0 {
				t.Fatalf("restore: %v %v", err, st.Failures)
			}
			if y.ClientBugs() != 2 {
				t.Errorf("server refused %d APPENDs with CLIENTBUG, want 2: the test proves less", y.ClientBugs())
			}
			if st.Appended != 6 || len(st.Reports) != 1 {
				t.Fatalf("appended %d, reports %+v", st.Appended, st.Reports)
			}
			r := st.Reports[0]
			want := "[{INBOX#2 [line ends]} {INBOX#4 [line ends]}]"
			if r.Exact != 4 || fmt.Sprint(r.Altered) != want {
				t.Errorf("report %+v; want 4 exact, altered %s", r, want)
			}
			snap := tg.snapshot(t)
			if len(snap["INBOX"]) != 6 {
				t.Errorf("INBOX holds %d messages, want 6", len(snap["INBOX"]))
			}
			st, err = tg.run(context.Background(), src, prog, restore.Options{})
			if err != nil || len(st.Failures) > 0 || st.Appended != 0 {
				t.Errorf("second run: appended %d, %v %v; want nothing", st.Appended, err, st.Failures)
			}
			if snap := tg.snapshot(t); len(snap["INBOX"]) != 6 {
				t.Errorf("after the second run INBOX holds %d messages, want 6", len(snap["INBOX"]))
			}
		})
	}
}
