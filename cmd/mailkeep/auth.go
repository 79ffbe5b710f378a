package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"golang.org/x/oauth2"
	"golang.org/x/term"
)

// authOpts are auth's options.
type authOpts struct {
	stderr    io.Writer
	fs        *flag.FlagSet
	cf        configFlag
	timeout   time.Duration
	port      int
	noBrowser bool
}

// cmdAuth authorizes one oauth2 account once and stores its refresh token.
func cmdAuth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "auth", &authOpts{stderr: stderr}, args, stderr)
}

func (o *authOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cf.register(fs)
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the authorization is not completed within this time")
	fs.IntVar(&o.port, "port", 0, "loopback flow: listen for the redirect on this port of 127.0.0.1 (default: any free port), e.g. to forward it with ssh -L")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "do not try to open a browser (the URL is always printed)")
}

func (o *authOpts) run(ctx context.Context) error {
	stderr := o.stderr
	if o.fs.NArg() != 1 {
		return usageErr("give exactly one account NAME")
	}
	a, err := authAccount(o.cf, o.fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	opt := oauth.FlowOptions{Provider: a.OAuth2.Provider, Timeout: o.timeout, Port: o.port}
	opt.ShowURL = func(url string) {
		fmt.Fprintf(stderr, "To authorize account %s, open this URL in a browser on this machine (the provider sends the answer to 127.0.0.1; from elsewhere, forward the port with ssh -L and --port, or use flow = \"device\"):\n\n  %s\n\nWaiting up to %s...\n", a.Name, url, o.timeout)
		if !o.noBrowser && isTerminal(stderr) {
			openBrowser(url)
		}
	}
	opt.ShowCode = func(uri, code, complete string) {
		fmt.Fprintf(stderr, "To authorize account %s, open %s on any device and enter the code\n\n  %s\n\n", a.Name, uri, code)
		if complete != "" {
			fmt.Fprintf(stderr, "(or open %s)\n", complete)
		}
		fmt.Fprintf(stderr, "Waiting up to %s...\n", o.timeout)
	}
	if err := authorize(ctx, a, opt); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("account %s: interrupted", a.Name)
		}
		return fmt.Errorf("account %s: %w", a.Name, err)
	}
	fmt.Fprintf(stderr, "mailkeep auth %s: authorized; refresh token stored in %s (mode 0600). Backups renew access by themselves.\n", a.Name, a.OAuth2.TokenFile)
	return nil
}

// authAccount finds the account NAME and checks it has something to
// authorize.
func authAccount(cf configFlag, name string, stderr io.Writer) (config.Account, error) {
	_, accts, err := cf.accounts([]string{name}, stderr)
	if err != nil {
		return config.Account{}, err
	}
	a := accts[0]
	switch {
	case a.OAuth2 == nil:
		return a, usageErr("account %s: has no [account.oauth2] table: nothing to authorize", a.Name)
	case a.OAuth2.TokenCommand != "":
		return a, usageErr("account %s: uses token_command: its helper handles authorization, mailkeep stores no token", a.Name)
	}
	return a, nil
}

// authorize runs the account's flow and stores the tokens.
func authorize(ctx context.Context, a config.Account, opt oauth.FlowOptions) error {
	o := a.OAuth2
	conf := oauth.Config(o)
	var tok *oauth2.Token
	var err error
	if o.Flow == "device" {
		tok, err = oauth.Device(ctx, conf, opt)
	} else {
		tok, err = oauth.Loopback(ctx, conf, opt)
	}
	if err != nil {
		return err
	}
	if err := oauth.SaveToken(o.TokenFile, o.ClientID, tok); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// openBrowser tries xdg-open (or open on macOS) without waiting for it.
func openBrowser(url string) {
	for _, bin := range []string{"xdg-open", "open"} {
		if p, err := exec.LookPath(bin); err == nil {
			cmd := exec.Command(p, url)
			if cmd.Start() == nil {
				go cmd.Wait()
			}
			return
		}
	}
}
