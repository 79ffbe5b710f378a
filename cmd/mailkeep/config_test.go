package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestConfiguredBackup runs every account of a config file against
// Dovecot: one account's password is wrong; the others are backed up
// completely, the run exits 3 and names the failed account.
func TestConfiguredBackup(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	users := map[string]string{"alice": "alice-Pw1", "bob": "bob-Pw2", "carol": "carol-Pw3"}
	for u, p := range users {
		dv.AddUser(t, u, p)
	}
	want := map[string]map[string][]imaptest.Msg{}
	for i, u := range []string{"alice", "bob", "carol"} {
		c := imaptest.Dial(t, dv.IMAPAddr, u, users[u])
		for j := 0; j < 5+i; j++ {
			folder := []string{"INBOX", "Archive/2024"}[j%2]
			if u == "carol" {
				folder = "INBOX" // carol is read over POP3
			}
			imaptest.Append(t, c, folder, nil, time.Date(2024, 3, 1, 0, j, 0, 0, time.UTC),
				[]byte(fmt.Sprintf("From: %s@example.com\r\nSubject: %s %d\r\nMessage-ID: <%s.%d@example.com>\r\n\r\nbody %d\r\n", u, u, j, u, j, j)))
		}
		want[u] = imaptest.Snapshot(t, c, true)
		c.Logout().Wait()
	}

	dir := t.TempDir()
	root := filepath.Join(dir, "archives")
	for u, p := range users {
		if u == "bob" {
			p = "wrong"
		}
		os.WriteFile(filepath.Join(dir, u+".pw"), []byte(p+"\n"), 0o600)
	}
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`archive_root = %q
parallel = 2

[[account]]
name = "alice"
imap = "imap://alice@%s"
tls = "none"
password_file = "alice.pw"

[[account]]
name = "bob"
imap = "imap://bob@%s"
tls = "none"
password_file = "bob.pw"
format = "maildir"

[[account]]
name = "carol"
pop3 = "pop3://carol@%s"
tls = "none"
password_file = "carol.pw"
`, root, dv.IMAPAddr, dv.IMAPAddr, dv.POP3Addr)), 0o600)

	// check before any backup: everything is new; bob cannot log in.
	chk := checkJSON(t, cfg)
	if chk["alice"].NewMessages != 5 || chk["carol"].NewMessages != 7 || chk["bob"].Outcome != "failed" || chk["alice"].Outcome != "ok" {
		t.Fatalf("check before backup: %+v", chk)
	}
	var aliceBytes int64
	for _, msgs := range want["alice"] {
		for _, m := range msgs {
			aliceBytes += int64(len(m.Body))
		}
	}
	if chk["alice"].NewBytes != aliceBytes {
		t.Errorf("check: alice new bytes %d, want %d", chk["alice"].NewBytes, aliceBytes)
	}

	prom := filepath.Join(dir, "mailkeep.prom")
	r := mailkeep(t, nil, "backup", "--config", cfg, "--json", "--quiet", "--metrics-file", prom)
	for _, p := range users {
		if strings.Contains(r.stdout+r.stderr, p) {
			t.Fatalf("password in output: %s %s", r.stdout, r.stderr)
		}
	}
	if r.code != exitPartial {
		t.Fatalf("exit %d, want 3: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "bob") || !strings.Contains(r.stderr, "login") || strings.Contains(r.stderr, "mailkeep backup alice") {
		t.Errorf("stderr should name bob's login failure only:\n%s", r.stderr)
	}
	var rs runSummary
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	got := map[string]summary{}
	for _, s := range rs.Accounts {
		got[s.Name] = s
	}
	if rs.Outcome != "partial" || len(rs.Accounts) != 3 || got["alice"].Outcome != "ok" || got["carol"].Outcome != "ok" || got["bob"].Outcome != "failed" || got["bob"].Error == "" {
		t.Fatalf("summary: %+v", rs)
	}
	if got["alice"].Fetched != 5 || got["carol"].Fetched != 7 || got["alice"].LastSuccess == nil {
		t.Errorf("fetched: alice %d carol %d", got["alice"].Fetched, got["carol"].Fetched)
	}
	archivetest.Compare(t, want["alice"], filepath.Join(root, "alice"))
	m := readMetrics(t, prom)
	m.want(t, "mailkeep_last_run_outcome", "bob", "failed", 1)
	m.want(t, "mailkeep_last_run_outcome", "bob", "ok", 0)
	m.want(t, "mailkeep_last_run_outcome", "alice", "ok", 1)
	m.want(t, "mailkeep_last_run_messages_fetched", "alice", "", 5)
	m.want(t, "mailkeep_last_run_messages_fetched", "carol", "", 7)
	m.want(t, "mailkeep_archive_messages", "carol", "", 7)
	m.want(t, "mailkeep_last_run_bytes_fetched", "alice", "", float64(aliceBytes))
	m.absent(t, "mailkeep_last_success_timestamp_seconds", "bob")
	aliceRun := m.get(t, "mailkeep_last_run_timestamp_seconds", "alice", "")
	if d := time.Since(time.Unix(int64(aliceRun), 0)); d < 0 || d > time.Minute {
		t.Errorf("alice's last run %v ago", d)
	}
	if m.get(t, "mailkeep_archive_size_bytes", "alice", "") < float64(aliceBytes) {
		t.Errorf("alice's archive size below the bytes it holds")
	}
	// carol came over POP3: same bytes, keyed by UIDL.
	a, err := archive.Open(filepath.Join(root, "carol"), archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.Cat.Folder(t.Context(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	live, _ := a.Cat.Live(t.Context(), f.ID)
	have := map[string]bool{}
	for _, m := range live {
		have[m.SHA256] = archivetest.ReadSHA(t, a, m) == m.SHA256
	}
	a.Close()
	if len(live) != len(want["carol"]["INBOX"]) {
		t.Errorf("carol: %d archived, server has %d", len(live), len(want["carol"]["INBOX"]))
	}
	for _, m := range want["carol"]["INBOX"] {
		if !have[m.SHA256] {
			t.Errorf("carol: uid %d not archived intact", m.UID)
		}
	}

	// New mail for alice: check sees exactly it and writes nothing.
	c := imaptest.Dial(t, dv.IMAPAddr, "alice", users["alice"])
	imaptest.Append(t, c, "Archive/2024", nil, time.Now(), []byte("Subject: late\r\n\r\nlate mail\r\n"))
	c.Logout().Wait()
	before, _ := os.ReadFile(filepath.Join(root, "alice", "catalog.db"))
	r = mailkeep(t, nil, "check", "--config", cfg, "alice")
	if r.code != 0 || !strings.Contains(r.stdout, "a backup would fetch 1 messages") || !strings.Contains(r.stdout, "Archive/2024") {
		t.Fatalf("check alice: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	after, _ := os.ReadFile(filepath.Join(root, "alice", "catalog.db"))
	if string(before) != string(after) {
		t.Error("check changed the catalog")
	}
	want["alice"] = imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "alice", users["alice"]), true)

	// Fix bob's password; run only bob: ok, exit 0, nothing on stdout or
	// stderr under --quiet.
	os.WriteFile(filepath.Join(dir, "bob.pw"), []byte(users["bob"]), 0o600)
	r = mailkeep(t, nil, "backup", "--config", cfg, "--quiet", "bob")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("bob alone: %d %q %q", r.code, r.stdout, r.stderr)
	}
	archivetest.Compare(t, want["bob"], filepath.Join(root, "bob"))
	r = mailkeep(t, nil, "backup", "--config", cfg, "--quiet", "--metrics-file", prom, "bob")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("bob with metrics: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The accounts that did not run keep their series, from their catalogs.
	m = readMetrics(t, prom)
	m.want(t, "mailkeep_last_run_outcome", "bob", "ok", 1)
	m.want(t, "mailkeep_last_run_messages_fetched", "bob", "", 0)
	m.want(t, "mailkeep_last_run_timestamp_seconds", "alice", "", aliceRun)
	m.want(t, "mailkeep_last_run_messages_fetched", "alice", "", 5)
	m.want(t, "mailkeep_last_run_outcome", "carol", "ok", 1)
	if m.get(t, "mailkeep_last_success_timestamp_seconds", "bob", "") < aliceRun {
		t.Error("bob's last success is older than the first run")
	}

	// All again, one at a time: nothing new.
	r = mailkeep(t, nil, "backup", "--config", cfg, "--parallel", "1", "--json")
	if r.code != 0 {
		t.Fatalf("rerun: %d %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.Outcome != "ok" {
		t.Fatalf("rerun summary: %v %s", err, r.stdout)
	}
	for _, s := range rs.Accounts {
		if s.Name == "alice" && s.Fetched != 1 || s.Name != "alice" && s.Fetched != 0 {
			t.Errorf("rerun fetched %d for %s", s.Fetched, s.Name)
		}
	}
	archivetest.Compare(t, want["alice"], filepath.Join(root, "alice"))
	if n := strings.Count(r.stderr, "mailkeep backup "); n != 3 {
		t.Errorf("want a summary line per account, got %d:\n%s", n, r.stderr)
	}
}

// TestConfigUsage covers the ways a config run is refused before any
// network work.
func TestConfigUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[[account]]\nname = \"a\"\nimap = \"imaps://a@127.0.0.1:1\"\npassword_env = \"A_PW\"\nfoldres = [\"x\"]\n"), 0o600)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[[account]]\nname = \"a\"\nimap = \"imaps://a@127.0.0.1:1\"\npassword_env = \"A_PW\"\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown key", []string{"backup", "--config", cfg}, 2, "config.toml:5: unknown key \"account.foldres\""},
		{"missing config", []string{"backup", "--config", filepath.Join(dir, "none.toml")}, 2, "none.toml"},
		{"unknown account", []string{"backup", "--config", good, "zed"}, 2, `no account "zed"`},
		{"archive flag", []string{"backup", "--config", good, "--archive", dir}, 2, "--archive"},
		{"no password", []string{"backup", "--config", good}, 2, "A_PW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mailkeep(t, []string{"XDG_CONFIG_HOME=" + dir}, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}

func checkJSON(t *testing.T, cfg string, names ...string) map[string]checkResult {
	t.Helper()
	r := mailkeep(t, nil, append([]string{"check", "--config", cfg, "--json"}, names...)...)
	var out struct {
		Command  string
		Accounts []checkResult
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("check json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	m := map[string]checkResult{}
	for _, a := range out.Accounts {
		m[a.Name] = a
	}
	failed := false
	for _, a := range out.Accounts {
		failed = failed || a.Outcome != "ok"
	}
	if failed != (r.code != 0) {
		t.Errorf("check exit %d with outcomes %+v", r.code, out.Accounts)
	}
	return m
}
