package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailkeep/mailkeep/internal/durable"
)

// ErrNoTokenFile is returned (wrapped) by LoadToken when the account has
// not been authorized yet.
var ErrNoTokenFile = errors.New("no token file")

// tokenFile is the JSON stored at <config dir>/tokens/<account>.json.
type tokenFile struct {
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	ClientID     string    `json:"client_id,omitempty"`
	Updated      time.Time `json:"updated"`
}

// LoadToken reads a token file. A file that others can read or write is
// refused (like ssh refuses such a private key): it holds a credential.
func LoadToken(path string) (*oauth2.Token, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s", ErrNoTokenFile, path)
	}
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is accessible by others (mode %04o): chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tf tokenFile
	if err := json.Unmarshal(b, &tf); err != nil {
		// The error text of encoding/json quotes no input.
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if tf.RefreshToken == "" {
		return nil, fmt.Errorf("%w %s: it holds no refresh token", ErrNoTokenFile, path)
	}
	return &oauth2.Token{RefreshToken: tf.RefreshToken, AccessToken: tf.AccessToken, TokenType: tf.TokenType, Expiry: tf.Expiry}, nil
}

// SaveToken writes tok to path atomically: a temporary file in the same
// directory (0600), fsynced, renamed over path, and the directory fsynced.
// The directory is created 0700 when missing.
func SaveToken(path, clientID string, tok *oauth2.Token) error {
	b, err := json.MarshalIndent(tokenFile{
		RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		Expiry: tok.Expiry, ClientID: clientID, Updated: time.Now().UTC().Truncate(time.Second),
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600, 0o700); err != nil {
		return fmt.Errorf("token file %s: %w", path, err)
	}
	return nil
}
