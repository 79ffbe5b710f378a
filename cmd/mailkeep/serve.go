package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/internal/archiveimap"
)

// servePasswordEnv holds the password of "mailkeep serve" (or use
// --password-file).
const servePasswordEnv = "MAILKEEP_SERVE_PASSWORD"

// errInsecureListen refuses a non-loopback --listen without TLS and a
// password.
var errInsecureListen = errors.New("listening beyond loopback needs --tls-cert, --tls-key and a password (--password-file or " + servePasswordEnv + ")")

// serveOpts are serve's options.
type serveOpts struct {
	stderr                                       io.Writer
	fs                                           *flag.FlagSet
	com                                          common
	cfg                                          configFlag
	dir, listen, certFile, keyFile, pwFile, asOf string
	includeExpunged                              bool
}

// cmdServe serves archives read-only over IMAP until interrupted.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "serve", &serveOpts{stderr: stderr}, args, stderr)
}

func (o *serveOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.com.register(fs)
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:1143", "address to listen on (loopback unless TLS and a password are set)")
	fs.StringVar(&o.certFile, "tls-cert", "", "TLS certificate (PEM) for STARTTLS")
	fs.StringVar(&o.keyFile, "tls-key", "", "TLS key (PEM) for STARTTLS")
	fs.StringVar(&o.pwFile, "password-file", "", "file holding the password clients must give (else env "+servePasswordEnv+"; none: any password on loopback)")
	fs.StringVar(&o.asOf, "as-of", "", "serve the archive as it was at this time (2026-10-01 or RFC 3339)")
	fs.BoolVar(&o.includeExpunged, "include-expunged", false, "show messages expunged on the server under Expunged/")
}

func (o *serveOpts) run(ctx context.Context) error {
	targets, err := archiveTargets(&o.cfg, o.dir, o.fs.Args(), o.stderr)
	if err != nil {
		return err
	}
	sc := archiveimap.Config{IncludeExpunged: o.includeExpunged, Logger: o.com.logger(o.stderr)}
	for _, t := range targets {
		sc.Archives = append(sc.Archives, archiveimap.Source{Name: t.name, Dir: t.dir})
	}
	if o.asOf != "" {
		if sc.AsOf, err = parseWhen(o.asOf); err != nil {
			return usageError{err}
		}
	}
	if sc.Password, err = servePassword(o.pwFile); err != nil {
		return err
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return usageErr("give both --tls-cert and --tls-key")
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		sc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	loop, err := isLoopback(o.listen)
	if err != nil {
		return usageError{err}
	}
	if !loop && (sc.TLS == nil || sc.Password == "") {
		return usageError{fmt.Errorf("--listen %s: %w", o.listen, errInsecureListen)}
	}
	srv, err := archiveimap.New(ctx, sc)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	signalReady()
	fmt.Fprintf(o.stderr, "mailkeep serve: listening on %s\n", ln.Addr())
	return srv.Serve(ctx, ln)
}

// servePassword reads --password-file (first line) or the environment.
func servePassword(file string) (string, error) {
	if file == "" {
		return os.Getenv(servePasswordEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("--password-file %s: empty", file)
	}
	return pw, nil
}

// isLoopback says whether a listen address only accepts local clients.
// An empty host (all interfaces) is not loopback; a name must resolve to
// loopback addresses only.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "" {
		return false, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false, nil
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false, nil
		}
	}
	return true, nil
}
