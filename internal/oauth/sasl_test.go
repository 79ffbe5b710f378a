package oauth

import (
	"bytes"
	"testing"
)

func TestSASLInitialResponses(t *testing.T) {
	tests := []struct {
		mech, user, token string
		want              string
	}{
		{"xoauth2", "alice@example.com", "ya29.tok", "user=alice@example.com\x01auth=Bearer ya29.tok\x01\x01"},
		{"XOAUTH2", "bob", "t", "user=bob\x01auth=Bearer t\x01\x01"},
		{"oauthbearer", "alice@example.com", "ya29.tok", "n,a=alice@example.com,\x01auth=Bearer ya29.tok\x01\x01"},
		{"OAUTHBEARER", "we,ird=user", "t", "n,a=we=2Cird=3Duser,\x01auth=Bearer t\x01\x01"},
		{"oauthbearer", "", "t", "n,,\x01auth=Bearer t\x01\x01"},
	}
	for _, tc := range tests {
		c, err := NewSASLClient(tc.mech, tc.user, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		mech, ir, err := c.Start()
		if err != nil || !bytes.Equal(ir, []byte(tc.want)) {
			t.Errorf("%s %q: got %q, %v; want %q", tc.mech, tc.user, ir, err, tc.want)
		}
		if mech != c.Mechanism() || (mech != XOAUTH2 && mech != OAUTHBEARER) {
			t.Errorf("%s: mechanism %q", tc.mech, mech)
		}
	}
	if _, err := NewSASLClient("plain", "u", "t"); err == nil {
		t.Error("plain accepted")
	}
}

func TestSASLErrorChallenge(t *testing.T) {
	tests := []struct {
		mech      string
		challenge string
		dummy     []byte
		want      string
	}{
		{XOAUTH2, `{"status":"401","schemes":"bearer","scope":"mail"}`, []byte{}, "status 401, scope mail"},
		{OAUTHBEARER, `{"status":"invalid_token"}`, []byte{1}, "status invalid_token"},
		{XOAUTH2, `not json`, []byte{}, `server error "not json"`},
	}
	for _, tc := range tests {
		c, _ := NewSASLClient(tc.mech, "u", "t")
		resp, err := c.Next([]byte(tc.challenge))
		if err != nil || !bytes.Equal(resp, tc.dummy) || resp == nil {
			t.Errorf("%s: Next = %q, %v; want %q", tc.mech, resp, err, tc.dummy)
		}
		if c.ServerError == nil || c.ServerError.String() != tc.want {
			t.Errorf("%s: server error %v, want %q", tc.mech, c.ServerError, tc.want)
		}
	}
}
