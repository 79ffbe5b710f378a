package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestPOP3DeletedStaysVisible: messages that "backup --delete" removed from
// the POP3 server after archiving them are the archive's whole point: ls,
// export and restore show them without --include-expunged, on a new
// catalog and on a schema-1 catalog (read-only, then migrated).
func TestPOP3DeletedStaysVisible(t *testing.T) {
	const n = 12
	var msgs [][]byte
	for i := 0; i < n; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Subject: keep %d\r\nDate: Mon, 2 Mar 2026 10:%02d:00 +0000\r\n\r\nbody %d\r\n", i, i, i)))
	}
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	dir := filepath.Join(t.TempDir(), "pop")
	url := "pop3://" + user + "@" + srv.Addr
	if r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--delete", "--quiet"); r.code != 0 {
		t.Fatalf("backup --delete: %d %s", r.code, r.stderr)
	}
	if left := srv.Messages(); len(left) != 0 {
		t.Fatalf("%d messages left on the server", len(left))
	}
	visible := func(when string) {
		t.Helper()
		r := mailkeep(t, nil, "ls", "--archive", dir)
		// INBOX (12 deleted from server by mailkeep)  12  0  0.0  0
		if f := strings.Fields(lineWith(r.stdout, "INBOX")); r.code != 0 || len(f) < 5 || f[len(f)-4] != fmt.Sprint(n) || f[len(f)-3] != "0" {
			t.Errorf("%s: ls: exit %d, want INBOX with %d messages:\n%s%s", when, r.code, n, r.stdout, r.stderr)
		}
		r = mailkeep(t, nil, "ls", "--archive", dir, "--folder", "INBOX")
		if got := strings.Count(r.stdout, "\n") - 1; r.code != 0 || got != n || strings.Contains(r.stdout, "*") {
			t.Errorf("%s: ls --folder INBOX lists %d, want %d live:\n%s%s", when, got, n, r.stdout, r.stderr)
		}
		r = mailkeep(t, nil, "export", "--archive", dir, "--to", filepath.Join(t.TempDir(), "x"), "--format", "eml", "--json", "--quiet")
		var sum exportSummary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || sum.Messages != n {
			t.Errorf("%s: export: exit %d, %d messages, want %d (%v %s)", when, r.code, sum.Messages, n, err, r.stderr)
		}
	}
	visible("new catalog")

	// restore without --include-expunged appends every one.
	dv := startDovecot(t)
	if r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://"+user+"@"+dv.IMAPAddr, "--tls", "none", "--quiet"); r.code != 0 {
		t.Fatalf("restore: %d %s", r.code, r.stderr)
	}
	if got := len(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, user, pass), false)["INBOX"]); got != n {
		t.Errorf("restore appended %d, want %d", got, n)
	}

	// The same archive as schema 1 wrote it: deleted messages marked expunged.
	db, err := sql.Open("sqlite", filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE messages SET expunged_run=deleted_run`,
		`DROP INDEX messages_deleted`,
		`ALTER TABLE messages DROP COLUMN deleted_run`,
		`UPDATE meta SET value='1' WHERE key='schema_version'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	visible("schema 1, read-only")
	// A backup migrates it; nothing is marked gone, nothing fetched again.
	r := mailkeep(t, pwEnv(), "backup", "--pop3", url, "--tls", "none", "--archive", dir, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"expunged": 0`) || !strings.Contains(r.stdout, `"fetched": 0`) {
		t.Fatalf("backup after migration: %d %s %s", r.code, r.stdout, r.stderr)
	}
	visible("migrated")
	db, _ = sql.Open("sqlite", filepath.Join(dir, "catalog.db"))
	defer db.Close()
	var v string
	var del, exp int
	db.QueryRow(`SELECT value FROM meta WHERE key='schema_version'`).Scan(&v)
	db.QueryRow(`SELECT COUNT(deleted_run), COUNT(expunged_run) FROM messages`).Scan(&del, &exp)
	if v != "5" || del != n || exp != 0 {
		t.Errorf("migrated catalog: schema %s, %d deleted, %d expunged; want 5, %d, 0", v, del, exp, n)
	}
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
