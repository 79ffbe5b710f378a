package dovecottest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOAuth2Passdb: with OAuth2IntrospectionURL, XOAUTH2 and OAUTHBEARER
// logins are checked by POSTing token=... to the URL; password logins still
// use the users file.
func TestOAuth2Passdb(t *testing.T) {
	var mu sync.Mutex
	var forms []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		forms = append(forms, r.Method+" "+r.Header.Get("Content-Type")+" "+r.PostForm.Get("token"))
		mu.Unlock()
		if r.PostForm.Get("token") == "good" {
			io.WriteString(w, `{"active":true,"username":"alice"}`)
			return
		}
		io.WriteString(w, `{"active":false}`)
	}))
	defer ts.Close()
	s := Start(t, &Options{OAuth2IntrospectionURL: ts.URL})
	s.AddUser(t, "alice", "alice-pw")
	s.AddUser(t, "bob", "bob-pw")
	tests := []struct {
		cmd  string
		want string
	}{
		{"a LOGIN alice alice-pw", "a OK"},
		{"a LOGIN bob bob-pw", "a OK"},
		{"a AUTHENTICATE PLAIN " + b64("\x00bob\x00bob-pw"), "a OK"},
		{"a AUTHENTICATE XOAUTH2 " + b64("user=alice\x01auth=Bearer good\x01\x01"), "a OK"},
		{"a AUTHENTICATE OAUTHBEARER " + b64("n,a=alice,\x01auth=Bearer good\x01\x01"), "a OK"},
		{"a AUTHENTICATE XOAUTH2 " + b64("user=alice\x01auth=Bearer bad\x01\x01"), "a NO"},
		{"a LOGIN bob bob-pw", "a OK"},
	}
	for _, tc := range tests {
		if got := imapLogin(t, s.IMAPAddr, tc.cmd); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%.40q: got %q, want %s\n%s", tc.cmd, got, tc.want, s.Log())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(forms, ",") != "POST application/x-www-form-urlencoded good,POST application/x-www-form-urlencoded good,POST application/x-www-form-urlencoded bad" {
		t.Errorf("introspection requests: %q", forms)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// imapLogin sends one login command and returns the tagged answer; an
// error challenge is acknowledged with an empty line.
func imapLogin(t *testing.T, addr, cmd string) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	br.ReadString('\n')
	fmt.Fprintf(c, "%s\r\n", cmd)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "error: " + err.Error()
		}
		if strings.HasPrefix(l, "+") {
			fmt.Fprint(c, "\r\n")
			continue
		}
		if strings.HasPrefix(l, "a ") {
			return strings.TrimSpace(l)
		}
	}
}
