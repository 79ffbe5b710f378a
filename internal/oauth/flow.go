package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// FlowOptions are the settings of an authorization flow.
type FlowOptions struct {
	// Provider is google, microsoft or generic (for provider quirks).
	Provider string
	// Timeout bounds the whole flow (default 5 minutes).
	Timeout time.Duration
	// HTTPClient talks to the authorization server (nil: default).
	HTTPClient *http.Client
	// Port is the loopback redirect's port (default 0: any free port).
	Port int
	// ShowURL tells the user where to authorize (loopback flow).
	ShowURL func(url string)
	// ShowCode tells the user where to enter which code (device flow).
	ShowCode func(verificationURL, userCode, completeURL string)
}

func (o FlowOptions) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	}
	t := o.Timeout
	if t <= 0 {
		t = 5 * time.Minute
	}
	return context.WithTimeoutCause(ctx, t, fmt.Errorf("authorization not completed within %s", t))
}

// flowErr prefers the timeout's cause over a bare "context deadline
// exceeded".
func flowErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return cause
	}
	return err
}

// Loopback runs the authorization code flow with PKCE (S256) and a
// redirect to http://127.0.0.1:PORT/ on a random port: the user opens the
// URL given to ShowURL in any browser, and the provider redirects back with
// a code that is checked against the random state and exchanged for tokens.
func Loopback(ctx context.Context, conf *oauth2.Config, opt FlowOptions) (*oauth2.Token, error) {
	ctx, cancel := opt.ctx(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opt.Port))
	if err != nil {
		return nil, fmt.Errorf("loopback redirect: %w", err)
	}
	c := *conf
	c.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/", ln.Addr().(*net.TCPAddr).Port)
	state, verifier := randomString(), oauth2.GenerateVerifier()
	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if opt.Provider == "google" {
		// Ask for a refresh token even when the user consented before.
		params = append(params, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	results := make(chan callback, 1)
	srv := &http.Server{Handler: redirectHandler(state, results), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer shutdown(srv)
	if opt.ShowURL != nil {
		opt.ShowURL(c.AuthCodeURL(state, params...))
	}
	var cb callback
	select {
	case cb = <-results:
	case <-ctx.Done():
		return nil, flowErr(ctx, ctx.Err())
	}
	if cb.err != nil {
		return nil, cb.err
	}
	tok, err := c.Exchange(ctx, cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, flowErr(ctx, exchangeError(err))
	}
	return checkToken(tok)
}

// shutdown lets the browser get its answer page, then stops the listener.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
}

type callback struct {
	code string
	err  error
}

// redirectHandler receives the provider's redirect. Requests without the
// right state (a stray browser request, a forged redirect) are answered 400
// and ignored; the first good one, or an error from the provider, ends the
// wait.
func redirectHandler(state string, results chan<- callback) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/" || q.Get("state") != state {
			http.Error(w, "mailkeep: unexpected request (wrong or missing state)", http.StatusBadRequest)
			return
		}
		var cb callback
		switch {
		case q.Get("error") != "":
			cb.err = fmt.Errorf("authorization refused: %s %s", q.Get("error"), clip(q.Get("error_description")))
		case q.Get("code") == "":
			cb.err = errors.New("authorization redirect without a code")
		default:
			cb.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if cb.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<p>mailkeep: %s</p>\n", html.EscapeString(cb.err.Error()))
		} else {
			fmt.Fprint(w, "<p>mailkeep is authorized. You can close this window.</p>\n")
		}
		select {
		case results <- cb:
		default: // a second good redirect: the first one counts
		}
	})
}

// Device runs the device authorization flow (RFC 8628): the user enters
// the code shown by ShowCode at the verification URL on any device, while
// this polls the token endpoint.
func Device(ctx context.Context, conf *oauth2.Config, opt FlowOptions) (*oauth2.Token, error) {
	ctx, cancel := opt.ctx(ctx)
	defer cancel()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, flowErr(ctx, fmt.Errorf("device authorization request: %w", exchangeError(err)))
	}
	if opt.ShowCode != nil {
		opt.ShowCode(da.VerificationURI, da.UserCode, da.VerificationURIComplete)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, errors.New("the device code expired before it was entered: run the command again")
	}
	if err != nil {
		return nil, flowErr(ctx, exchangeError(err))
	}
	return checkToken(tok)
}

func checkToken(tok *oauth2.Token) (*oauth2.Token, error) {
	if tok.RefreshToken == "" {
		return nil, errors.New("the provider returned no refresh token: backups could not renew access (check the scopes: Microsoft needs offline_access)")
	}
	return tok, nil
}

// exchangeError keeps the error code and description of a token endpoint
// answer, never its body.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if re.ErrorCode == "" {
		return fmt.Errorf("token endpoint answered HTTP %d", status)
	}
	return fmt.Errorf("token endpoint answered HTTP %d: %s %s", status, re.ErrorCode, clip(re.ErrorDescription))
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
