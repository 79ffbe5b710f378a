package pop3_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

func bearer(mech, tok string, refused *string) *oauth.Bearer {
	return &oauth.Bearer{Account: "work", Mechanism: mech,
		Token:   func(context.Context) (string, error) { return tok, nil },
		Refused: func(s string) { *refused = s }}
}

// TestOAuth2Dovecot logs in over POP3 with XOAUTH2 and OAUTHBEARER, with
// the initial response on the AUTH line and, for a long token, after "+ "
// (RFC 5034's 255-octet limit); unknown tokens are refused.
func TestOAuth2Dovecot(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	dv.AddUser(t, "alice", "unused-Pw")
	short, long := srv.IssueAccess("alice"), srv.IssueLongAccess("alice", 1500)
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		for _, tok := range []string{short, long} {
			var refused string
			c, err := pop3.Dial(context.Background(), pop3.Config{Addr: dv.POP3Addr, TLS: pop3.TLSNone, User: "alice", OAuth2: bearer(mech, tok, &refused)})
			if err != nil {
				t.Fatalf("%s, %d-byte token: %v\n%s", mech, len(tok), err, dv.Log())
			}
			if _, _, err := c.Stat(context.Background()); err != nil {
				t.Errorf("%s: STAT: %v", mech, err)
			}
			c.Close()
		}
		var refused string
		_, err := pop3.Dial(context.Background(), pop3.Config{Addr: dv.POP3Addr, TLS: pop3.TLSNone, User: "alice", OAuth2: bearer(mech, "at-bogus", &refused)})
		var re *oauth.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), `run "mailkeep auth work"`) || refused != "at-bogus" || strings.Contains(err.Error(), "at-bogus") {
			t.Errorf("%s bogus token: %v (refused %q)", mech, err, refused)
		}
	}
	if n := srv.Count("introspect_active"); n != 4 {
		t.Errorf("introspection active %d times, want 4", n)
	}
}

// TestOAuth2Wire checks the exact lines sent, against a scripted server
// that refuses the token with an error challenge.
func TestOAuth2Wire(t *testing.T) {
	long := strings.Repeat("t", 300)
	errJSON := `{"status":"401","schemes":"bearer","scope":"mail"}`
	tests := []struct {
		mech, tok string
		want      []string // lines the server receives after CAPA
	}{
		{"xoauth2", "tok", []string{"AUTH XOAUTH2 " + b64("user=u\x01auth=Bearer tok\x01\x01"), ""}},
		{"oauthbearer", "tok", []string{"AUTH OAUTHBEARER " + b64("n,a=u,\x01auth=Bearer tok\x01\x01"), "AQ=="}},
		{"xoauth2", long, []string{"AUTH XOAUTH2", b64("user=u\x01auth=Bearer " + long + "\x01\x01"), ""}},
	}
	for _, tc := range tests {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan []string, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			read := func() string { l, _ := br.ReadString('\n'); return strings.TrimRight(l, "\r\n") }
			fmt.Fprint(conn, "+OK hi\r\n")
			read() // CAPA
			fmt.Fprint(conn, "+OK\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n")
			var lines []string
			l := read()
			lines = append(lines, l)
			if l == "AUTH XOAUTH2" || l == "AUTH OAUTHBEARER" {
				fmt.Fprint(conn, "+ \r\n")
				lines = append(lines, read())
			}
			fmt.Fprintf(conn, "+ %s\r\n", b64(errJSON))
			lines = append(lines, read())
			fmt.Fprint(conn, "-ERR [AUTH] Authentication failed.\r\n")
			got <- lines
		}()
		var refused string
		_, err = pop3.Dial(context.Background(), pop3.Config{Addr: ln.Addr().String(), TLS: pop3.TLSNone, User: "u", OAuth2: bearer(tc.mech, tc.tok, &refused)})
		ln.Close()
		lines := <-got
		if fmt.Sprint(lines) != fmt.Sprint(tc.want) {
			t.Errorf("%s %d: server got %q\nwant %q", tc.mech, len(tc.tok), lines, tc.want)
		}
		if err == nil || !strings.Contains(err.Error(), "status 401, scope mail; server said: -ERR [AUTH] Authentication failed.") {
			t.Errorf("%s: error %v", tc.mech, err)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestOAuth2NotOffered: a server without the mechanism is not sent the
// token, and the error says which mechanisms it has.
func TestOAuth2NotOffered(t *testing.T) {
	srv := pop3test.Start(t, "u", "p w", nil, pop3test.Options{})
	called := false
	b := &oauth.Bearer{Mechanism: "oauthbearer", Token: func(context.Context) (string, error) { called = true; return "t", nil }}
	_, err := pop3.Dial(context.Background(), pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: "u", OAuth2: b})
	if err == nil || !strings.Contains(err.Error(), "does not offer SASL OAUTHBEARER") || called {
		t.Errorf("err %v, token asked for: %v", err, called)
	}
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c, "AUTH") || strings.HasPrefix(c, "USER") {
			t.Errorf("sent %q", c)
		}
	}
}
