// Package progress draws a one-line progress display on a terminal. It is
// enabled only when the output is a TTY, so cron and systemd logs stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Line is a throttled, self-overwriting status line.
type Line struct {
	w       io.Writer
	enabled bool
	verb    string
	mu      sync.Mutex
	n       int
	bytes   int64
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
	return &Line{w: w, enabled: enabled, verb: verb, start: time.Now()}
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
	if time.Since(l.last) < 100*time.Millisecond {
		return
	}
	l.last = time.Now()
	el := time.Since(l.start).Seconds()
	fmt.Fprintf(l.w, "\r\033[K%s %d messages, %.1f MB (%.1f MB/s) %s", l.verb, l.n, float64(l.bytes)/1e6, float64(l.bytes)/1e6/max(el, 0.001), trim(l.folder, 40))
	l.drawn = true
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
