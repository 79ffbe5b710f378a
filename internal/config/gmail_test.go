package config

import (
	"strings"
	"testing"
)

// gmail = false turns Gmail mode off for an IMAP account; unset means on;
// on a POP3 account it is a mistake.
func TestGmailKey(t *testing.T) {
	cfg, err := Parse("config.toml", []byte(`[[account]]
name = "old"
imap = "imaps://me@imap.gmail.com"
password_env = "PW"
gmail = false

[[account]]
name = "new"
imap = "imaps://you@imap.gmail.com"
password_env = "PW"
`))
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.Accounts[0].Gmail; g == nil || *g {
		t.Errorf("gmail = false read as %v", g)
	}
	if g := cfg.Accounts[1].Gmail; g != nil {
		t.Errorf("unset gmail read as %v", *g)
	}
	_, err = Parse("config.toml", []byte(`[[account]]
name = "pop"
pop3 = "pop3s://me@pop.gmail.com"
password_env = "PW"
gmail = false
`))
	if err == nil || !strings.Contains(err.Error(), "config.toml:5") || !strings.Contains(err.Error(), "gmail is an IMAP option") {
		t.Errorf("gmail on a POP3 account: %v", err)
	}
}
