package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestBackupBudgetCLI: --max-messages-per-run spreads a backup over runs;
// each stopped run exits partial (3) and its summary and --json say what
// is left and in how many runs; the last run is ok and the archive holds
// everything.
func TestBackupBudgetCLI(t *testing.T) {
	dv := startDovecot(t)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	for i := 0; i < 10; i++ {
		imaptest.Append(t, c, []string{"INBOX", "Work"}[i%2], nil, time.Date(2021, 1, 1, 0, i, 0, 0, time.UTC),
			[]byte(fmt.Sprintf("From: a@example.com\r\nMessage-ID: <%d@budget>\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)))
	}
	dir := filepath.Join(t.TempDir(), "arch")
	url := "imap://" + user + "@" + dv.IMAPAddr
	var runs []map[string]any
	for i := 0; i < 8; i++ {
		r := mailkeep(t, pwEnv(), "backup", "--imap", url, "--tls", "none", "--archive", dir, "--json", "--max-messages-per-run", "4", "--connections", "1")
		var sum map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatalf("--json: %v\n%s", err, r.stdout)
		}
		runs = append(runs, sum)
		if r.code == 0 {
			break
		}
		rem, _ := sum["remaining"].(map[string]any)
		if r.code != 3 || sum["outcome"] != "partial" || rem == nil || rem["estimated_runs"].(float64) < 1 || !strings.Contains(r.stderr, "stopped early") {
			t.Fatalf("run %d: exit %d, summary %v, stderr %s", i+1, r.code, sum, r.stderr)
		}
		if int(sum["fetched"].(float64)) > 4 {
			t.Fatalf("run %d fetched %v, over the budget", i+1, sum["fetched"])
		}
		t.Logf("run %d: fetched %v, remaining %v", i+1, sum["fetched"], rem)
	}
	if n := len(runs); n != 3 || runs[0]["remaining"].(map[string]any)["estimated_runs"].(float64) != 2 {
		t.Errorf("%d runs (want 3: 4+4+2 messages), first estimate %v", n, runs[0]["remaining"])
	}
	if runs[len(runs)-1]["outcome"] != "ok" {
		t.Errorf("last run: %v", runs[len(runs)-1])
	}
	archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)

	r := mailkeep(t, nil, "backup", "--max-bytes-per-run", "-5", "--imap", url, "--archive", dir)
	if r.code != 2 {
		t.Errorf("negative budget: exit %d %s", r.code, r.stderr)
	}
}
