package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/oauth"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
)

// authRun is a "mailkeep auth" process whose stderr the test reads line
// by line, as a user would.
type authRun struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	all   strings.Builder
	done  chan struct{}
}

func startAuth(t *testing.T, args ...string) *authRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"auth"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &authRun{cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			r.all.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return r
}

// await returns the first submatch of re in a line of output.
func (r *authRun) await(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("auth ended before printing %s:\n%s", re, r.output())
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case <-timeout:
			t.Fatalf("auth printed no %s:\n%s", re, r.output())
		}
	}
}

func (r *authRun) wait(t *testing.T) result {
	t.Helper()
	for range r.lines {
	}
	<-r.done
	err := r.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stderr: r.output()}
}

func (r *authRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all.String()
}

// loopbackAuth runs "mailkeep auth NAME" and plays the browser of user.
func loopbackAuth(t *testing.T, cfg, name, user string) result {
	t.Helper()
	r := startAuth(t, "--config", cfg, "--timeout", "30s", name)
	u := r.await(t, `^\s+(http://\S+)$`)
	resp, err := http.Get(u + "&test_user=" + user)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "authorized") {
		t.Errorf("browser got %s: %s", resp.Status, body)
	}
	res := r.wait(t)
	if res.code != 0 {
		t.Fatalf("auth %s: exit %d\n%s", name, res.code, res.stderr)
	}
	return res
}

// TestOAuth2EndToEnd authorizes accounts with "mailkeep auth" against a
// fake authorization server (loopback flow with PKCE, device flow) and
// backs them up from a Dovecot whose oauth2 passdb asks that server about
// every token: IMAP with XOAUTH2 and OAUTHBEARER, an access token
// that expires and is refreshed, a revoked refresh token next to a
// password account, token_command; and no secret is ever printed.
func TestOAuth2EndToEnd(t *testing.T) {
	const secret = "client-Secret-42"
	srv := oauthtest.Start(t, "mailkeep-test", secret)
	srv.SetRotate(true)
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dovecot log:\n%s", dv.Log())
		}
	})
	users := map[string]string{"alice": "alice-Pw1", "bob": "bob-Pw2", "carol": "carol-Pw3", "dave": "dave-Pw4", "erin": "erin-Pw5"}
	want := map[string]map[string][]imaptest.Msg{}
	for u, p := range users { // all before the first login: Dovecot caches the users file
		dv.AddUser(t, u, p)
	}
	for u, p := range users {
		c := imaptest.Dial(t, dv.IMAPAddr, u, p)
		for j := 0; j < 3; j++ {
			imaptest.Append(t, c, "INBOX", nil, time.Date(2024, 3, 1, 0, j, 0, 0, time.UTC),
				[]byte(fmt.Sprintf("From: %s@example.com\r\nSubject: %s %d\r\n\r\nbody %d\r\n", u, u, j, j)))
		}
		want[u] = imaptest.Snapshot(t, c, true)
		c.Logout().Wait()
	}

	dir := t.TempDir()
	root := filepath.Join(dir, "archives")
	os.WriteFile(filepath.Join(dir, "bob.pw"), []byte(users["bob"]+"\n"), 0o600)
	erinTok := filepath.Join(dir, "erin.token")
	os.WriteFile(erinTok, []byte(srv.IssueAccess("erin")+"\n"), 0o600)
	oauthTable := func(extra string) string {
		return fmt.Sprintf("[account.oauth2]\nprovider = \"generic\"\nclient_id = \"mailkeep-test\"\nclient_secret = %q\nauth_url = %q\ntoken_url = %q\ndevice_auth_url = %q\nscopes = [\"mail\"]\n%s",
			secret, srv.AuthURL(), srv.TokenURL(), srv.DeviceURL(), extra)
	}
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`archive_root = %q

[[account]]
name = "alice"
imap = "imap://alice@%[2]s"
tls = "none"
%[4]s
[[account]]
name = "alice-ob"
imap = "imap://alice@%[2]s"
tls = "none"
%[5]s
[[account]]
name = "bob"
imap = "imap://bob@%[2]s"
tls = "none"
password_file = "bob.pw"

[[account]]
name = "carol"
imap = "imap://carol@%[2]s"
tls = "none"
%[6]s
[[account]]
name = "dave"
imap = "imap://dave@%[2]s"
tls = "none"
%[7]s
[[account]]
name = "erin"
imap = "imap://erin@%[2]s"
tls = "none"
[account.oauth2]
token_command = "cat '%[8]s'"
`, root, dv.IMAPAddr, "unused",
		oauthTable(""),
		oauthTable("mechanism = \"oauthbearer\"\ntoken_file = \"tokens/alice.json\"\n"),
		oauthTable(""),
		oauthTable("flow = \"device\"\n"),
		erinTok)), 0o600)

	var outputs []string
	run := func(args ...string) result {
		t.Helper()
		r := mailkeep(t, nil, append([]string{args[0], "--config", cfg}, args[1:]...)...)
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	backupOK := func(name string, fetched int) {
		t.Helper()
		r := run("backup", "--json", name)
		var rs runSummary
		json.Unmarshal([]byte(r.stdout), &rs)
		if r.code != 0 || len(rs.Accounts) != 1 || rs.Accounts[0].Fetched != fetched {
			t.Fatalf("backup %s: exit %d, %+v\n%s\ndovecot:\n%s", name, r.code, rs, r.stderr, dv.Log())
		}
	}

	// Authorize alice and carol with tokens that x/oauth2 already counts
	// as expired (expires_in 11 s, 10 s early expiry) once a second has
	// passed, while the server would still take them for 10 more seconds.
	srv.SetAccessTTL(11 * time.Second)
	res := loopbackAuth(t, cfg, "alice", "alice")
	outputs = append(outputs, res.stderr)
	tokFile := filepath.Join(dir, "tokens", "alice.json")
	if !strings.Contains(res.stderr, tokFile) {
		t.Errorf("auth does not say where the token went:\n%s", res.stderr)
	}
	for p, mode := range map[string]os.FileMode{tokFile: 0o600, filepath.Dir(tokFile): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want %04o", p, fi, err, mode)
		}
	}
	outputs = append(outputs, loopbackAuth(t, cfg, "carol", "carol").stderr)
	first, err := oauth.LoadToken(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count("code") != 2 || srv.Count("refresh") != 0 {
		t.Fatalf("code exchanges %d, refreshes %d", srv.Count("code"), srv.Count("refresh"))
	}
	time.Sleep(1500 * time.Millisecond)
	srv.SetAccessTTL(time.Hour)

	// Expiry: the backup refreshes once (several connections share it),
	// Dovecot sees only the new token, the rotated refresh token is kept.
	backupOK("alice", 3)
	archivetest.Compare(t, want["alice"], filepath.Join(root, "alice"))
	if n := srv.Count("refresh"); n != 1 {
		t.Errorf("refreshes after expiry: %d, want 1", n)
	}
	second, err := oauth.LoadToken(tokFile)
	if err != nil || second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatalf("token file not updated after refresh: %v", err)
	}
	seen := srv.Introspected()
	for _, tok := range seen {
		if tok == first.AccessToken {
			t.Errorf("Dovecot was given the expired access token")
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != second.AccessToken {
		t.Errorf("Dovecot did not see the refreshed token (%d introspections)", len(seen))
	}

	// The same stored token over OAUTHBEARER: no refresh.
	backupOK("alice-ob", 3)
	archivetest.Compare(t, want["alice"], filepath.Join(root, "alice-ob"))
	if n := srv.Count("refresh"); n != 1 {
		t.Errorf("refreshes: %d, want still 1", n)
	}
	if r := run("check", "alice"); r.code != 0 {
		t.Errorf("check alice: exit %d\n%s", r.code, r.stderr)
	}

	// Revoked: carol's refresh is refused; bob (password) goes on; exit 3.
	srv.Revoke("carol")
	r := run("backup", "carol", "bob")
	wantMsg := `account carol: the refresh token was refused (invalid_grant): run "mailkeep auth carol" to authorize again`
	if r.code != exitPartial || !strings.Contains(r.stderr, wantMsg) || !strings.Contains(r.stderr, "mailkeep backup bob: ok") {
		t.Errorf("revoked carol + bob: exit %d, want 3 and %q:\n%s", r.code, wantMsg, r.stderr)
	}
	archivetest.Compare(t, want["bob"], filepath.Join(root, "bob"))
	// Authorizing again fixes it.
	outputs = append(outputs, loopbackAuth(t, cfg, "carol", "carol").stderr)
	backupOK("carol", 3)

	// Device flow: the code is shown, the server says
	// authorization_pending until the user approves it.
	ar := startAuth(t, "--config", cfg, "dave")
	code := ar.await(t, `^\s+(UC-\d+)$`)
	for srv.Polls(code) < 1 {
		time.Sleep(50 * time.Millisecond)
	}
	srv.Approve(code, "dave")
	res = ar.wait(t)
	outputs = append(outputs, res.stderr)
	if res.code != 0 || srv.Count("device_pending") < 1 {
		t.Fatalf("device auth: exit %d, pending %d\n%s", res.code, srv.Count("device_pending"), res.stderr)
	}
	backupOK("dave", 3)
	archivetest.Compare(t, want["dave"], filepath.Join(root, "dave"))

	// token_command.
	backupOK("erin", 3)
	archivetest.Compare(t, want["erin"], filepath.Join(root, "erin"))
	os.WriteFile(erinTok, []byte("at-unknown\n"), 0o600)
	r = run("backup", "erin")
	if r.code == 0 || !strings.Contains(r.stderr, "OAuth2 login (XOAUTH2) refused") || !strings.Contains(r.stderr, "token_command") {
		t.Errorf("refused token_command token: exit %d\n%s", r.code, r.stderr)
	}

	// A token file others can read is refused.
	os.Chmod(tokFile, 0o644)
	r = run("backup", "alice")
	if r.code == 0 || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("0644 token file: exit %d\n%s", r.code, r.stderr)
	}
	os.Chmod(tokFile, 0o600)

	// auth refuses accounts without anything to authorize.
	for name, msg := range map[string]string{"bob": "nothing to authorize", "erin": "token_command", "nobody": "nobody"} {
		r := run("auth", name)
		if r.code != exitUsage || !strings.Contains(r.stderr, msg) {
			t.Errorf("auth %s: exit %d\n%s", name, r.code, r.stderr)
		}
	}

	secrets := append(srv.Secrets(), users["alice"], users["bob"], users["carol"], users["dave"], users["erin"])
	for _, out := range outputs {
		if s, ok := oauthtest.Contains(out, secrets); ok {
			t.Errorf("secret %.6s… in output:\n%s", s, out)
		}
	}
	if s, ok := oauthtest.Contains(dv.Log(), srv.Secrets()); ok {
		t.Logf("(Dovecot's own log holds token %.6s…)", s)
	}
}

// TestOAuth2POP3 authorizes an account and backs it up over POP3 with
// XOAUTH2, then checks it; a second account reads the same mailbox with
// OAUTHBEARER through the same token file.
func TestOAuth2POP3(t *testing.T) {
	srv := oauthtest.Start(t, "mailkeep-test", "")
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	dv.AddUser(t, "alice", "alice-Pw1")
	c := imaptest.Dial(t, dv.IMAPAddr, "alice", "alice-Pw1")
	for j := 0; j < 4; j++ {
		imaptest.Append(t, c, "INBOX", nil, time.Date(2024, 3, 1, 0, j, 0, 0, time.UTC), []byte(fmt.Sprintf("Subject: pop %d\r\n\r\nbody\r\n", j)))
	}
	c.Logout().Wait()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	table := fmt.Sprintf("[account.oauth2]\nprovider = \"generic\"\nclient_id = \"mailkeep-test\"\nauth_url = %q\ntoken_url = %q\ntoken_file = \"tokens/alice.json\"\n", srv.AuthURL(), srv.TokenURL())
	os.WriteFile(cfg, []byte(fmt.Sprintf(`archive_root = %q

[[account]]
name = "alice-pop"
pop3 = "pop3://alice@%[2]s"
tls = "none"
%[3]s
[[account]]
name = "alice-pop-ob"
pop3 = "pop3://alice@%[2]s"
tls = "none"
%[3]smechanism = "oauthbearer"
`, filepath.Join(dir, "archives"), dv.POP3Addr, table)), 0o600)
	outputs := []string{loopbackAuth(t, cfg, "alice-pop", "alice").stderr}
	for _, name := range []string{"alice-pop", "alice-pop-ob"} {
		r := mailkeep(t, nil, "check", "--config", cfg, name)
		outputs = append(outputs, r.stdout, r.stderr)
		if r.code != 0 || !strings.Contains(r.stdout, "would fetch 4 messages") {
			t.Errorf("check %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
		r = mailkeep(t, nil, "backup", "--config", cfg, name)
		outputs = append(outputs, r.stdout, r.stderr)
		if r.code != 0 || !strings.Contains(r.stderr, "4 new messages") {
			t.Fatalf("backup %s: exit %d\n%s\n%s", name, r.code, r.stderr, dv.Log())
		}
	}
	if srv.Count("introspect_active") < 4 || srv.Count("refresh") != 0 {
		t.Errorf("introspections %d, refreshes %d", srv.Count("introspect_active"), srv.Count("refresh"))
	}
	for _, out := range outputs {
		if s, ok := oauthtest.Contains(out, append(srv.Secrets(), "alice-Pw1")); ok {
			t.Errorf("secret %.6s… in output:\n%s", s, out)
		}
	}
}
