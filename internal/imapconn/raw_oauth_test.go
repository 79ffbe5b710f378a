package imapconn_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
)

// TestDialRawOAuth2: the raw connection restore APPENDs over logs in with
// both mechanisms against Dovecot's oauth2 passdb (SASL-IR), and a token
// Dovecot does not know is refused with the OAuth2 message.
func TestDialRawOAuth2(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	dv.AddUser(t, "alice", "unused-Pw")
	tok := srv.IssueAccess("alice")
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		cfg := imapconn.Config{Addr: dv.IMAPAddr, TLS: imapconn.TLSStartTLS, TLSConfig: caConfig(t, dv.CACertFile), User: "alice",
			OAuth2: &oauth.Bearer{Account: "work", Mechanism: mech, Token: staticToken(tok)}}
		r, err := imapconn.DialRaw(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v\n%s", mech, err, dv.Log())
		}
		if _, err := r.Cmd(`SELECT "INBOX"`); err != nil {
			t.Errorf("%s: select after login: %v", mech, err)
		}
		r.Logout()

		var refused string
		cfg.OAuth2 = &oauth.Bearer{Account: "work", Mechanism: mech, Token: staticToken("at-bogus"), Refused: func(s string) { refused = s }}
		_, err = imapconn.DialRaw(context.Background(), cfg)
		var re *oauth.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), `mailkeep auth work`) || strings.Contains(err.Error(), "at-bogus") {
			t.Errorf("%s, bogus token: %v", mech, err)
		}
		// Dovecot answers NO after the acknowledged error challenge, not
		// BAD (which a malformed acknowledgement would draw).
		if err != nil && !strings.Contains(err.Error(), "server said: NO") {
			t.Errorf("%s: want the server's NO after the error challenge: %v", mech, err)
		}
		if refused != "at-bogus" {
			t.Errorf("%s: the token source was not told of the refusal (%q)", mech, refused)
		}
	}
}

// TestDialRawOAuth2NoSASLIR plays a server without SASL-IR: the initial
// response goes after the first continuation, the error challenge is
// acknowledged with the mechanism's dummy response, exactly.
func TestDialRawOAuth2NoSASLIR(t *testing.T) {
	for _, tc := range []struct {
		mech, ir, ack string
	}{
		{"XOAUTH2", "user=bob\x01auth=Bearer tok-1\x01\x01", ""},
		{"OAUTHBEARER", "n,a=bob,\x01auth=Bearer tok-1\x01\x01", base64.StdEncoding.EncodeToString([]byte{1})},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan []string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				var lines []string
				read := func() string {
					l, _ := br.ReadString('\n')
					l = strings.TrimRight(l, "\r\n")
					lines = append(lines, l)
					return l
				}
				c.Write([]byte("* OK ready\r\n"))
				tag, _, _ := strings.Cut(read(), " ") // CAPABILITY
				c.Write([]byte("* CAPABILITY IMAP4rev1 AUTH=" + tc.mech + "\r\n" + tag + " OK done\r\n"))
				tag, _, _ = strings.Cut(read(), " ") // AUTHENTICATE MECH
				c.Write([]byte("+ \r\n"))
				read() // initial response
				c.Write([]byte("+ " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"mail"}`)) + "\r\n"))
				read() // acknowledgement
				c.Write([]byte(tag + " NO [AUTHENTICATIONFAILED] bad token\r\n"))
				got <- lines
			}()
			cfg := imapconn.Config{Addr: ln.Addr().String(), TLS: imapconn.TLSNone, User: "bob",
				OAuth2: &oauth.Bearer{Account: "b", Mechanism: tc.mech, Token: staticToken("tok-1")}}
			_, err = imapconn.DialRaw(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "status 401, scope mail") || !strings.Contains(err.Error(), "bad token") {
				t.Errorf("err = %v", err)
			}
			lines := <-got
			want := []string{"R1 CAPABILITY", "R2 AUTHENTICATE " + tc.mech, base64.StdEncoding.EncodeToString([]byte(tc.ir)), tc.ack}
			if strings.Join(lines, "|") != strings.Join(want, "|") {
				t.Errorf("client sent %q, want %q", lines, want)
			}
		})
	}
}
