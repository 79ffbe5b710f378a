// Package imapconn opens logged-in go-imap v2 client connections with the
// TLS policy mailkeep promises: implicit TLS, STARTTLS that is refused when
// the server does not offer it, or plaintext only when asked for. Fetchers
// and restore share it.
package imapconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailkeep/mailkeep/internal/netdial"
	"github.com/mailkeep/mailkeep/internal/oauth"
)

// TLSMode is how a connection is secured: netdial's, shared with POP3
// and the account URLs.
type TLSMode = netdial.TLSMode

// The TLS modes.
const (
	TLSImplicit = netdial.Implicit // imaps://, port 993
	TLSStartTLS = netdial.StartTLS // imap://, port 143, STARTTLS required
	TLSNone     = netdial.None     // --tls none: plaintext (loopback, tests)
)

// Config describes a server account.
type Config struct {
	Addr      string // host:port
	TLS       TLSMode
	TLSConfig *tls.Config // nil: system roots, ServerName from Addr
	User      string
	Password  string
	// OAuth2, when set, logs in with SASL XOAUTH2 or OAUTHBEARER and a
	// fresh access token per connection instead of the password.
	OAuth2 *oauth.Bearer
	// Handler receives unilateral data (optional).
	Handler *imapclient.UnilateralDataHandler
	// Timeout is how long to wait for a byte from the server while an
	// answer is owed (0: DefaultTimeout).
	Timeout time.Duration
}

// String names the account without its password, for errors and logs.
func (c Config) String() string { return c.User + "@" + c.Addr }

// Dial connects and logs in. When ctx ends the connection is closed, which
// makes any pending command fail: go-imap v2 has no contexts of its own.
// The connection go-imap gets is guarded (see guard): no byte for
// cfg.Timeout while a command is outstanding, or a line longer than
// MaxLine, ends it; Explain turns go-imap's resulting error back into the
// typed *GuardError.
func Dial(ctx context.Context, cfg Config) (*imapclient.Client, error) {
	stop0 := func() bool { return false }
	conn, greeted, err := secure(ctx, cfg, &stop0)
	if err != nil {
		return nil, err
	}
	// secure's AfterFunc closes conn when ctx ends during the login too.
	defer stop0()
	opts := &imapclient.Options{UnilateralDataHandler: cfg.Handler}
	g := newGuard(conn, cfg.String(), cfg.Timeout)
	if greeted {
		// go-imap waits for a greeting; the server sent its one before
		// STARTTLS, and capabilities are asked afresh after TLS.
		g.prefix = []byte("* OK [mailkeep] TLS established\r\n")
		delete(g.pending, greeting) // that was before STARTTLS
	}
	c := imapclient.New(buffered(g), opts)
	guards.Store(c, g)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: greeting: %w", cfg, Explain(c, err))
	}
	// authed records a successful AUTHENTICATE: go-imap may update
	// c.State() a moment after the command's Wait returns, and a LOGIN
	// sent then is a BAD in the authenticated state.
	authed := c.State() == imap.ConnStateAuthenticated // PREAUTH
	if !authed && cfg.OAuth2 != nil {
		if err := authenticate(ctx, c, cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", cfg, Explain(c, err))
		}
		authed = true
	}
	if !authed {
		if err := c.Login(cfg.User, cfg.Password).Wait(); err != nil {
			c.Close()
			var ierr *imap.Error
			if errors.As(err, &ierr) {
				return nil, fmt.Errorf("%s: login refused: %w", cfg, ierr)
			}
			return nil, fmt.Errorf("%s: login: %w", cfg, Explain(c, err))
		}
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", cfg, ctx.Err())
	}
	return c, nil
}

// guards maps each client Dial made to its guard, for Explain. Entries are
// a pointer pair each and a run dials a bounded number of connections.
var guards sync.Map

// Explain returns err, or the guard's typed error (*GuardError: ErrTimeout,
// ErrLineTooLong) when the guard ended c's connection: go-imap reports it
// only as text.
func Explain(c *imapclient.Client, err error) error {
	if err == nil || c == nil {
		return err
	}
	v, ok := guards.Load(c)
	if !ok {
		return err
	}
	gerr := v.(*guard).Err()
	if gerr == nil || errors.Is(err, gerr) {
		return err
	}
	return gerr
}

// secure opens the TCP connection and secures it as cfg.TLS says:
// implicit TLS, STARTTLS (greeted: the greeting was read before it), or
// none. *stop is set to a func that stops closing the connection when ctx
// ends; until it is called, ctx's end closes the connection.
func secure(ctx context.Context, cfg Config, stop *func() bool) (conn net.Conn, greeted bool, err error) {
	conn, tc, err := netdial.Dial(ctx, cfg.Addr, cfg.TLSConfig, cfg.Timeout)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", cfg, err)
	}
	raw := conn
	*stop = context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(err error) (net.Conn, bool, error) {
		(*stop)()
		raw.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, false, fmt.Errorf("%s: %w", cfg, err)
	}
	switch cfg.TLS {
	case TLSImplicit:
		if tc.NextProtos == nil {
			tc.NextProtos = []string{"imap"}
		}
		t, err := netdial.Handshake(ctx, conn, tc, cfg.Timeout)
		if err != nil {
			return fail(fmt.Errorf("TLS: %w", err))
		}
		return t, false, nil
	case TLSStartTLS:
		t, err := startTLS(ctx, conn, tc, cfg)
		if err != nil {
			return fail(err)
		}
		return t, true, nil
	case TLSNone:
		return conn, false, nil
	}
	return fail(fmt.Errorf("unknown TLS mode %d", cfg.TLS))
}

// ErrNoStartTLS is returned for an imap:// server that does not offer
// STARTTLS: nothing secret has been sent.
var ErrNoStartTLS = errors.New("server does not offer STARTTLS")

// startTLS reads the greeting, checks that the server offers STARTTLS,
// runs it and the handshake, all before any credential is sent. Bytes the
// server sends after its STARTTLS answer and before TLS are refused
// (command injection, CVE-2011-0411 style).
func startTLS(ctx context.Context, conn net.Conn, tc *tls.Config, cfg Config) (*tls.Conn, error) {
	g := newGuard(conn, cfg.String(), cfg.Timeout)
	br := bufio.NewReaderSize(g, 4096)
	w := func(line string) error {
		_, err := g.Write([]byte(line + "\r\n"))
		return err
	}
	read := func() (string, error) {
		var sb strings.Builder
		for {
			b, err := br.ReadSlice('\n')
			sb.Write(b)
			if err == bufio.ErrBufferFull {
				continue // the guard bounds the line
			}
			if err != nil {
				return "", fmt.Errorf("before STARTTLS: %w", err)
			}
			return strings.TrimRight(sb.String(), "\r\n"), nil
		}
	}
	greet, err := read()
	if err != nil {
		return nil, err
	}
	switch up := strings.ToUpper(greet); {
	case strings.HasPrefix(up, "* PREAUTH"):
		return nil, errors.New("server sent PREAUTH on an unencrypted connection; refusing it")
	case !strings.HasPrefix(up, "* OK"):
		return nil, fmt.Errorf("%w: its greeting %q is not an IMAP server's", ErrNoStartTLS, clip(greet))
	}
	if err := w("S1 CAPABILITY"); err != nil {
		return nil, err
	}
	starttls := false
	for {
		l, err := read()
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(strings.ToUpper(l), "* CAPABILITY "); ok {
			for _, c := range strings.Fields(rest) {
				starttls = starttls || c == "STARTTLS"
			}
		}
		if strings.HasPrefix(l, "S1 ") {
			break
		}
	}
	if !starttls {
		return nil, fmt.Errorf("%w; refusing to send the password in clear (use imaps://, or --tls none on a trusted network)", ErrNoStartTLS)
	}
	if err := w("S2 STARTTLS"); err != nil {
		return nil, err
	}
	for {
		l, err := read()
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(l, "S2 "); ok {
			if !strings.HasPrefix(strings.ToUpper(rest), "OK") {
				return nil, fmt.Errorf("STARTTLS refused: %q", clip(rest))
			}
			break
		}
	}
	if br.Buffered() > 0 {
		return nil, errors.New("server sent data after its STARTTLS answer, before TLS; refusing it")
	}
	t, err := netdial.Handshake(ctx, conn, tc, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("STARTTLS: TLS: %w", err)
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// saslClient checks that the server offers the account's mechanism, gets
// an access token and returns the SASL client that sends it.
func saslClient(ctx context.Context, cfg Config, offered bool) (string, *oauth.SASLClient, error) {
	mech := cfg.OAuth2.Mech()
	if !offered {
		return "", nil, fmt.Errorf("server does not offer SASL %s (mechanism = %q in [account.oauth2]): try the other of xoauth2/oauthbearer", mech, strings.ToLower(mech))
	}
	return cfg.OAuth2.Start(ctx, cfg.User)
}

// authenticate logs in with an OAuth2 access token.
func authenticate(ctx context.Context, c *imapclient.Client, cfg Config) error {
	b := cfg.OAuth2
	mech := b.Mech()
	tok, sc, err := saslClient(ctx, cfg, c.Caps().Has(imap.Cap("AUTH="+mech)))
	if err != nil {
		return err
	}
	err = c.Authenticate(sc)
	if err == nil {
		return nil
	}
	var ierr *imap.Error
	isIMAP := errors.As(err, &ierr)
	if sc.ServerError == nil && !isIMAP {
		return fmt.Errorf("OAuth2 login (%s): %w", mech, err)
	}
	detail := "server said: " + err.Error()
	if ierr != nil {
		detail = "server said: " + string(ierr.Type) + " " + ierr.Text
	}
	switch {
	case sc.ServerError != nil && ierr != nil && ierr.Type == imap.StatusResponseTypeBad:
		// go-imap sends XOAUTH2's empty acknowledgement as "=", which
		// Dovecot answers BAD; the error challenge is what matters.
		detail = sc.ServerError.String()
	case sc.ServerError != nil:
		detail = sc.ServerError.String() + "; " + detail
	}
	return b.Refuse(tok, detail)
}

// Watch closes c when ctx ends; call the returned func when done with c.
func Watch(ctx context.Context, c *imapclient.Client) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// bufConn reads through a large buffer: go-imap reads with a 4 KB bufio,
// which would cost a system call per 4 KB of mail.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func buffered(c net.Conn) net.Conn { return &bufConn{Conn: c, r: bufio.NewReaderSize(c, 256<<10)} }

// Dial is Dial(ctx, c), for fetch/imapsrc.Server.
func (c Config) Dial(ctx context.Context) (*imapclient.Client, error) { return Dial(ctx, c) }
