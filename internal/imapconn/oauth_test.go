package imapconn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
)

func caConfig(t *testing.T, file string) *tls.Config {
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func staticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// TestDialOAuth2 logs in to Dovecot, whose oauth2 passdb asks the fake
// authorization server about each token, with both mechanisms, in plain
// text, STARTTLS and implicit TLS; a token the server does not know is
// refused with an OAuth2 message that names "mailkeep auth".
func TestDialOAuth2(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	dv.AddUser(t, "alice", "unused-Pw")
	tok := srv.IssueAccess("alice")
	tc := caConfig(t, dv.CACertFile)
	tests := []struct {
		mech string
		addr string
		mode imapconn.TLSMode
	}{
		{"xoauth2", dv.IMAPAddr, imapconn.TLSNone},
		{"oauthbearer", dv.IMAPAddr, imapconn.TLSNone},
		{"xoauth2", dv.IMAPAddr, imapconn.TLSStartTLS},
		{"oauthbearer", dv.IMAPSAddr, imapconn.TLSImplicit},
	}
	for _, tc2 := range tests {
		cfg := imapconn.Config{Addr: tc2.addr, TLS: tc2.mode, TLSConfig: tc, User: "alice",
			OAuth2: &oauth.Bearer{Account: "work", Mechanism: tc2.mech, Token: staticToken(tok)}}
		c, err := imapconn.Dial(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", tc2.mech, tc2.mode, err, dv.Log())
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Errorf("%s: select: %v", tc2.mech, err)
		}
		c.Close()
	}
	if n := srv.Count("introspect_active"); n != len(tests) {
		t.Errorf("introspection said active %d times, want %d", n, len(tests))
	}

	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		var refused string
		cfg := imapconn.Config{Addr: dv.IMAPAddr, TLS: imapconn.TLSNone, User: "alice",
			OAuth2: &oauth.Bearer{Account: "work", Mechanism: mech, Token: staticToken("at-bogus"), Refused: func(s string) { refused = s }}}
		_, err := imapconn.Dial(context.Background(), cfg)
		var re *oauth.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), `run "mailkeep auth work"`) || !strings.Contains(err.Error(), "OAuth2") {
			t.Errorf("%s bogus token: %v", mech, err)
		}
		if refused != "at-bogus" {
			t.Errorf("%s: Refused not told (%q)", mech, refused)
		}
		if strings.Contains(err.Error(), "at-bogus") {
			t.Errorf("token in error: %v", err)
		}
	}

	// A failing token source fails the dial before anything is sent.
	cfg := imapconn.Config{Addr: dv.IMAPAddr, TLS: imapconn.TLSNone, User: "alice",
		OAuth2: &oauth.Bearer{Account: "work", Token: func(context.Context) (string, error) {
			return "", &oauth.ReauthError{Account: "work", Reason: "the refresh token was refused (invalid_grant)"}
		}}}
	if _, err := imapconn.Dial(context.Background(), cfg); !oauth.IsReauth(err) {
		t.Errorf("reauth error lost: %v", err)
	}
}
