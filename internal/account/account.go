// Package account turns the command line's server URL, TLS options and
// password source into connection settings. Passwords never come from argv
// and never appear in errors or logs.
package account

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/mailkeep/mailkeep/internal/netdial"
)

// Protocol is the mail protocol of an account.
type Protocol string

// The protocols.
const (
	IMAP Protocol = "imap"
	POP3 Protocol = "pop3"
)

// TLS is how a connection is secured: netdial's TLSMode, the one type
// IMAP, POP3 and the config share.
type TLS = netdial.TLSMode

// The TLS modes.
const (
	Implicit = netdial.Implicit // imaps:// pop3s://
	StartTLS = netdial.StartTLS // imap:// pop3:// (STARTTLS / STLS required)
	None     = netdial.None     // --tls none
)

// Server is a parsed account URL.
type Server struct {
	Protocol Protocol
	TLS      TLS
	Host     string
	Addr     string // host:port
	User     string
}

// String is the URL without any password.
func (s Server) String() string {
	scheme := string(s.Protocol)
	if s.TLS == Implicit {
		scheme += "s"
	}
	return scheme + "://" + url.User(s.User).String() + "@" + s.Addr
}

// ErrTLSValue is wrapped by ParseURL's error for a --tls value other than
// "" and "none".
var ErrTLSValue = errors.New("the only value is none (TLS is otherwise chosen by the URL scheme)")

// ParseURL parses imaps://user@host[:port], imap://, pop3s:// or pop3://.
// tlsFlag is the --tls value: "" (as the scheme says) or "none".
func ParseURL(raw, tlsFlag string) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, fmt.Errorf("server URL %q: %w", raw, err)
	}
	var s Server
	var port string
	switch strings.ToLower(u.Scheme) {
	case "imaps":
		s.Protocol, s.TLS, port = IMAP, Implicit, "993"
	case "imap":
		s.Protocol, s.TLS, port = IMAP, StartTLS, "143"
	case "pop3s":
		s.Protocol, s.TLS, port = POP3, Implicit, "995"
	case "pop3":
		s.Protocol, s.TLS, port = POP3, StartTLS, "110"
	default:
		return Server{}, fmt.Errorf("server URL %q: scheme must be imaps, imap, pop3s or pop3", raw)
	}
	if _, has := u.User.Password(); has {
		return Server{}, errors.New("server URL: put no password in the URL (it would show in the process list); use MAILKEEP_PASSWORD, --password-file or --password-command")
	}
	s.User = u.User.Username()
	if s.User == "" {
		return Server{}, fmt.Errorf("server URL %q: no user name (want %s://USER@HOST)", raw, u.Scheme)
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return Server{}, fmt.Errorf("server URL %q: no host", raw)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if u.Path != "" && u.Path != "/" {
		return Server{}, fmt.Errorf("server URL %q: unexpected path %q", raw, u.Path)
	}
	s.Addr = net.JoinHostPort(s.Host, port)
	switch tlsFlag {
	case "":
	case "none":
		s.TLS = None
	default:
		return Server{}, fmt.Errorf("--tls %q: %w", tlsFlag, ErrTLSValue)
	}
	return s, nil
}

// TLSConfig returns the TLS settings: system roots plus caFile when given.
func TLSConfig(host, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate found", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// PasswordSource says where the password comes from.
type PasswordSource struct {
	Env     string // variable name, default MAILKEEP_PASSWORD
	File    string // --password-file
	Command string // --password-command, run with sh -c
	// HideEnv names environment variables the command must not inherit:
	// the other configured accounts' password_env variables.
	HideEnv []string
}

// Password reads the password. A file or command output loses one trailing
// newline (CRLF or LF); nothing else is trimmed.
func (p PasswordSource) Password(ctx context.Context) (string, error) {
	switch {
	case p.File != "" && p.Command != "":
		return "", errors.New("give --password-file or --password-command, not both")
	case p.File != "":
		b, err := os.ReadFile(p.File)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		return trimNL(string(b)), nil
	case p.Command != "":
		cmd := exec.CommandContext(ctx, "sh", "-c", p.Command)
		cmd.Env = environWithout(os.Environ(), p.HideEnv)
		stderr := &headWriter{max: 4096}
		cmd.Stderr = stderr
		out, err := cmd.Output()
		if err != nil {
			// Its stderr may hold the secret: name the exit status and
			// only a clipped first line.
			if line := stderrHint(stderr.b.String()); line != "" {
				return "", fmt.Errorf("--password-command failed: %w (stderr starts: %q)", err, line)
			}
			return "", fmt.Errorf("--password-command failed: %w", err)
		}
		return trimNL(string(out)), nil
	}
	env := p.Env
	if env == "" {
		env = "MAILKEEP_PASSWORD"
	}
	if v, ok := os.LookupEnv(env); ok {
		return v, nil
	}
	return "", fmt.Errorf("no password: set %s, or use --password-file or --password-command", env)
}

func trimNL(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// environWithout is env without the variables named in hide.
func environWithout(env, hide []string) []string {
	if len(hide) == 0 {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(hide, name) {
			out = append(out, kv)
		}
	}
	return out
}

// stderrHintLen bounds how much of a failing password command's stderr is
// shown.
const stderrHintLen = 60

// stderrHint is the first non-empty line of s, control characters
// replaced, clipped to stderrHintLen runes ("…" marks a cut).
func stderrHint(s string) string {
	var line string
	for l := range strings.Lines(s) {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	r := []rune(line)
	for i, c := range r {
		if c < 0x20 || c == 0x7f {
			r[i] = ' '
		}
	}
	if len(r) > stderrHintLen {
		return string(r[:stderrHintLen]) + "…"
	}
	return string(r)
}

// headWriter keeps the first max bytes written to it and discards the rest
// (a command's stderr is not a buffer the command may grow without bound).
type headWriter struct {
	b   bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
