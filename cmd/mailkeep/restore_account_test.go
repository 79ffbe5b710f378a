package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/oauth/oauthtest"
)

// TestRestoreToOAuth2Account: disaster recovery onto an account that only
// takes OAuth2. alice's archive (backed up with a password) is restored
// with --account onto zed, whose Dovecot login goes through the oauth2
// passdb: every folder, body, flag and date arrives, a rerun appends
// nothing, and --account without --archive restores the account's own
// archive.
func TestRestoreToOAuth2Account(t *testing.T) {
	srv := oauthtest.Start(t, "mailkeep-test", "")
	dv := dovecottest.Start(t, &dovecottest.Options{OAuth2IntrospectionURL: srv.IntrospectURL()})
	dv.AddUser(t, "alice", "alice-Pw1")
	dv.AddUser(t, "zed", "zed-Pw-unused")
	c := imaptest.Dial(t, dv.IMAPAddr, "alice", "alice-Pw1")
	for j := 0; j < 6; j++ {
		folder := []string{"INBOX", "Work/Sub", "Sent"}[j%3]
		flags := [][]string{nil, {`\Seen`}, {`\Flagged`, "$Label1"}}[j%3]
		imaptest.Append(t, c, folder, flags, time.Date(2023, 5, j+1, 8, 0, 0, 0, time.UTC),
			[]byte(fmt.Sprintf("From: a@example.com\r\nMessage-ID: <%d@example.com>\r\nSubject: %d\r\n\r\nFrom the start\r\nbody %d\r\n", j, j, j)))
	}
	want := imaptest.Snapshot(t, c, true)
	c.Logout().Wait()

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "alice.pw"), []byte("alice-Pw1"), 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`archive_root = %q

[[account]]
name = "alice"
imap = "imap://alice@%[2]s"
tls = "none"
password_file = "alice.pw"

[[account]]
name = "zed"
imap = "imap://zed@%[2]s"
tls = "none"
[account.oauth2]
provider = "generic"
client_id = "mailkeep-test"
auth_url = %[3]q
token_url = %[4]q
`, filepath.Join(dir, "archives"), dv.IMAPAddr, srv.AuthURL(), srv.TokenURL())), 0o600)

	if r := mailkeep(t, nil, "backup", "--config", cfg, "--quiet", "alice"); r.code != 0 {
		t.Fatalf("backup: %d %s", r.code, r.stderr)
	}
	loopbackAuth(t, cfg, "zed", "zed")
	aliceArchive := filepath.Join(dir, "archives", "alice")
	r := mailkeep(t, nil, "restore", "--config", cfg, "--account", "zed", "--archive", aliceArchive, "--json", "--no-special-use")
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", r.code, r.stderr, dv.Log())
	}
	var sum restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Appended != 6 {
		t.Fatalf("summary: %v %+v", err, sum)
	}
	// The restore logged in by token: through go-imap (folders) and the raw
	// APPEND connection, each asking the introspection endpoint.
	if n := srv.Count("introspect_active"); n < 2 {
		t.Errorf("Dovecot accepted %d tokens, want at least 2 (a client and an APPEND connection)", n)
	}
	z := imaptest.Dial(t, dv.IMAPAddr, "zed", "zed-Pw-unused")
	if d := imaptest.Diff(want, imaptest.Snapshot(t, z, true), nil); d != "" {
		t.Errorf("zed after restore:\n%s", d)
	}
	z.Logout().Wait()

	r = mailkeep(t, nil, "restore", "--config", cfg, "--account", "zed", "--archive", aliceArchive, "--json", "--no-special-use")
	if err := json.Unmarshal([]byte(r.stdout), &sum); r.code != 0 || err != nil || sum.Appended != 0 {
		t.Errorf("rerun: exit %d, %+v\n%s", r.code, sum, r.stderr)
	}
	// The account's own archive by default: everything is already there.
	r = mailkeep(t, nil, "restore", "--config", cfg, "--account", "alice", "--json", "--dry-run")
	if err := json.Unmarshal([]byte(r.stdout), &sum); r.code != 0 || err != nil || sum.Appended != 0 || sum.Skipped != 6 || sum.Archive != aliceArchive {
		t.Errorf("alice onto herself: exit %d, %+v\n%s", r.code, sum, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "--config", cfg, "--account", "zed", "--imap", "imap://x@127.0.0.1:1"}, "with --account they come from the config file"},
		{[]string{"restore", "--config", cfg, "--account", "nobody"}, `"nobody"`},
		{[]string{"restore", "--config", cfg, "--archive", aliceArchive, "--imap", "imap://x@127.0.0.1:1"}, "--config goes with --account"},
	} {
		if r := mailkeep(t, nil, tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if s, ok := oauthtest.Contains(out, srv.Secrets()); ok {
			t.Errorf("secret %.6s… in output", s)
		}
	}
}
