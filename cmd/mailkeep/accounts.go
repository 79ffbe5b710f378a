package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/pop3"
)

// configFlag is --config, shared by the commands that take account names.
type configFlag struct {
	path string
	fs   *flag.FlagSet // for command-line settings that override the file's (--timeout)
}

func (c *configFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "configuration file (default $XDG_CONFIG_HOME/mailkeep/config.toml)")
	c.fs = fs
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
	passwordEnvs.set(cfg.Accounts)
	return cfg, nil
}

// passwordEnvs are the password_env variables of every account of the
// loaded configuration. An account's password_command runs without the
// other accounts' variables in its environment.
var passwordEnvs envNames

type envNames struct {
	mu    sync.Mutex
	names []string
}

func (e *envNames) set(accts []config.Account) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.names = nil
	for _, a := range accts {
		if a.PasswordEnv != "" {
			e.names = append(e.names, a.PasswordEnv)
		}
	}
}

// except returns the names other than own.
func (e *envNames) except(own string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, n := range e.names {
		if n != own {
			out = append(out, n)
		}
	}
	return out
}

// accounts loads the configuration and selects the accounts named (none:
// all of them); a name the file does not have is a usage error.
func (c *configFlag) accounts(names []string, stderr io.Writer) (*config.Config, []config.Account, error) {
	cfg, err := c.load(stderr)
	if err != nil {
		return nil, nil, err
	}
	c.path = cfg.Path
	accts, err := cfg.Select(names)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if d, ok := timeoutFlag(c.fs); ok {
		if err := validTimeout(d); err != nil {
			return nil, nil, err
		}
		for i := range accts {
			accts[i].Timeout = config.Duration(d)
		}
	}
	return cfg, accts, nil
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
	cfg := imapconn.Config{Addr: s.Addr, TLS: s.TLS, TLSConfig: tc, User: s.User, Timeout: time.Duration(a.Timeout)}
	if a.OAuth2 != nil {
		cfg.OAuth2, err = accountBearer(ctx, a)
		if err != nil {
			return s, cfg, fmt.Errorf("account %s: %w", a.Name, err)
		}
		return s, cfg, nil
	}
	if a.PasswordEnv != "" {
		if _, ok := os.LookupEnv(a.PasswordEnv); !ok {
			return s, cfg, usageErr("account %s: no password: environment variable %s (password_env) is not set", a.Name, a.PasswordEnv)
		}
	}
	pw := account.PasswordSource{Env: a.PasswordEnv, File: a.PasswordFile, Command: a.PasswordCommand, HideEnv: passwordEnvs.except(a.PasswordEnv)}
	cfg.Password, err = pw.Password(ctx)
	if err != nil {
		return s, cfg, usageErr("account %s: %w", a.Name, err)
	}
	return s, cfg, nil
}

// accountBearer is how an oauth2 account's connections log in. It gets a
// first access token at once, so that an account that needs "mailkeep auth"
// again fails before its archive is opened; that token goes to the first
// connection.
func accountBearer(ctx context.Context, a config.Account) (*oauth.Bearer, error) {
	o := a.OAuth2
	b := &oauth.Bearer{Account: a.Name, Mechanism: o.Mechanism}
	if o.TokenCommand != "" {
		b.Token = (&oauth.CommandSource{Account: a.Name, Command: o.TokenCommand}).Token
		b.FromCommand = true
	} else {
		src := oauth.NewSource(a.Name, o, oauth.SourceOptions{})
		b.Token, b.Refused = src.Token, src.Refused
	}
	first, err := b.Token(ctx)
	if err != nil {
		return nil, err
	}
	b.Token = handFirst(first, b.Token)
	return b, nil
}

// handFirst returns first on its first call and asks next afterwards.
func handFirst(first string, next func(context.Context) (string, error)) func(context.Context) (string, error) {
	var once sync.Once
	return func(ctx context.Context) (string, error) {
		tok := ""
		once.Do(func() { tok = first })
		if tok != "" {
			return tok, nil
		}
		return next(ctx)
	}
}

// pop3Config is the POP3 client configuration of an account's connection
// settings, password or OAuth2.
func pop3Config(srv account.Server, cfg imapconn.Config) pop3.Config {
	return pop3.Config{Addr: cfg.Addr, TLS: srv.TLS, TLSConfig: cfg.TLSConfig, User: cfg.User, Password: cfg.Password, OAuth2: cfg.OAuth2, Timeout: cfg.Timeout}
}
