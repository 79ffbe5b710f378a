package account

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url, tls string
		want     Server
		err      string
	}{
		{"imaps://alice@mail.example.com", "", Server{IMAP, Implicit, "mail.example.com", "mail.example.com:993", "alice"}, ""},
		{"imap://alice@localhost:10143", "none", Server{IMAP, None, "localhost", "localhost:10143", "alice"}, ""},
		{"imap://a%40b.c@h", "", Server{IMAP, StartTLS, "h", "h:143", "a@b.c"}, ""},
		{"pop3s://bob@pop.example.com", "", Server{POP3, Implicit, "pop.example.com", "pop.example.com:995", "bob"}, ""},
		{"pop3://bob@[::1]:1110", "", Server{POP3, StartTLS, "::1", "[::1]:1110", "bob"}, ""},
		{"http://a@b", "", Server{}, "scheme"},
		{"imap://a:secret@b", "", Server{}, "no password in the URL"},
		{"imap://b", "", Server{}, "no user"},
		{"imap://a@", "", Server{}, "no host"},
		{"imap://a@b/INBOX", "", Server{}, "path"},
		{"imap://a@b", "off", Server{}, "--tls"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.url, tt.tls)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error %v, want %q (and no password)", tt.url, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v %v, want %+v", tt.url, got, err, tt.want)
		}
	}
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("from file\r\n"), 0o600)
	t.Setenv("MAILKEEP_PASSWORD", "from env")
	for _, tt := range []struct {
		src  PasswordSource
		want string
		err  string
	}{
		{PasswordSource{}, "from env", ""},
		{PasswordSource{File: f}, "from file", ""},
		{PasswordSource{Command: "printf 'from command\\n'"}, "from command", ""},
		{PasswordSource{Command: "exit 3"}, "", "password-command"},
		{PasswordSource{File: f, Command: "true"}, "", "not both"},
		{PasswordSource{Env: "MAILKEEP_UNSET_FOR_TEST"}, "", "no password"},
	} {
		got, err := tt.src.Password(context.Background())
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) || got != tt.want {
			t.Errorf("%+v: %q %v", tt.src, got, err)
		}
	}
}

func TestPasswordCommandErrorAndEnv(t *testing.T) {
	t.Setenv("OTHER_ACCOUNT_PW", "other")
	for _, tt := range []struct {
		cmd, want, not string
	}{
		{"echo 'gpg: decryption failed' >&2; echo hunter2 >&2; exit 2", `exit status 2 (stderr starts: "gpg: decryption failed")`, "hunter2"},
		{"printf '\\n\\n  %0100d\\n' 0 >&2; exit 1", `"` + strings.Repeat("0", 60) + `…"`, strings.Repeat("0", 61)},
		{"exit 4", "--password-command failed: exit status 4", "stderr"},
		{`test -z "${OTHER_ACCOUNT_PW+set}" || exit 9; exit 5`, "exit status 5", ""},
	} {
		_, err := PasswordSource{Command: tt.cmd, HideEnv: []string{"OTHER_ACCOUNT_PW"}}.Password(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.not != "" && strings.Contains(err.Error(), tt.not)) {
			t.Errorf("%s: error %v, want %q and not %q", tt.cmd, err, tt.want, tt.not)
		}
	}
}
