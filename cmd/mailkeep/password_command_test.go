package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordCommandHygiene: a failing password_command's stderr is not
// printed in full (only its exit status and a clipped first line), and the
// command does not inherit the other accounts' password_env variables.
func TestPasswordCommandHygiene(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	const otherSecret, ownSecret = "other-account-Pa55", "line-two-Secret-99"
	long := strings.Repeat("x", 200)
	script := filepath.Join(dir, "pw.sh")
	os.WriteFile(script, []byte(`printf '%s' "${OTHER_PW-unset}" > `+seen+`; printf '`+long+`\n`+ownSecret+`\n' >&2; exit 7`), 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(`[[account]]
name = "other"
imap = "imap://bob@127.0.0.1:1"
password_env = "OTHER_PW"
archive = "`+filepath.Join(dir, "other")+`"

[[account]]
name = "me"
imap = "imap://alice@127.0.0.1:1"
password_command = "sh `+script+`"
archive = "`+filepath.Join(dir, "me")+`"
`), 0o600)
	for _, args := range [][]string{{"backup", "--config", cfg, "me"}, {"check", "--config", cfg, "me"}} {
		os.Remove(seen)
		r := mailkeep(t, []string{"OTHER_PW=" + otherSecret}, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "exit status 7") {
			t.Errorf("%q: exit %d, stderr %q: want the exit status", args, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, ownSecret) || strings.Contains(r.stderr, long) || strings.Contains(r.stdout, ownSecret) {
			t.Errorf("%q: the command's whole stderr is printed: %q", args, r.stderr)
		}
		if !strings.Contains(r.stderr, "xxxxxxxxxx") {
			t.Errorf("%q: no clipped first line of the command's stderr: %q", args, r.stderr)
		}
		if b, err := os.ReadFile(seen); err != nil || string(b) != "unset" {
			t.Errorf("%q: password_command saw OTHER_PW=%q (%v), want it unset", args, b, err)
		}
	}
}
