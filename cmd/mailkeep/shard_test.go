package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

func TestShardFlagParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		k, n int
		err  string
	}{
		{"1/1", 1, 1, ""},
		{"2/3", 2, 3, ""},
		{"3/3", 3, 3, ""},
		{" 4 / 10 ", 4, 10, ""},
		{"1000/1000", 1000, 1000, ""},
		{"0/3", 0, 0, "K must be 1 to N (3); shards are numbered from 1"},
		{"4/3", 0, 0, "K must be 1 to N (3)"},
		{"1/0", 0, 0, "N must be 1 to 1000"},
		{"1/1001", 0, 0, "N must be 1 to 1000"},
		{"-1/3", 0, 0, "K must be 1"},
		{"2", 0, 0, "want K/N"},
		{"a/b", 0, 0, "want K/N"},
		{"1/2/3", 0, 0, "want K/N"},
		{"", 0, 0, "want K/N"},
	} {
		var s shardFlag
		err := s.Set(tc.in)
		if tc.err == "" {
			if err != nil || s.k != tc.k || s.n != tc.n {
				t.Errorf("Set(%q) = %v, %d/%d; want %d/%d", tc.in, err, s.k, s.n, tc.k, tc.n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Set(%q) = %v; want an error with %q", tc.in, err, tc.err)
		}
	}
}

// TestShardGolden pins the documented assignment: changing the hash would
// move accounts between shards, and with one volume per shard their
// archives with them.
func TestShardGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want int
	}{
		{"alice", 1, 1},
		{"alice", 2, 1},
		{"alice", 3, 1},
		{"alice", 4, 1},
		{"alice", 5, 1},
		{"bob", 2, 2},
		{"bob", 3, 3},
		{"bob", 4, 3},
		{"bob", 5, 3},
		{"carol", 2, 2},
		{"carol", 3, 2},
		{"carol", 4, 2},
		{"carol", 5, 5},
		{"user1@example.com", 2, 2},
		{"user1@example.com", 3, 3},
		{"user1@example.com", 4, 3},
		{"user1@example.com", 5, 5},
	} {
		if got := shardOf(tc.name, tc.n); got != tc.want {
			t.Errorf("shardOf(%q, %d) = %d, want %d", tc.name, tc.n, got, tc.want)
		}
	}
}

func accounts(names ...string) []config.Account {
	out := make([]config.Account, len(names))
	for i, n := range names {
		out[i] = config.Account{Name: n, Archive: "/archive/" + n}
	}
	return out
}

func names(accts []config.Account) []string {
	out := make([]string, len(accts))
	for i, a := range accts {
		out[i] = a.Name
	}
	return out
}

// TestShardPartition: for every N, every account is in exactly one of the
// shards 1..N, the shards are about even, and an account's shard does not
// change when other accounts are added, removed or reordered; growing N
// to N+1 moves accounts only into the new shard.
func TestShardPartition(t *testing.T) {
	var all []string
	for i := range 3000 {
		all = append(all, fmt.Sprintf("user%d@example.com", i))
	}
	all = append(all, "alice", "bob", "", "ü-ß", "a b", strings.Repeat("x", 500))
	full := accounts(all...)
	for n := 1; n <= 9; n++ {
		where := map[string]int{}
		for k := 1; k <= n; k++ {
			got, err := shardFlag{k, n}.shardSelect(full, false)
			if err != nil {
				t.Fatal(err)
			}
			if exp := float64(len(full)) / float64(n); n > 1 && (float64(len(got)) < 0.85*exp || float64(len(got)) > 1.15*exp) {
				t.Errorf("shard %d/%d has %d of %d accounts, expected about %.0f", k, n, len(got), len(full), exp)
			}
			for _, a := range got {
				if prev, dup := where[a.Name]; dup {
					t.Fatalf("%q in shards %d/%d and %d/%d", a.Name, prev, n, k, n)
				}
				where[a.Name] = k
			}
		}
		if len(where) != len(full) {
			t.Fatalf("N=%d: %d of %d accounts in some shard", n, len(where), len(full))
		}

		// Other accounts come and go, the order changes: the shards of the
		// accounts that stay do not.
		var fewer []string
		for i, name := range all {
			if i%3 != 0 {
				fewer = append(fewer, name)
			}
		}
		slices.Reverse(fewer)
		more := append(slices.Clone(fewer), "newcomer1", "newcomer2", "zed")
		for _, list := range [][]string{fewer, more} {
			for k := 1; k <= n; k++ {
				got, err := shardFlag{k, n}.shardSelect(accounts(list...), false)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range got {
					if w, ok := where[a.Name]; ok && w != k {
						t.Fatalf("N=%d: %q moved from shard %d to %d when other accounts changed", n, a.Name, w, k)
					}
				}
			}
		}

		// N grows by one: an account stays, or moves to the new shard.
		moved := 0
		for name, k := range where {
			if k2 := shardOf(name, n+1); k2 != k {
				if k2 != n+1 {
					t.Fatalf("%q moved from %d/%d to %d/%d, not to the new shard", name, k, n, k2, n+1)
				}
				moved++
			}
		}
		if exp := float64(len(full)) / float64(n+1); float64(moved) > 1.2*exp {
			t.Errorf("N %d to %d moved %d accounts, expected about %.0f", n, n+1, moved, exp)
		}
	}
}

// TestShardNamed: named accounts must be in the shard; the error names
// the shard they are in.
func TestShardNamed(t *testing.T) {
	const n = 4
	list := accounts("alice", "bob", "carol", "dave", "erin", "frank")
	byShard := map[int][]string{}
	for _, a := range list {
		byShard[shardOf(a.Name, n)] = append(byShard[shardOf(a.Name, n)], a.Name)
	}
	for k := 1; k <= n; k++ {
		got, err := shardFlag{k, n}.shardSelect(list, false)
		if err != nil || !slices.Equal(names(got), byShard[k]) {
			t.Errorf("shard %d/%d: %v, %v; want %v", k, n, names(got), err, byShard[k])
		}
		for _, a := range list {
			_, err := shardFlag{k, n}.shardSelect([]config.Account{a}, true)
			in := shardOf(a.Name, n)
			switch {
			case in == k && err != nil:
				t.Errorf("%s named in its own shard %d/%d: %v", a.Name, k, n, err)
			case in != k && (err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), fmt.Sprintf("%s is in shard %d/%d", a.Name, in, n))):
				t.Errorf("%s named in shard %d/%d (it is in %d): %v", a.Name, k, n, in, err)
			}
		}
	}
	if got, err := (shardFlag{}).shardSelect(list, true); err != nil || len(got) != len(list) {
		t.Errorf("no --shard: %v %v", names(got), err)
	}
}

// TestShardBackup backs up a configuration of six Dovecot accounts as three
// shards, as three CronJobs would: every account is backed up by exactly
// one shard, each shard's metrics file and Pushgateway group describe its
// own accounts only, and usage errors are clear.
func TestShardBackup(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dir := t.TempDir()
	root := filepath.Join(dir, "archives")
	var cfgText strings.Builder
	fmt.Fprintf(&cfgText, "archive_root = %q\nparallel = 2\n", root)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	pws := map[string]string{}
	for i, u := range users { // all users first: Dovecot rereads its passwd file once
		pws[u] = u + "-Pw" + fmt.Sprint(i)
		dv.AddUser(t, u, pws[u])
	}
	for i, u := range users {
		pw := pws[u]
		c := imaptest.Dial(t, dv.IMAPAddr, u, pw)
		imaptest.Append(t, c, "INBOX", nil, time.Date(2024, 3, 1, 0, i, 0, 0, time.UTC),
			[]byte(fmt.Sprintf("From: %s@example.com\r\nSubject: hi %s\r\nMessage-ID: <%s@example.com>\r\n\r\nbody\r\n", u, u, u)))
		c.Logout().Wait()
		os.WriteFile(filepath.Join(dir, u+".pw"), []byte(pw+"\n"), 0o600)
		fmt.Fprintf(&cfgText, "\n[[account]]\nname = %q\nimap = \"imap://%s@%s\"\ntls = \"none\"\npassword_file = \"%s.pw\"\n", u, u, dv.IMAPAddr, u)
	}
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(cfgText.String()), 0o600)

	// A Pushgateway stand-in on loopback: the groups pushed, by URL path.
	var pushMu sync.Mutex
	pushed := map[string]map[string]*dto.MetricFamily{}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs := map[string]*dto.MetricFamily{}
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err != nil {
				break
			}
			mfs[mf.GetName()] = mf
		}
		pushMu.Lock()
		pushed[r.Method+" "+r.URL.Path] = mfs
		pushMu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()

	const n = 3
	done := map[string]int{}
	for k := 1; k <= n; k++ {
		prom := filepath.Join(dir, fmt.Sprintf("shard%d.prom", k))
		r := mailkeep(t, nil, "backup", "--config", cfg, "--shard", fmt.Sprintf("%d/%d", k, n), "--parallel", "2", "--json", "--quiet", "--metrics-file", prom, "--metrics-push", gw.URL)
		if r.code != exitOK {
			t.Fatalf("shard %d/%d: exit %d: %s", k, n, r.code, r.stderr)
		}
		var rs runSummary
		if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
			t.Fatalf("json: %v\n%s", err, r.stdout)
		}
		m := readMetrics(t, prom)
		for _, s := range rs.Accounts {
			if prev, dup := done[s.Name]; dup {
				t.Errorf("%s backed up by shards %d and %d", s.Name, prev, k)
			}
			done[s.Name] = k
			if s.Outcome != "ok" || s.Fetched != 1 || shardOf(s.Name, n) != k {
				t.Errorf("shard %d/%d: %+v", k, n, s)
			}
		}
		// The group is job="mailkeep", shard="K/N" (the slash base64-encoded).
		group := "PUT /metrics/job/mailkeep/shard@base64/" + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d/%d", k, n)))
		pushMu.Lock()
		pm, ok := pushed[group]
		pushMu.Unlock()
		if !ok {
			t.Fatalf("shard %d/%d pushed no %s (pushed: %v)", k, n, group, pushed)
		}
		for _, u := range users {
			_, has := m.find("mailkeep_archive_messages", u, "")
			_, pushedHas := promFile(pm).find("mailkeep_archive_messages", u, "")
			if in := shardOf(u, n) == k; has != in || pushedHas != in {
				t.Errorf("shard %d/%d metrics: %s in file %v, pushed %v, in the shard %v", k, n, u, has, pushedHas, in)
			}
		}
	}
	for _, u := range users {
		if _, ok := done[u]; !ok {
			t.Errorf("%s backed up by no shard (%v)", u, done)
		}
		if _, err := os.Stat(filepath.Join(root, u)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}

	other := shardOf("alice", n)%n + 1 // a shard alice is not in
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"zero", []string{"backup", "--config", cfg, "--shard", "0/3"}, "K must be 1 to N"},
		{"over", []string{"backup", "--config", cfg, "--shard", "4/3"}, "K must be 1 to N (3)"},
		{"form", []string{"backup", "--config", cfg, "--shard", "2"}, "want K/N"},
		{"url", []string{"backup", "--imap", "imap://alice@" + dv.IMAPAddr, "--archive", dir, "--shard", "1/2"}, "--shard and --metrics-push work on configured accounts"},
		{"named elsewhere", []string{"backup", "--config", cfg, "--shard", fmt.Sprintf("%d/%d", other, n), "alice"}, fmt.Sprintf("alice is in shard %d/%d", shardOf("alice", n), n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mailkeep(t, nil, tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tc.want)
			}
		})
	}
	// Named in its own shard: backed up.
	r := mailkeep(t, nil, "backup", "--config", cfg, "--shard", fmt.Sprintf("%d/%d", shardOf("alice", n), n), "--quiet", "alice")
	if r.code != exitOK {
		t.Errorf("alice in her own shard: exit %d: %s", r.code, r.stderr)
	}
}
