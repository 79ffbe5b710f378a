// Package oauthtest is a fake OAuth2 authorization server for tests: an
// authorize endpoint that redirects back with a code, a token endpoint
// (authorization_code with PKCE S256, refresh_token, device_code), a device
// authorization endpoint, and an RFC 7662 style introspection endpoint for
// Dovecot's oauth2 passdb that says active only for currently valid access
// tokens.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake authorization server. Its exported fields may be
// changed between requests through the setters.
type Server struct {
	URL                    string // base URL
	ClientID, ClientSecret string

	ts *httptest.Server

	mu        sync.Mutex
	accessTTL time.Duration
	rotate    bool
	codes     map[string]grant // authorization code -> grant
	access    map[string]accessToken
	refresh   map[string]string // valid refresh token -> user
	devices   map[string]*device
	issued    []string // every token and code handed out
	counts    map[string]int
	seen      []string // access tokens introspected, in order
}

type grant struct {
	user, redirect, challenge string
}

type accessToken struct {
	user   string
	expiry time.Time
}

type device struct {
	userCode string
	user     string // "" until approved
	polls    int
}

// Start starts a server for client id/secret; it stops with the test.
func Start(t testing.TB, clientID, clientSecret string) *Server {
	s := &Server{ClientID: clientID, ClientSecret: clientSecret, accessTTL: time.Hour,
		codes: map[string]grant{}, access: map[string]accessToken{}, refresh: map[string]string{},
		devices: map[string]*device{}, counts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /device", s.deviceAuth)
	mux.HandleFunc("POST /introspect", s.introspect)
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL
	t.Cleanup(s.ts.Close)
	return s
}

// Endpoints.
func (s *Server) AuthURL() string       { return s.URL + "/authorize" }
func (s *Server) TokenURL() string      { return s.URL + "/token" }
func (s *Server) DeviceURL() string     { return s.URL + "/device" }
func (s *Server) IntrospectURL() string { return s.URL + "/introspect" }

// SetAccessTTL sets expires_in of the access tokens issued from now on.
func (s *Server) SetAccessTTL(d time.Duration) { s.mu.Lock(); s.accessTTL = d; s.mu.Unlock() }

// SetRotate makes every refresh return a new refresh token and invalidate
// the old one.
func (s *Server) SetRotate(on bool) { s.mu.Lock(); s.rotate = on; s.mu.Unlock() }

// Count returns how many requests of a kind succeeded: "code", "refresh",
// "device", "device_pending", "introspect_active", "introspect_inactive".
func (s *Server) Count(kind string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.counts[kind] }

// Introspected returns the access tokens Dovecot asked about, in order.
func (s *Server) Introspected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Secrets returns every token and code issued, and the client secret: none
// may appear in a program's output.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.issued...)
	if s.ClientSecret != "" {
		out = append(out, s.ClientSecret)
	}
	return out
}

// Revoke invalidates every refresh and access token of user.
func (s *Server) Revoke(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rt, u := range s.refresh {
		if u == user {
			delete(s.refresh, rt)
		}
	}
	for at, a := range s.access {
		if a.user == user {
			delete(s.access, at)
		}
	}
}

// ExpireAccess makes every access token invalid at once (server side only).
func (s *Server) ExpireAccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// IssueAccess hands out an access token for user directly (for
// token_command tests).
func (s *Server) IssueAccess(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newSecret("at")
	s.access[at] = accessToken{user: user, expiry: time.Now().Add(s.accessTTL)}
	return at
}

// IssueLongAccess is IssueAccess with a token of n characters, like
// Microsoft's JWTs (over RFC 5034's 255-octet AUTH line).
func (s *Server) IssueLongAccess(user string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newSecret("at")
	for len(at) < n {
		at += "x"
	}
	s.issued = append(s.issued, at)
	s.access[at] = accessToken{user: user, expiry: time.Now().Add(s.accessTTL)}
	return at
}

// Approve completes the device flow of userCode as user. It reports false
// when no device request has that code.
func (s *Server) Approve(userCode, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			d.user = user
			return true
		}
	}
	return false
}

// Polls returns how often the device code with userCode was polled.
func (s *Server) Polls(userCode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.userCode == userCode {
			return d.polls
		}
	}
	return 0
}

// newSecret returns a fresh random value; s.mu is held.
func (s *Server) newSecret(prefix string) string {
	b := make([]byte, 18)
	rand.Read(b)
	v := prefix + "-" + base64.RawURLEncoding.EncodeToString(b)
	s.issued = append(s.issued, v)
	return v
}

// authorize plays the user's consent: the browser (the test) says who it
// is with the extra parameter test_user, and is redirected back at once.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("response_type") != "code", q.Get("client_id") != s.ClientID, q.Get("test_user") == "":
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("state") == "":
		http.Error(w, "state required", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" {
		http.Error(w, "redirect_uri must be a loopback address", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	code := s.newSecret("code")
	s.codes[code] = grant{user: q.Get("test_user"), redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge")}
	s.mu.Unlock()
	v := redirect.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// clientOK checks client_id and, when the server has one, the secret, in
// the form or in HTTP basic authentication.
func (s *Server) clientOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.ClientID && (s.ClientSecret == "" || secret == s.ClientSecret)
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "fake server: " + code})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, 400, "invalid_request")
		return
	}
	if !s.clientOK(r) {
		tokenError(w, 401, "invalid_client")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code")) // one use only
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok, g.redirect != f.Get("redirect_uri"):
			tokenError(w, 400, "invalid_grant")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			tokenError(w, 400, "invalid_grant") // PKCE verifier does not match
		default:
			s.counts["code"]++
			s.issue(w, g.user, "")
		}
	case "refresh_token":
		user, ok := s.refresh[f.Get("refresh_token")]
		if !ok {
			tokenError(w, 400, "invalid_grant")
			return
		}
		s.counts["refresh"]++
		if s.rotate {
			delete(s.refresh, f.Get("refresh_token"))
			s.issue(w, user, "")
		} else {
			s.issue(w, user, f.Get("refresh_token"))
		}
	case "urn:ietf:params:oauth:grant-type:device_code":
		d, ok := s.devices[f.Get("device_code")]
		switch {
		case !ok:
			tokenError(w, 400, "invalid_grant")
		case d.user == "":
			d.polls++
			s.counts["device_pending"]++
			tokenError(w, 400, "authorization_pending")
		default:
			d.polls++
			delete(s.devices, f.Get("device_code"))
			s.counts["device"]++
			s.issue(w, d.user, "")
		}
	default:
		tokenError(w, 400, "unsupported_grant_type")
	}
}

// issue answers with a new access token and, unless keepRefresh is given
// (a refresh without rotation), a new refresh token; s.mu is held.
func (s *Server) issue(w http.ResponseWriter, user, keepRefresh string) {
	at := s.newSecret("at")
	s.access[at] = accessToken{user: user, expiry: time.Now().Add(s.accessTTL)}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(s.accessTTL / time.Second)}
	if keepRefresh == "" {
		rt := s.newSecret("rt")
		s.refresh[rt] = user
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != s.ClientID {
		tokenError(w, 400, "invalid_client")
		return
	}
	s.mu.Lock()
	dc := s.newSecret("dc")
	uc := fmt.Sprintf("UC-%d", len(s.devices)+100)
	s.devices[dc] = &device{userCode: uc}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"device_code": dc, "user_code": uc,
		"verification_uri": s.URL + "/devicelogin", "expires_in": 300, "interval": 1})
}

// introspect is what Dovecot's oauth2 passdb calls (introspection_mode =
// post): form field token; answer active and username.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	s.seen = append(s.seen, tok)
	a, ok := s.access[tok]
	active := ok && time.Now().Before(a.expiry)
	if active {
		s.counts["introspect_active"]++
	} else {
		s.counts["introspect_inactive"]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !active {
		fmt.Fprint(w, `{"active":false}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"active": true, "username": a.user, "token_type": "Bearer", "exp": a.expiry.Unix()})
}

// Contains reports whether s holds any of secrets (for leak checks).
func Contains(s string, secrets []string) (string, bool) {
	for _, x := range secrets {
		if x != "" && strings.Contains(s, x) {
			return x, true
		}
	}
	return "", false
}
