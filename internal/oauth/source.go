package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mailkeep/mailkeep/internal/config"
	"golang.org/x/oauth2"
)

// Source hands out an account's access tokens, refreshing them with the
// stored refresh token when they expire (x/oauth2 counts a token as expired
// 10 s early) and persisting what the token endpoint returns, including a
// rotated refresh token. It is safe for concurrent use: connections opened
// together share one refresh.
//
// x/oauth2's ReuseTokenSource is not used because it binds the refresh to
// the context it was created with; Source does the same reuse under a
// mutex with the caller's context.
type Source struct {
	account string
	path    string
	conf    *oauth2.Config
	client  *http.Client
	log     *slog.Logger

	mu      sync.Mutex
	tok     *oauth2.Token // nil until loaded
	refused string        // the access token a server refused
}

// SourceOptions are optional settings of NewSource.
type SourceOptions struct {
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// NewSource returns the token source of a configured account whose oauth2
// table has no token_command.
func NewSource(account string, o *config.OAuth2, opt SourceOptions) *Source {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := opt.HTTPClient
	if client == nil {
		// A token endpoint that never answers must not hang a nightly
		// run: the refresh is one small POST.
		client = &http.Client{Timeout: time.Minute}
	}
	return &Source{account: account, path: o.TokenFile, conf: Config(o), client: client, log: log}
}

// Token returns a valid access token.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		tok, err := LoadToken(s.path)
		if errors.Is(err, ErrNoTokenFile) {
			return "", &ReauthError{Account: s.account, Reason: "not authorized yet (" + err.Error() + ")", Err: err, First: true}
		}
		if err != nil {
			return "", err
		}
		s.tok = tok
	}
	if s.tok.Valid() {
		return s.tok.AccessToken, nil
	}
	return s.refresh(ctx)
}

// refresh trades the refresh token for a new access token; s.mu is held.
// An exclusive lock on <token file>.lock keeps two mailkeep processes (or
// two accounts sharing a token file) from refreshing at once: with
// rotating refresh tokens the loser's token would be spent.
func (s *Source) refresh(ctx context.Context) (string, error) {
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return "", fmt.Errorf("locking the token file: %w", err)
	}
	defer unlock()
	// Someone else may have refreshed while we waited.
	if cur, err := LoadToken(s.path); err == nil {
		if cur.Valid() && cur.AccessToken != s.refused {
			s.tok = cur
			return cur.AccessToken, nil
		}
		s.tok.RefreshToken = cur.RefreshToken
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	old := s.tok.RefreshToken
	tok, err := s.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		return "", s.refreshError(err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = old
	}
	s.tok = tok
	s.log.Info("oauth2: access token refreshed", "expiry", tok.Expiry, "refresh_token_rotated", tok.RefreshToken != old)
	if err := SaveToken(s.path, s.conf.ClientID, tok); err != nil {
		// The new access token works for this run; a rotated refresh
		// token that cannot be kept may force a new authorization.
		return "", fmt.Errorf("saving the refreshed token: %w", err)
	}
	return tok.AccessToken, nil
}

// refreshError turns a failed refresh into a message without secrets.
// RetrieveError's own text holds the response body, which a broken server
// might fill with anything: only its error code and description are used.
func (s *Source) refreshError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("refreshing the access token: %w", err)
	}
	code := re.ErrorCode
	switch code {
	case "invalid_grant":
		return &ReauthError{Account: s.account, Reason: "the refresh token was refused (invalid_grant)", Err: errors.New(code)}
	case "invalid_client", "unauthorized_client":
		return fmt.Errorf("refreshing the access token: the token endpoint refused the client (%s): check client_id and client_secret", code)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if code == "" {
		return fmt.Errorf("refreshing the access token: token endpoint answered HTTP %d", status)
	}
	return fmt.Errorf("refreshing the access token: token endpoint answered HTTP %d, %s: %s", status, code, clip(re.ErrorDescription))
}

// Refused forgets the current access token if it is tok, so that the next
// Token call refreshes.
func (s *Source) Refused(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == tok {
		s.tok.AccessToken = ""
		s.refused = tok
	}
}
