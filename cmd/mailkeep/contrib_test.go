package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// contribCommands returns the mailkeep command lines of contrib/crontab
// and the contrib/*.service files, split into words after the binary's
// path, keyed by file (and line, for the crontab).
func contribCommands(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	read := func(name string, pick func(line string) (string, bool)) {
		f, err := os.Open(filepath.Join("..", "..", "contrib", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if cmd, ok := pick(strings.TrimSpace(sc.Text())); ok {
				words := strings.Fields(cmd)
				if len(words) == 0 || !strings.HasSuffix(words[0], "/mailkeep") {
					t.Fatalf("%s: %q does not run mailkeep", name, cmd)
				}
				out[fmt.Sprintf("%s:%d", name, n)] = words[1:]
			}
		}
	}
	read("crontab", func(l string) (string, bool) {
		f := strings.Fields(l)
		if len(f) < 6 || strings.HasPrefix(l, "#") || strings.Contains(f[0], "=") {
			return "", false
		}
		return strings.Join(f[5:], " "), true
	})
	units, _ := filepath.Glob(filepath.Join("..", "..", "contrib", "*.service"))
	for _, u := range units {
		read(filepath.Base(u), func(l string) (string, bool) { return strings.CutPrefix(l, "ExecStart=") })
	}
	if len(out) != 4 || len(units) != 2 {
		t.Fatalf("found %d mailkeep commands in contrib (want 4: 2 crontab lines, 2 units): %v", len(out), out)
	}
	return out
}

// TestContribCommands runs the exact command lines of contrib/ (with $HOME
// and %h pointing at a temporary home) against an in-process IMAP server:
// they back up the configured account, print nothing, and write the
// metrics file they name.
func TestContribCommands(t *testing.T) {
	srv := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, srv.Addr, user, pass)
	imaptest.Append(t, c, "INBOX", nil, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), []byte("Subject: hi\r\n\r\nhello\r\n"))
	c.Logout().Wait()

	cmds := contribCommands(t)
	var verifies [][]string
	for _, args := range cmds {
		if args[0] == "verify" {
			verifies = append(verifies, args)
		}
	}
	for name, args := range cmds {
		if args[0] != "backup" {
			continue
		}
		// Each backup command line in its own home, then every verify
		// command line on what it wrote.
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			cfgDir := filepath.Join(home, ".config", "mailkeep")
			os.MkdirAll(cfgDir, 0o700)
			os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte(`archive_root = "~/mail"
[[account]]
name = "me"
imap = "imap://`+user+`@`+srv.Addr+`"
tls = "none"
password_env = "MAILKEEP_PASSWORD"
`), 0o600)
			expand := func(args []string) []string {
				out := make([]string, len(args))
				for i, a := range args {
					out[i] = strings.ReplaceAll(strings.ReplaceAll(a, "$HOME", home), "%h", home)
				}
				return out
			}
			env := append(pwEnv(), "HOME="+home, "XDG_CONFIG_HOME=", "XDG_DATA_HOME=")
			r := mailkeep(t, env, expand(args)...)
			if r.code != 0 || r.stdout != "" || r.stderr != "" {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(home, "mail", "me", "catalog.db")); err != nil {
				t.Errorf("no archive: %v", err)
			}
			prom := filepath.Join(home, ".local", "state", "mailkeep", "mailkeep.prom")
			m := readMetrics(t, prom)
			m.want(t, "mailkeep_last_run_outcome", "me", "ok", 1)
			m.want(t, "mailkeep_last_run_messages_fetched", "me", "", 1)
			for _, v := range verifies {
				r := mailkeep(t, env, expand(v)...)
				if r.code != 0 || r.stdout != "" || r.stderr != "" {
					t.Errorf("%v: exit %d, stdout %q, stderr %q", v, r.code, r.stdout, r.stderr)
				}
			}
			// The verify lines do check: a stray file makes them fail.
			os.WriteFile(filepath.Join(home, "mail", "me", "mbox", "stray"), []byte("x"), 0o600)
			for _, v := range verifies {
				if r := mailkeep(t, env, expand(v)...); r.code != exitPartial || !strings.Contains(r.stderr, "stray") {
					t.Errorf("%v with a stray file: exit %d, stderr %q", v, r.code, r.stderr)
				}
			}
		})
	}
}

// TestLogFormatJSON: with --log-format json every log line on stderr is a
// JSON object with time, level and msg; other values are refused.
func TestLogFormatJSON(t *testing.T) {
	srv := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, srv.Addr, user, pass)
	imaptest.Append(t, c, "INBOX", nil, time.Now(), []byte("Subject: hi\r\n\r\nhello\r\n"))
	c.Logout().Wait()
	dir := t.TempDir()
	r := mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+srv.Addr, "--tls", "none", "--archive", dir,
		"--verbose", "--quiet", "--log-format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if !strings.Contains(r.stderr, `"folder":"INBOX"`) {
		t.Fatalf("want the folder's debug log line, got %q", r.stderr)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q (%v)", l, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line without %q: %s", k, l)
			}
		}
	}
	r = mailkeep(t, pwEnv(), "backup", "--imap", "imap://"+user+"@"+srv.Addr, "--tls", "none", "--archive", dir, "--log-format", "xml")
	if r.code != exitUsage || !strings.Contains(r.stderr, `want text or json, not "xml"`) {
		t.Errorf("--log-format xml: exit %d, %q", r.code, r.stderr)
	}
}
