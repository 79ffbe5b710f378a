package gmailtest

import (
	"bytes"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

var _ imapserver.SessionSASL = (*session)(nil)

var errInvalidCredentials = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}

// AuthenticateMechanisms offers PLAIN, and with Options.AccessToken the
// OAuth2 mechanisms Gmail offers (XOAUTH2, OAUTHBEARER).
func (s *session) AuthenticateMechanisms() []string {
	if s.srv.opt.AccessToken == "" {
		return []string{"PLAIN"}
	}
	return []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
}

// Authenticate logs in by SASL; every mechanism ends in the same account
// login (and connection cap) as LOGIN.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch {
	case mech == "PLAIN":
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return errInvalidCredentials
			}
			return s.Login(username, password)
		}), nil
	case mech == "XOAUTH2" && s.srv.opt.AccessToken != "":
		return &xoauth2{s: s}, nil
	case mech == "OAUTHBEARER" && s.srv.opt.AccessToken != "":
		var capErr error
		inner := sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if o.Username != "" && o.Username != s.srv.user || o.Token != s.srv.opt.AccessToken {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "https://mail.google.com/"}
			}
			capErr = s.account()
			return nil
		})
		return &after{inner: inner, err: func() error { return capErr }}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported authentication mechanism. (Failure)"}
}

// after reports an error found once the inner mechanism succeeded (the
// connection cap).
type after struct {
	inner sasl.Server
	err   func() error
}

func (a *after) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := a.inner.Next(resp)
	if err != nil {
		return nil, false, errInvalidCredentials
	}
	if done {
		if err := a.err(); err != nil {
			return nil, false, err
		}
	}
	return ch, done, nil
}

// xoauth2 is Google's XOAUTH2 (developers.google.com/gmail/imap/
// xoauth2-protocol): the client sends "user=U^Aauth=Bearer T^A^A"; a
// refused token gets a continuation carrying a JSON error, which the
// client acknowledges with an empty response before the NO.
type xoauth2 struct {
	s      *session
	failed bool
}

func (x *xoauth2) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, false, errInvalidCredentials
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	var user, token string
	for _, f := range bytes.Split(resp, []byte{1}) {
		k, v, _ := strings.Cut(string(f), "=")
		switch k {
		case "user":
			user = v
		case "auth":
			token, _ = strings.CutPrefix(v, "Bearer ")
		}
	}
	if user != x.s.srv.user || token != x.s.srv.opt.AccessToken {
		x.failed = true
		return []byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	if err := x.s.account(); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}
