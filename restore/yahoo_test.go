package restore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/yahootest"
	"github.com/mailkeep/mailkeep/restore"
)

// TestYahooLimitedViewRestore: a restore into a Yahoo folder larger than
// Yahoo's limited view (yahootest: SELECT, FETCH 1:* and SEARCH show the
// newest 50 of 150 messages; STATUS counts them all; an explicit UID
// range reaches any, 50 a command). A restore cancelled midway is run
// again without its progress record (the already-present rule must find
// the hidden messages), with --verify (every appended message found and
// exact), then again with the first run's record, whose UIDs are all
// hidden by now: nothing is appended twice, and the folder holds every
// message exactly once.
func TestYahooLimitedViewRestore(t *testing.T) {
	const total, limit, cancelAt = 150, 50, 80
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw %v", raw), func(t *testing.T) {
			y := yahootest.Start(t, "dst", pass, yahootest.Options{MessageLimit: limit})
			src := newSource()
			src.folder("Big", '/', "")
			date := time.Date(2022, 3, 4, 5, 6, 7, 0, time.UTC)
			for i := 0; i < total; i++ {
				b := fmt.Sprintf("Message-ID: <big%d@example.com>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)
				if i%30 == 7 {
					b = fmt.Sprintf("Subject: no id %d\r\n\r\nbody %d\r\n", i, i) // compared by bytes
				}
				src.add("Big", []byte(b), []string{`\Seen`}, date.Add(time.Duration(i)*time.Minute))
			}
			tg := target{addr: y.Addr, user: "dst", raw: raw}

			first := newProgress()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			st, err := tg.run(ctx, src, first, restore.Options{NoMultiAppend: true, Progress: func(restore.Event) {
				if n++; n == cancelAt {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) && len(st.Failures) == 0 {
				t.Fatalf("cancelled restore: %v, %+v; want it cancelled", err, st)
			}
			if st.Appended < cancelAt || st.Appended >= total {
				t.Fatalf("cancelled restore appended %d, want %d to %d", st.Appended, cancelAt, total-1)
			}
			t.Logf("cancelled after %d APPENDs confirmed", st.Appended)

			// Again without the record, verifying: the destination shows
			// 50 of the first run's messages.
			logs := &syncBuffer{}
			st, err = tg.run(context.Background(), src, newProgress(), restore.Options{Verify: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			noErr(t, "rerun without the record", st, err)
			if !strings.Contains(logs.String(), "paging through UID ranges") {
				t.Errorf("no paging logged: the test proves nothing\n%s", logs.String())
			}
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "paged through UID ranges") {
					t.Log(l)
				}
			}
			if st.Appended+st.Skipped != total || st.Appended > total-cancelAt {
				t.Errorf("rerun without the record: appended %d, skipped %d; want at most %d appended, %d in all", st.Appended, st.Skipped, total-cancelAt, total)
			}
			if len(st.Reports) != 1 {
				t.Fatalf("reports %+v", st.Reports)
			}
			if r := st.Reports[0]; r.Exact != st.Appended || r.Checked != st.Appended || r.Vanished != 0 || r.Unverified != 0 || len(r.Altered) != 0 {
				t.Errorf("verify: %s; want all %d appended checked and exact", r.String(), st.Appended)
			}

			// With the first run's record: its UIDs are hidden now.
			st, err = tg.run(context.Background(), src, first, restore.Options{Verify: true})
			noErr(t, "rerun with the first record", st, err)
			if st.Appended != 0 || st.Missing != 0 || st.Skipped != total {
				t.Errorf("rerun with the first record: appended %d, missing %d, skipped %d; want 0, 0, %d", st.Appended, st.Missing, st.Skipped, total)
			}

			y.SetMessageLimit(-1)
			want := src.want("", nil)["Big"]
			got := tg.snapshot(t)["Big"]
			count := map[string]int{}
			for _, m := range got {
				count[m.SHA256]++
			}
			for i, m := range want {
				if count[m.SHA256] != 1 {
					t.Errorf("message %d is on the destination %d times, want once", i, count[m.SHA256])
				}
			}
			if len(got) != total {
				t.Errorf("destination holds %d messages, want %d", len(got), total)
			}
		})
	}
}

// TestYahooCRLFUpFront: once Yahoo has refused one message without a
// final CRLF ("BAD [CLIENTBUG]"), the later such messages of the run get
// the CRLF before their first APPEND: one refused APPEND for six such
// messages, each stored once, --verify naming each altered (line ends).
func TestYahooCRLFUpFront(t *testing.T) {
	const total = 80
	noCRLF := map[int]bool{0: true, 40: true, 50: true, 60: true, 70: true, 79: true} // after the first's answer (32 APPENDs in flight)
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw %v", raw), func(t *testing.T) {
			y := yahootest.Start(t, "dst", pass, yahootest.Options{})
			src := newSource()
			src.folder("INBOX", '/', "")
			date := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
			for i := 0; i < total; i++ {
				b := fmt.Sprintf("Message-ID: <c%d@example.com>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)
				if noCRLF[i] {
					b = strings.TrimSuffix(b, "\r\n")
				}
				src.add("INBOX", []byte(b), nil, date)
			}
			tg := target{addr: y.Addr, user: "dst", raw: raw}
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{Verify: true})
			noErr(t, "restore", st, err)
			if y.ClientBugs() != 1 {
				t.Errorf("the server refused %d APPENDs with CLIENTBUG, want 1", y.ClientBugs())
			}
			if st.Appended != total || len(st.Reports) != 1 {
				t.Fatalf("appended %d, reports %+v", st.Appended, st.Reports)
			}
			r := st.Reports[0]
			var altered []string
			for _, a := range r.Altered {
				altered = append(altered, fmt.Sprint(a))
			}
			want := "{INBOX#0 [line ends]} {INBOX#40 [line ends]} {INBOX#50 [line ends]} {INBOX#60 [line ends]} {INBOX#70 [line ends]} {INBOX#79 [line ends]}"
			if sort.Strings(altered); r.Exact != total-len(noCRLF) || strings.Join(altered, " ") != want {
				t.Errorf("report %s; want %d exact, altered %s", r.String(), total-len(noCRLF), want)
			}
			if n := len(tg.snapshot(t)["INBOX"]); n != total {
				t.Errorf("INBOX holds %d messages, want %d", n, total)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
