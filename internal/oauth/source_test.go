package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
)

func genericConf(srv *oauthtest.Server, dir string) *config.OAuth2 {
	return &config.OAuth2{Provider: "generic", ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		AuthURL: srv.AuthURL(), TokenURL: srv.TokenURL(), DeviceAuthURL: srv.DeviceURL(),
		Scopes: []string{"mail"}, Mechanism: "xoauth2", TokenFile: filepath.Join(dir, "tokens", "alice.json")}
}

// browser plays the user: it opens the URL as test_user and follows the
// redirect to the loopback listener.
func browser(t *testing.T, user string) func(string) {
	return func(u string) {
		go func() {
			resp, err := http.Get(u + "&test_user=" + url.QueryEscape(user))
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("browser: loopback answered %s", resp.Status)
			}
		}()
	}
}

func authorize(t *testing.T, srv *oauthtest.Server, o *config.OAuth2) {
	t.Helper()
	tok, err := oauth.Loopback(context.Background(), oauth.Config(o), oauth.FlowOptions{Timeout: 10 * time.Second, ShowURL: browser(t, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	if err := oauth.SaveToken(o.TokenFile, o.ClientID, tok); err != nil {
		t.Fatal(err)
	}
}

func TestSourceRefreshOnceAndPersist(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "csecret")
	srv.SetRotate(true)
	o := genericConf(srv, t.TempDir())
	srv.SetAccessTTL(5 * time.Second) // within x/oauth2's 10 s margin: expired at once
	authorize(t, srv, o)
	before, _ := oauth.LoadToken(o.TokenFile)
	srv.SetAccessTTL(time.Hour)

	src := oauth.NewSource("alice", o, oauth.SourceOptions{})
	var wg sync.WaitGroup
	toks := make([]string, 16)
	errs := make([]error, 16)
	for i := range toks {
		wg.Add(1)
		go func() { defer wg.Done(); toks[i], errs[i] = src.Token(context.Background()) }()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("goroutine %d: %q, %v (first %q)", i, toks[i], errs[i], toks[0])
		}
	}
	if n := srv.Count("refresh"); n != 1 {
		t.Errorf("%d refreshes for 16 concurrent callers, want 1", n)
	}
	after, err := oauth.LoadToken(o.TokenFile)
	if err != nil || after.RefreshToken == before.RefreshToken || after.AccessToken != toks[0] {
		t.Errorf("rotated refresh token not persisted: before %q after %+v %v", before.RefreshToken, after, err)
	}
	// A new source (the next run) reuses the stored access token.
	if tok, err := oauth.NewSource("alice", o, oauth.SourceOptions{}).Token(context.Background()); err != nil || tok != toks[0] {
		t.Errorf("next run: %q, %v", tok, err)
	}
	// A refused token is forgotten: the next call refreshes, with the
	// rotated refresh token.
	src.Refused(toks[0])
	if tok, err := src.Token(context.Background()); err != nil || tok == toks[0] || srv.Count("refresh") != 2 {
		t.Errorf("after Refused: %q, %v, %d refreshes", tok, err, srv.Count("refresh"))
	}
}

func TestSourceReauth(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	o := genericConf(srv, t.TempDir())

	_, err := oauth.NewSource("alice", o, oauth.SourceOptions{}).Token(context.Background())
	if !oauth.IsReauth(err) || !strings.Contains(err.Error(), `not authorized yet (no token file `) || !strings.HasSuffix(err.Error(), `run "mailkeep auth alice" to authorize it`) {
		t.Errorf("no token file: %v", err)
	}

	srv.SetAccessTTL(time.Second)
	authorize(t, srv, o)
	srv.Revoke("alice")
	_, err = oauth.NewSource("alice", o, oauth.SourceOptions{}).Token(context.Background())
	want := `the refresh token was refused (invalid_grant): run "mailkeep auth alice" to authorize again`
	if !oauth.IsReauth(err) || err.Error() != want {
		t.Errorf("revoked: %v\nwant %s", err, want)
	}

	// A wrong client is a configuration error, not a re-authorization.
	bad := *o
	bad.ClientID = "other"
	_, err = oauth.NewSource("alice", &bad, oauth.SourceOptions{}).Token(context.Background())
	if err == nil || oauth.IsReauth(err) || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong client: %v", err)
	}
}

func TestLoopbackFlow(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "csecret")
	o := genericConf(srv, t.TempDir())
	conf := oauth.Config(o)

	// A stray request without the state is refused and ignored; the real
	// redirect then completes the flow.
	var shown string
	opt := oauth.FlowOptions{Timeout: 10 * time.Second, ShowURL: func(u string) {
		shown = u
		q, _ := url.Parse(u)
		resp, err := http.Get(q.Query().Get("redirect_uri") + "?code=forged&state=wrong")
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged redirect: %v %v", resp, err)
		}
		browser(t, "alice")(u)
	}}
	tok, err := oauth.Loopback(context.Background(), conf, opt)
	if err != nil || tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatalf("loopback: %+v %v", tok, err)
	}
	u, _ := url.Parse(shown)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") || q.Get("client_secret") != "" {
		t.Errorf("authorization URL: %s", shown)
	}
	if srv.Count("code") != 1 {
		t.Errorf("code exchanges: %d", srv.Count("code"))
	}

	// Nobody answers: the flow ends at its time limit with a clear error.
	_, err = oauth.Loopback(context.Background(), conf, oauth.FlowOptions{Timeout: 300 * time.Millisecond, ShowURL: func(string) {}})
	if err == nil || !strings.Contains(err.Error(), "not completed within") {
		t.Errorf("timeout: %v", err)
	}
	// Cancelled (Ctrl-C).
	ctx, cancel := context.WithCancel(context.Background())
	_, err = oauth.Loopback(ctx, conf, oauth.FlowOptions{ShowURL: func(string) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func TestDeviceFlow(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	o := genericConf(srv, t.TempDir())
	var code string
	opt := oauth.FlowOptions{Timeout: 20 * time.Second, ShowCode: func(uri, userCode, _ string) {
		code = userCode
		go func() {
			for srv.Polls(userCode) < 1 { // approve after one authorization_pending
				time.Sleep(50 * time.Millisecond)
			}
			srv.Approve(userCode, "alice")
		}()
	}}
	tok, err := oauth.Device(context.Background(), oauth.Config(o), opt)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("device: %+v %v", tok, err)
	}
	if srv.Count("device_pending") < 1 || srv.Count("device") != 1 || code == "" {
		t.Errorf("pending %d, granted %d, code %q", srv.Count("device_pending"), srv.Count("device"), code)
	}
}

func TestTokenCommand(t *testing.T) {
	tests := []struct {
		cmd, want, err string
	}{
		{"printf '  tok-123\\n\\n'", "tok-123", ""},
		{"echo secret-out; echo 'helper: no session' >&2; exit 3", "", "helper: no session"},
		{"true", "", "printed nothing"},
		{"echo two words", "", "more than one word"},
	}
	for _, tc := range tests {
		got, err := (&oauth.CommandSource{Account: "a", Command: tc.cmd}).Token(context.Background())
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q, %v", tc.cmd, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-out") {
			t.Errorf("%s: stdout leaked into error: %v", tc.cmd, err)
		}
	}
	start := time.Now()
	_, err := (&oauth.CommandSource{Command: "sleep 10", Timeout: 200 * time.Millisecond}).Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not finish") || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: %v after %s", err, time.Since(start))
	}
}

// TestSourcesShareTokenFile: two sources on one token file (two processes,
// or two accounts of one mailbox) with a rotating refresh token: the file
// lock lets only one refresh; the other picks up its result instead of
// spending the old refresh token (which would be invalid_grant).
func TestSourcesShareTokenFile(t *testing.T) {
	srv := oauthtest.Start(t, "cid", "")
	srv.SetRotate(true)
	o := genericConf(srv, t.TempDir())
	srv.SetAccessTTL(5 * time.Second)
	authorize(t, srv, o)
	srv.SetAccessTTL(time.Hour)
	a := oauth.NewSource("alice", o, oauth.SourceOptions{})
	b := oauth.NewSource("alice-pop", o, oauth.SourceOptions{})
	var wg sync.WaitGroup
	var ta, tb string
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); ta, ea = a.Token(context.Background()) }()
	go func() { defer wg.Done(); tb, eb = b.Token(context.Background()) }()
	wg.Wait()
	if ea != nil || eb != nil || ta != tb || srv.Count("refresh") != 1 {
		t.Errorf("a %v, b %v, same token %v, refreshes %d", ea, eb, ta == tb, srv.Count("refresh"))
	}
}
