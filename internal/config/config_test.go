package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestBadConfigs checks every problem is reported, with its line, as the
// golden file says.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse("config.toml", data)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(l, "config.toml:") {
					t.Errorf("error without file name: %q", l)
				}
			}
			if strings.Contains(got, "hunter2") || strings.Contains(got, "secret@") {
				t.Errorf("error repeats a secret: %s", got)
			}
		})
	}
}

func TestFullConfig(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	data, err := os.ReadFile("testdata/good/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("/etc/mailkeep/config.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Parallel != 3 || cfg.ArchiveRoot != "/srv/mail" || cfg.MetricsFile != "/var/lib/node_exporter/textfile/mailkeep.prom" {
		t.Errorf("top level: %+v", cfg)
	}
	want := []struct {
		name, archive, format string
		conns, line           int
	}{
		{"alice", "/srv/mail/alice", "maildir", 2, 6},
		{"bob.pop", "/home/u/bob-mail", "", DefaultConnections, 15},
		{"carol", "/srv/mail/carol", "", DefaultConnections, 23},
		{"dave", "/srv/mail/dave", "", DefaultConnections, 31},
	}
	if len(cfg.Accounts) != len(want) {
		t.Fatalf("%d accounts", len(cfg.Accounts))
	}
	for i, w := range want {
		a := cfg.Accounts[i]
		if a.Name != w.name || a.Archive != w.archive || a.Format != w.format || a.Connections != w.conns || a.Line != w.line {
			t.Errorf("account %d: %+v, want %+v", i, a, w)
		}
	}
	a := cfg.Accounts[0]
	if a.PasswordFile != "/etc/mailkeep/alice.pw" || !reflect.DeepEqual(a.Folders, []string{"INBOX", "Work/*"}) || !reflect.DeepEqual(a.Exclude, []string{"Work/Old"}) {
		t.Errorf("alice: %+v", a)
	}
	b := cfg.Accounts[1]
	if !b.Delete || b.KeepDays != 30 || b.PasswordCommand != "pass show mail/bob" {
		t.Errorf("bob: %+v", b)
	}
	o := cfg.Accounts[2].OAuth2
	if o == nil || o.Provider != "google" || o.Flow != "loopback" || o.Mechanism != "xoauth2" || o.TokenFile != "/etc/mailkeep/tokens/carol.json" {
		t.Errorf("carol oauth2: %+v", o)
	}
	if d := cfg.Accounts[3]; d.TLS != "none" || d.PasswordEnv != "DAVE_PASSWORD" || d.CompressionLevel != 19 {
		t.Errorf("dave: %+v", d)
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	data, err := os.ReadFile("testdata/good/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("c.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Parallel != DefaultParallel || cfg.ArchiveRoot != "/data/mailkeep" || cfg.Accounts[0].Archive != "/data/mailkeep/me" {
		t.Errorf("defaults: %+v %+v", cfg, cfg.Accounts[0])
	}
	if p := DefaultPath(); p != "/cfg/mailkeep/config.toml" {
		t.Errorf("DefaultPath = %s", p)
	}
}

func TestSelect(t *testing.T) {
	data, _ := os.ReadFile("testdata/good/full.toml")
	cfg, err := Parse("c.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	all, err := cfg.Select(nil)
	if err != nil || len(all) != 4 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	some, err := cfg.Select([]string{"dave", "alice"})
	if err != nil || len(some) != 2 || some[0].Name != "dave" || some[1].Name != "alice" {
		t.Fatalf("some: %+v %v", some, err)
	}
	_, err = cfg.Select([]string{"alice", "zed"})
	if err == nil || !strings.Contains(err.Error(), `no account "zed"`) || !strings.Contains(err.Error(), "alice, bob.pop, carol, dave") {
		t.Errorf("unknown name: %v", err)
	}
}

// TestLoadWarnings checks secrets in files others can read are called out.
func TestLoadWarnings(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x\n"), 0o644)
	cfgText := `[[account]]
name = "a"
imap = "imaps://a@example.com"
password_file = "pw"

[[account]]
name = "g"
imap = "imaps://g@imap.gmail.com"
[account.oauth2]
provider = "google"
client_id = "id"
client_secret = "s"
`
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(cfgText), 0o644)
	_, warns, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "client_secret") || !strings.Contains(warns[1], "password_file") || !strings.Contains(warns[1], ":4:") && !strings.Contains(warns[1], ":1:") {
		t.Errorf("warnings: %q", warns)
	}
	os.Chmod(path, 0o600)
	os.Chmod(pw, 0o600)
	if _, warns, err = Load(path); err != nil || len(warns) != 0 {
		t.Errorf("after chmod: %q %v", warns, err)
	}
	if _, _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestBudgetKeys(t *testing.T) {
	cfg, err := Parse("config.toml", []byte(`[[account]]
name = "big"
imap = "imaps://me@imap.gmail.com"
password_env = "PW"
max_bytes_per_run = 2000000000
max_messages_per_run = 50000
`))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Accounts[0]; a.MaxBytesPerRun != 2000000000 || a.MaxMessagesPerRun != 50000 {
		t.Errorf("budget: %d bytes, %d messages", a.MaxBytesPerRun, a.MaxMessagesPerRun)
	}
}
