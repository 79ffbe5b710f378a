package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// configFlag is --config, shared by the commands that take account names.
type configFlag struct{ path string }

func (c *configFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "configuration file (default $XDG_CONFIG_HOME/mailkeep/config.toml)")
}

// load reads the configuration and prints its warnings on stderr.
func (c *configFlag) load(stderr io.Writer) (*config.Config, error) {
	p := c.path
	if p == "" {
		p = config.DefaultPath()
	}
	cfg, warns, err := config.Load(p)
	if err != nil {
		return nil, usageError{err}
	}
	for _, w := range warns {
		fmt.Fprintln(stderr, "mailkeep: warning:", w)
	}
	return cfg, nil
}

// accountServer turns a configured account into connection settings, as
// connFlags.server does for the command line.
func accountServer(ctx context.Context, a config.Account) (account.Server, imapconn.Config, error) {
	raw := a.IMAP
	if raw == "" {
		raw = a.POP3
	}
	s, err := account.ParseURL(raw, a.TLS)
	if err != nil {
		return s, imapconn.Config{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	tc, err := account.TLSConfig(s.Host, a.CAFile)
	if err != nil {
		return s, imapconn.Config{}, fmt.Errorf("account %s: %w", a.Name, err)
	}
	cfg := imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSMode(s.TLS), TLSConfig: tc, User: s.User}
	if a.OAuth2 != nil {
		return s, cfg, fmt.Errorf("account %s: oauth2 is not supported yet", a.Name)
	}
	if a.PasswordEnv != "" {
		if _, ok := os.LookupEnv(a.PasswordEnv); !ok {
			return s, cfg, usageErr("account %s: no password: environment variable %s (password_env) is not set", a.Name, a.PasswordEnv)
		}
	}
	pw := account.PasswordSource{Env: a.PasswordEnv, File: a.PasswordFile, Command: a.PasswordCommand}
	cfg.Password, err = pw.Password(ctx)
	if err != nil {
		return s, cfg, usageErr("account %s: %w", a.Name, err)
	}
	return s, cfg, nil
}
