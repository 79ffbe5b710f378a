// Package oauth gives mailkeep OAuth2 access tokens for IMAP and POP3:
// the SASL mechanisms XOAUTH2 and OAUTHBEARER, the refresh-token store,
// per-account token sources built on golang.org/x/oauth2 that refresh
// access tokens by themselves, token_command, and the one-time
// authorization flows behind "mailkeep auth" (loopback redirect with PKCE,
// device code).
//
// Tokens, client secrets and passwords never appear in errors or logs.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// SASL mechanism names as sent on the wire.
const (
	XOAUTH2     = "XOAUTH2"
	OAUTHBEARER = "OAUTHBEARER"
)

// Bearer tells a connection how to log in with an access token. Token is
// called once per connection; it returns a valid access token, refreshing
// it when needed, and is safe for concurrent use.
type Bearer struct {
	// Account names the configured account in messages ("mailkeep auth
	// NAME").
	Account string
	// Mechanism is XOAUTH2 or OAUTHBEARER (case-insensitive).
	Mechanism string
	Token     func(ctx context.Context) (string, error)
	// Refused, if set, is told that the server refused a token, so that
	// the next Token call fetches a new one instead of reusing it.
	Refused func(token string)
	// FromCommand says the tokens come from token_command (for messages).
	FromCommand bool
}

// Start gets an access token for one login of user and returns it with
// the SASL client that sends it (IMAP AUTHENTICATE and POP3 AUTH share
// it).
func (b *Bearer) Start(ctx context.Context, user string) (string, *SASLClient, error) {
	tok, err := b.Token(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("OAuth2 access token: %w", err)
	}
	sc, err := NewSASLClient(b.Mech(), user, tok)
	return tok, sc, err
}

// refused builds the error for a token the server did not accept.
func (b *Bearer) refused(detail string) *RefusedError {
	return &RefusedError{Account: b.Account, Mechanism: b.Mech(), Detail: detail, FromCommand: b.FromCommand}
}

// Refuse tells the token's source that the server refused tok and returns
// the error to report.
func (b *Bearer) Refuse(tok, detail string) *RefusedError {
	if b.Refused != nil {
		b.Refused(tok)
	}
	return b.refused(detail)
}

// Mech returns the upper-case mechanism name, XOAUTH2 by default.
func (b *Bearer) Mech() string {
	if b.Mechanism == "" {
		return XOAUTH2
	}
	return strings.ToUpper(b.Mechanism)
}

// ReauthError means the account needs "mailkeep auth NAME" again: no token
// file, or the authorization server refused the refresh token.
type ReauthError struct {
	Account string
	Reason  string // e.g. "the refresh token was refused (invalid_grant)"
	Err     error  // the underlying error, if any
	// First: never authorized (no token file), rather than again.
	First bool
}

func (e *ReauthError) Error() string {
	if e.First {
		return fmt.Sprintf("%s: run \"mailkeep auth %s\" to authorize it", e.Reason, e.Account)
	}
	return fmt.Sprintf("%s: run \"mailkeep auth %s\" to authorize again", e.Reason, e.Account)
}

func (e *ReauthError) Unwrap() error { return e.Err }

// IsReauth reports whether err asks for a new authorization.
func IsReauth(err error) bool {
	var re *ReauthError
	return errors.As(err, &re)
}

// RefusedError is a mail server refusing an access token at login.
type RefusedError struct {
	Account   string
	Mechanism string
	// Detail is what the server said: its SASL error (status, scope) and
	// its final answer.
	Detail      string
	FromCommand bool
}

func (e *RefusedError) Error() string {
	if e.FromCommand {
		return fmt.Sprintf("OAuth2 login (%s) refused: the server did not accept the access token printed by token_command (%s): check the token helper", e.Mechanism, e.Detail)
	}
	hint := "mailkeep auth NAME"
	if e.Account != "" {
		hint = "mailkeep auth " + e.Account
	}
	return fmt.Sprintf("OAuth2 login (%s) refused: the server did not accept the access token (%s); if this persists, run %q to authorize again", e.Mechanism, e.Detail, hint)
}
