package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"
)

// With --log-format json every line mailkeep writes on stderr is one JSON
// object: slog's records as they are, and every other line (summaries,
// failures, errors, warnings, usage) wrapped as
// {"time":…,"level":…,"msg":LINE}. run wraps stderr in a jsonLines before
// any command parses its flags, so even flag errors come out as JSON.

// jsonLogFormat reports whether args ask for --log-format json.
func jsonLogFormat(args []string) bool {
	for i, a := range args {
		switch a {
		case "--":
			return false
		case "--log-format=json", "-log-format=json":
			return true
		case "--log-format", "-log-format":
			if i+1 < len(args) && args[i+1] == "json" {
				return true
			}
		}
	}
	return false
}

// jsonLines turns the lines written to it into JSON lines on w.
type jsonLines struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	now func() time.Time
}

func newJSONLines(w io.Writer) *jsonLines { return &jsonLines{w: w, now: time.Now} }

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = append(j.buf, p...)
	for {
		i := bytes.IndexByte(j.buf, '\n')
		if i < 0 {
			break
		}
		line := j.buf[:i]
		j.buf = j.buf[i+1:]
		if err := j.emit(line); err != nil {
			return len(p), err
		}
	}
	if len(j.buf) == 0 {
		j.buf = nil // do not keep a large backing array
	}
	return len(p), nil
}

// Flush writes a last line that had no newline.
func (j *jsonLines) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	line := j.buf
	j.buf = nil
	return j.emit(line)
}

type jsonLine struct {
	Time  string `json:"time"`
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

func (j *jsonLines) emit(line []byte) error {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	if line[0] == '{' && json.Valid(line) { // a slog record
		_, err := j.w.Write(append(line, '\n'))
		return err
	}
	msg := strings.ToValidUTF8(string(line), "\uFFFD")
	b, err := json.Marshal(jsonLine{Time: j.now().Format(time.RFC3339Nano), Level: lineLevel(msg), Msg: msg})
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// lineLevel classifies a plain stderr line: "mailkeep CMD [NAME]: REST".
// A summary ("…: ok, 3 folders…") is INFO, WARN when partial, ERROR
// when failed or interrupted; a warning is WARN; any other line of a command (a failure, an
// error) is ERROR; lines not of that form (usage text) are INFO.
func lineLevel(line string) string {
	if !strings.HasPrefix(line, "mailkeep ") && !strings.HasPrefix(line, "mailkeep:") {
		return "INFO"
	}
	_, rest, ok := strings.Cut(line, ": ")
	if !ok {
		return "INFO"
	}
	word, _, _ := strings.Cut(rest, ",")
	word, _, _ = strings.Cut(word, ";")
	switch {
	case strings.HasPrefix(rest, "warning:"), word == "partial":
		return "WARN"
	case word == "ok", word == "authorized":
		return "INFO"
	}
	return "ERROR"
}
