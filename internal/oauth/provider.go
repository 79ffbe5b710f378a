package oauth

import (
	"github.com/mailkeep/mailkeep/internal/config"
	"golang.org/x/oauth2"
)

// Built-in provider settings.
var (
	googleEndpoint = oauth2.Endpoint{
		AuthURL:       "https://accounts.google.com/o/oauth2/auth",
		TokenURL:      "https://oauth2.googleapis.com/token",
		DeviceAuthURL: "https://oauth2.googleapis.com/device/code",
		AuthStyle:     oauth2.AuthStyleInParams,
	}
	googleScopes = []string{"https://mail.google.com/"}

	microsoftScopes = []string{
		"https://outlook.office.com/IMAP.AccessAsUser.All",
		"https://outlook.office.com/POP.AccessAsUser.All",
		"offline_access",
	}
)

func microsoftEndpoint(tenant string) oauth2.Endpoint {
	if tenant == "" {
		tenant = "common"
	}
	base := "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/"
	return oauth2.Endpoint{
		AuthURL:       base + "authorize",
		TokenURL:      base + "token",
		DeviceAuthURL: base + "devicecode",
		AuthStyle:     oauth2.AuthStyleInParams,
	}
}

// Config returns the x/oauth2 configuration of an account's [account.oauth2]
// table: the provider's built-in endpoints and scopes, each overridden by
// the table's own auth_url, token_url, device_auth_url and scopes.
func Config(o *config.OAuth2) *oauth2.Config {
	var ep oauth2.Endpoint
	var scopes []string
	switch o.Provider {
	case "google":
		ep, scopes = googleEndpoint, googleScopes
	case "microsoft":
		ep, scopes = microsoftEndpoint(o.Tenant), microsoftScopes
	}
	if o.AuthURL != "" {
		ep.AuthURL = o.AuthURL
	}
	if o.TokenURL != "" {
		ep.TokenURL = o.TokenURL
	}
	if o.DeviceAuthURL != "" {
		ep.DeviceAuthURL = o.DeviceAuthURL
	}
	if len(o.Scopes) > 0 {
		scopes = o.Scopes
	}
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Endpoint: ep, Scopes: append([]string(nil), scopes...)}
}
