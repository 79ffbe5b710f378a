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
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailkeep/mailkeep/internal/oauth"
)

// TLSMode is how a connection is secured.
type TLSMode int

// The TLS modes.
const (
	TLSImplicit TLSMode = iota // imaps://, port 993
	TLSStartTLS                // imap://, port 143, STARTTLS required
	TLSNone                    // --tls none: plaintext (loopback, tests)
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
}

// String names the account without its password, for errors and logs.
func (c Config) String() string { return c.User + "@" + c.Addr }

// Dial connects and logs in. When ctx ends the connection is closed, which
// makes any pending command fail: go-imap v2 has no contexts of its own.
func Dial(ctx context.Context, cfg Config) (*imapclient.Client, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	tc := cfg.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	opts := &imapclient.Options{TLSConfig: tc, UnilateralDataHandler: cfg.Handler}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *imapclient.Client
	switch cfg.TLS {
	case TLSImplicit:
		if tc.NextProtos == nil {
			tc.NextProtos = []string{"imap"}
		}
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: TLS: %w", cfg, err)
		}
		c = imapclient.New(buffered(t), opts)
	case TLSStartTLS:
		c, err = imapclient.NewStartTLS(buffered(conn), opts)
		if err != nil {
			return nil, fmt.Errorf("%s: STARTTLS failed, refusing to send the password in clear (use imaps://, or --tls none on a trusted network): %w", cfg, err)
		}
	case TLSNone:
		c = imapclient.New(buffered(conn), opts)
	default:
		conn.Close()
		return nil, fmt.Errorf("%s: unknown TLS mode %d", cfg, cfg.TLS)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: greeting: %w", cfg, err)
	}
	if c.State() != imap.ConnStateAuthenticated && cfg.OAuth2 != nil {
		if err := authenticate(ctx, c, cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", cfg, err)
		}
	}
	if c.State() != imap.ConnStateAuthenticated {
		if err := c.Login(cfg.User, cfg.Password).Wait(); err != nil {
			c.Close()
			var ierr *imap.Error
			if errors.As(err, &ierr) {
				return nil, fmt.Errorf("%s: login refused: %s", cfg, ierr.Text)
			}
			return nil, fmt.Errorf("%s: login: %w", cfg, err)
		}
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", cfg, ctx.Err())
	}
	return c, nil
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
