package oauth

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASLClient is a client side of XOAUTH2 or OAUTHBEARER that, unlike
// go-sasl's OAUTHBEARER client, answers the server's error challenge the
// way both mechanisms require (XOAUTH2: an empty response; OAUTHBEARER
// RFC 7628 3.2.3: a single 0x01) so the exchange ends with a proper
// NO/-ERR, and keeps the server's error for the message.
type SASLClient struct {
	mech string
	ir   []byte
	// ServerError is the decoded error challenge, if the server sent one.
	ServerError *ServerError
}

// ServerError is the JSON error a server sends before refusing a token
// (RFC 7628 3.2.2; Google's XOAUTH2 uses the same shape).
type ServerError struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes,omitempty"`
	Scope   string `json:"scope,omitempty"`
	Raw     string `json:"-"` // when not JSON
}

func (e *ServerError) String() string {
	if e.Status == "" {
		return "server error " + strconv.Quote(clip(e.Raw))
	}
	s := "status " + e.Status
	if e.Scope != "" {
		s += ", scope " + e.Scope
	}
	return s
}

var _ sasl.Client = (*SASLClient)(nil)

// NewSASLClient returns a client for mech (XOAUTH2 or OAUTHBEARER).
func NewSASLClient(mech, user, token string) (*SASLClient, error) {
	switch strings.ToUpper(mech) {
	case XOAUTH2:
		return &SASLClient{mech: XOAUTH2, ir: XOAuth2Response(user, token)}, nil
	case OAUTHBEARER:
		return &SASLClient{mech: OAUTHBEARER, ir: OAuthBearerResponse(user, token)}, nil
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q (want xoauth2 or oauthbearer)", mech)
}

// XOAuth2Response is the XOAUTH2 initial client response.
func XOAuth2Response(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

// OAuthBearerResponse is the RFC 7628 initial client response, with the
// user as authorization identity (a=, with "," and "=" escaped).
func OAuthBearerResponse(user, token string) []byte {
	authz := ""
	if user != "" {
		authz = "a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)
	}
	return []byte("n," + authz + ",\x01auth=Bearer " + token + "\x01\x01")
}

// Start implements sasl.Client.
func (c *SASLClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }

// Next implements sasl.Client: any challenge after the initial response is
// an error report; it is kept and answered with the dummy response.
func (c *SASLClient) Next(challenge []byte) ([]byte, error) {
	c.ServerError = parseServerError(challenge)
	return c.Dummy(), nil
}

// Dummy is the response that acknowledges an error challenge.
func (c *SASLClient) Dummy() []byte {
	if c.mech == OAUTHBEARER {
		return []byte{0x01}
	}
	return []byte{}
}

// Mechanism is XOAUTH2 or OAUTHBEARER.
func (c *SASLClient) Mechanism() string { return c.mech }

func parseServerError(b []byte) *ServerError {
	var e ServerError
	if err := json.Unmarshal(b, &e); err != nil || e.Status == "" {
		return &ServerError{Raw: string(b)}
	}
	return &e
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
