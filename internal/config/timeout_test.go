package config

import (
	"strings"
	"testing"
	"time"
)

func TestTimeoutKey(t *testing.T) {
	acct := "[[account]]\nname = \"a\"\nimap = \"imaps://u@h\"\npassword_env = \"P\"\n"
	for _, tt := range []struct {
		line string
		want time.Duration
		err  string
	}{
		{"", 2 * time.Minute, ""},
		{"timeout = \"90s\"\n", 90 * time.Second, ""},
		{"timeout = \"300ms\"\n", 300 * time.Millisecond, ""},
		{"timeout = \"soon\"\n", 0, `config.toml:5`},
		{"timeout = \"10ms\"\n", 0, `config.toml:5: account "a": timeout = "10ms": want 100ms to 1h`},
		{"timeout = \"2h\"\n", 0, `want 100ms to 1h`},
	} {
		cfg, err := Parse("config.toml", []byte(acct+tt.line))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.line, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.line, err)
		case time.Duration(cfg.Accounts[0].Timeout) != tt.want:
			t.Errorf("%q: timeout %s, want %s", tt.line, time.Duration(cfg.Accounts[0].Timeout), tt.want)
		}
	}
}
