package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clock is a fake clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestLineTotalsPercentETA: with totals the line shows done/total, the
// percentage and an ETA from the rate so far; without, the counts only.
func TestLineTotalsPercentETA(t *testing.T) {
	for _, tc := range []struct {
		name          string
		totalN        int
		totalB        int64
		after         time.Duration
		n             int
		bytes         int64
		want, wantNot []string
	}{
		{"by bytes", 100, 100e6, 10 * time.Second, 25, 25e6,
			[]string{"restore 25/100 messages", "25.0/100.0 MB", "(2.5 MB/s)", " 25% ", "ETA 30s", "INBOX"}, nil},
		{"by messages", 200, 0, 2 * time.Minute, 50, 1e6,
			[]string{"50/200 messages", " 25% ", "ETA 6m00s"}, []string{"/0.0 MB"}},
		{"hours", 0, 1000e6, time.Hour, 10, 100e6, []string{" 10% ", "ETA 9h00m"}, nil},
		{"unknown totals", 0, 0, 10 * time.Second, 7, 2e6, []string{"restore 7 messages, 2.0 MB (0.2 MB/s) INBOX"}, []string{"%", "ETA"}},
		{"too early for an ETA", 10, 0, 500 * time.Millisecond, 1, 10, []string{" 10% "}, []string{"ETA"}},
		{"more than planned", 10, 0, 5 * time.Second, 12, 10, []string{"12/10 messages", " 100% ", "ETA 0s"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			var out bytes.Buffer
			l := newLine(&out, "restore", true, c.now)
			l.SetTotal(tc.totalN, tc.totalB)
			c.t = c.t.Add(tc.after)
			l.Add("INBOX", tc.n, tc.bytes)
			got := out.String()
			if !strings.HasPrefix(got, "\r\033[K") {
				t.Errorf("line %q does not overwrite", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("line %q lacks %q", got, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("line %q has %q", got, w)
				}
			}
			l.Done()
			if !strings.HasSuffix(out.String(), "\r\033[K") {
				t.Errorf("Done did not clear the line")
			}
		})
	}
}

// TestLineThrottle: updates closer than 100ms are counted, not drawn.
func TestLineThrottle(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	l := newLine(&out, "verify", true, c.now)
	l.Add("a", 1, 1)
	l.Add("a", 1, 1)
	if n := strings.Count(out.String(), "\r"); n != 1 {
		t.Fatalf("%d draws, want 1", n)
	}
	c.t = c.t.Add(100 * time.Millisecond)
	l.Add("a", 1, 1)
	if !strings.Contains(out.String(), "verify 3 messages") {
		t.Fatalf("%q", out.String())
	}
}

// TestLineDisabled: a Line that is not on a terminal writes nothing.
func TestLineDisabled(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "backup", false)
	l.SetTotal(10, 10)
	l.Add("x", 1, 1)
	l.Done()
	if out.Len() != 0 {
		t.Fatalf("wrote %q", out.String())
	}
}

func TestFormatETA(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 3*time.Hour + 29*time.Minute + 40*time.Second: "3h30m"} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}
