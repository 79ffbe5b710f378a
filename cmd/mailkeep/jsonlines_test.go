package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// TestLogFormatJSONEveryLine: with --log-format json every line on stderr
// is one JSON object with time, level and msg: log records, summaries,
// failures and errors, for backup, restore and verify.
func TestLogFormatJSONEveryLine(t *testing.T) {
	srv := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, srv.Addr, user, pass)
	for i := 0; i < 3; i++ {
		imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: hi\r\n\r\nhello "+strings.Repeat("x", i)+"\r\n"))
	}
	c.Logout().Wait()
	dir := filepath.Join(t.TempDir(), "a")
	url := "imap://" + user + "@" + srv.Addr
	jl := []string{"--log-format", "json"}
	runs := []struct {
		name    string
		env     []string
		args    []string
		code    int
		level   string // the level some line must have
		contain string // and a line's msg must contain
	}{
		{"backup ok", pwEnv(), []string{"backup", "--imap", url, "--tls", "none", "--archive", dir, "--verbose"}, 0, "INFO", "mailkeep backup " + url},
		{"backup wrong password", []string{"MAILKEEP_PASSWORD=wrong"}, []string{"backup", "--imap", url, "--tls", "none", "--archive", dir}, exitFailed, "ERROR", "mailkeep backup"},
		{"backup usage", pwEnv(), []string{"backup", "--imap", url, "--archive", dir, "--no-such-flag"}, exitUsage, "", "no-such-flag"},
		{"restore ok", pwEnv(), []string{"restore", "--archive", dir, "--imap", url, "--tls", "none", "--prefix", "Copy"}, 0, "INFO", "mailkeep restore to"},
		{"restore unreachable", pwEnv(), []string{"restore", "--archive", dir, "--imap", "imap://" + user + "@127.0.0.1:1", "--tls", "none"}, exitFailed, "ERROR", "mailkeep restore"},
		{"verify ok", nil, []string{"verify", "--archive", dir}, 0, "INFO", "mailkeep verify"},
		{"verify no archive", nil, []string{"verify", "--archive", filepath.Join(dir, "nope")}, -1, "ERROR", "mailkeep verify"},
	}
	for _, tt := range runs {
		t.Run(tt.name, func(t *testing.T) {
			r := mailkeep(t, tt.env, append(tt.args, jl...)...)
			if (tt.code >= 0 && r.code != tt.code) || (tt.code < 0 && r.code == 0) {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.code, r.stderr)
			}
			if !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr does not end in a newline: %q", r.stderr)
			}
			found := false
			for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				var rec struct{ Time, Level, Msg string }
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Time == "" || rec.Level == "" || rec.Msg == "" {
					t.Errorf("stderr line is not a JSON object with time, level and msg: %q (%v)", l, err)
					continue
				}
				if (tt.level == "" || rec.Level == tt.level) && strings.Contains(rec.Msg, tt.contain) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s line with %q on stderr:\n%s", tt.level, tt.contain, r.stderr)
			}
		})
	}
	// A damaged message: verify names it as an ERROR, still one JSON object a line.
	files, _ := filepath.Glob(filepath.Join(dir, "mbox", "*"))
	if len(files) == 0 {
		t.Fatal("no mbox file")
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(files[0], b, 0o600)
	r := mailkeep(t, nil, "verify", "--archive", dir, "--log-format=json")
	if r.code == 0 {
		t.Fatalf("verify of a damaged archive: exit 0: %s", r.stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !json.Valid([]byte(l)) || !strings.HasPrefix(l, "{") {
			t.Errorf("verify: stderr line is not a JSON object: %q", l)
		}
	}
}

func TestLineLevel(t *testing.T) {
	for line, want := range map[string]string{
		"mailkeep backup imap://a@h:143: ok, 3 folders (0 unchanged), 1 new messages": "INFO",
		"mailkeep backup me: partial, 3 folders":                                      "WARN",
		"mailkeep backup me: failed, 0 folders":                                       "ERROR",
		"mailkeep backup: failed: account a@h: folder INBOX uid 4: boom":              "ERROR",
		"mailkeep: warning: config.toml:3: unknown key":                               "WARN",
		"mailkeep restore: dial tcp 127.0.0.1:1: connection refused":                  "ERROR",
		"Usage of mailkeep backup:":                                                   "INFO",
	} {
		if got := lineLevel(line); got != want {
			t.Errorf("lineLevel(%q) = %s, want %s", line, got, want)
		}
	}
}
