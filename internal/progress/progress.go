// Package progress draws a one-line progress display on a terminal. It is
// enabled only when the output is a TTY, so cron and systemd logs stay clean.
//
// When the caller knows the totals (SetTotal: the restore plan, the
// catalog, the folders' STATUS), the line shows them with the percentage
// done and an estimated time to go (ETA), from the rate so far.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Line is a throttled, self-overwriting status line.
type Line struct {
	w       io.Writer
	enabled bool
	verb    string
	now     func() time.Time
	mu      sync.Mutex
	n       int
	bytes   int64
	totalN  int
	totalB  int64
	folder  string
	last    time.Time
	start   time.Time
	drawn   bool
}

// New returns a Line writing to w; it draws nothing unless w is a terminal
// and quiet is false.
func New(w io.Writer, verb string, quiet bool) *Line {
	enabled := false
	if f, ok := w.(*os.File); ok && !quiet {
		enabled = term.IsTerminal(int(f.Fd()))
	}
	return newLine(w, verb, enabled, time.Now)
}

// newLine is New with the decision and the clock given (tests).
func newLine(w io.Writer, verb string, enabled bool, now func() time.Time) *Line {
	return &Line{w: w, enabled: enabled, verb: verb, now: now, start: now()}
}

// SetTotal gives the number of messages and bytes the whole run will
// count (0: unknown); it may be called again as more becomes known.
func (l *Line) SetTotal(messages int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.totalN, l.totalB = messages, bytes
}

// Add counts n messages of size bytes in folder.
func (l *Line) Add(folder string, n int, bytes int64) {
	if !l.enabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += n
	l.bytes += bytes
	l.folder = folder
	now := l.now()
	if now.Sub(l.last) < 100*time.Millisecond {
		return
	}
	l.last = now
	fmt.Fprintf(l.w, "\r\033[K%s", l.text(now))
	l.drawn = true
}

// text is the line's content at now.
func (l *Line) text(now time.Time) string {
	el := now.Sub(l.start).Seconds()
	var b strings.Builder
	b.WriteString(l.verb)
	if l.totalN > 0 {
		fmt.Fprintf(&b, " %d/%d messages", l.n, l.totalN)
	} else {
		fmt.Fprintf(&b, " %d messages", l.n)
	}
	if l.totalB > 0 {
		fmt.Fprintf(&b, ", %.1f/%.1f MB", float64(l.bytes)/1e6, float64(l.totalB)/1e6)
	} else {
		fmt.Fprintf(&b, ", %.1f MB", float64(l.bytes)/1e6)
	}
	fmt.Fprintf(&b, " (%.1f MB/s)", float64(l.bytes)/1e6/max(el, 0.001))
	// Done and total by bytes when known (time goes with bytes), else by
	// messages.
	done, total := float64(l.bytes), float64(l.totalB)
	if l.totalB <= 0 {
		done, total = float64(l.n), float64(l.totalN)
	}
	if total > 0 {
		frac := min(done/total, 1)
		fmt.Fprintf(&b, " %d%%", int(frac*100))
		if done > 0 && el >= 1 {
			eta := time.Duration(el * (total - min(done, total)) / done * float64(time.Second))
			fmt.Fprintf(&b, " ETA %s", formatETA(eta))
		}
	}
	if l.folder != "" {
		b.WriteString(" ")
		b.WriteString(trim(l.folder, 40))
	}
	return b.String()
}

// formatETA rounds d for a person: seconds under a minute, then minutes
// and seconds, then hours and minutes.
func formatETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Done clears the line.
func (l *Line) Done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}

func trim(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}
