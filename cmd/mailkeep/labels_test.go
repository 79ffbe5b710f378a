package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
)

// gmailArchive writes an archive as the Gmail backup stores one: All Mail
// with two messages and their labels.
func gmailArchive(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gmail")
	a, err := archive.Open(dir, archive.Options{Format: archive.MboxZstd})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	run, _ := a.Cat.BeginRun(ctx, "backup", "imaps://u@imap.gmail.com", time.Now())
	f, err := a.Folder(ctx, "[Gmail]/All Mail", '/', `\All`)
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.NewWriter(ctx, f, run)
	if err != nil {
		t.Fatal(err)
	}
	var metas []catalog.GmailMeta
	for i, labels := range [][]string{{`\Inbox`, "Work", "Famille/Enfants é"}, {`\Starred`}} {
		body := "Message-ID: <cli" + string(rune('a'+i)) + "@labels>\r\nSubject: cli\r\n\r\nbody\r\n"
		m, err := w.Add(&archive.Incoming{UIDValidity: 1, UID: uint32(i + 1), InternalDate: time.Date(2014, 1, 1, 0, i, 0, 0, time.UTC)}, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		metas = append(metas, catalog.GmailMeta{ID: m.ID, MsgID: uint64(i + 1), Labels: labels})
	}
	if err := a.Cat.SetGmail(ctx, metas); err != nil {
		t.Fatal(err)
	}
	a.Cat.EndRun(ctx, catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
	return dir
}

// TestRestoreGmailLabels: `mailkeep restore` onto Gmail stores each
// message once with its labels (labels_stored in --json); --labels takes
// only its modes; `mailkeep export --labels keywords` writes the labels
// as keywords.
func TestRestoreGmailLabels(t *testing.T) {
	dir := gmailArchive(t)
	g := gmailtest.Start(t, user, pass, gmailtest.Options{})
	r := mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://"+user+"@"+g.Addr, "--tls", "none", "--json")
	var sum restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 {
		t.Fatalf("restore: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if sum.Appended != 2 || sum.LabelsStored != 3 {
		t.Errorf("summary: %+v", sum)
	}
	msgs := g.Messages()
	if len(msgs) != 2 || !slices.Equal(msgs[0].Labels, []string{"Famille/Enfants é", "Work", `\Inbox`}) || !slices.Contains(msgs[1].Flags, `\Flagged`) {
		t.Errorf("on Gmail: %+v", msgs)
	}

	r = mailkeep(t, pwEnv(), "restore", "--archive", dir, "--imap", "imap://"+user+"@"+g.Addr, "--tls", "none", "--labels", "tags")
	if r.code != 2 || !strings.Contains(r.stderr, "--labels") {
		t.Errorf("--labels tags: exit %d\n%s", r.code, r.stderr)
	}

	to := filepath.Join(t.TempDir(), "out")
	if r := mailkeep(t, nil, "export", "--archive", dir, "--to", to, "--format", "mbox", "--labels", "keywords", "--quiet"); r.code != 0 {
		t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(to, "[Gmail]", "All Mail.mbox"))
	if err != nil || !bytes.Contains(b, []byte("X-Keywords: $label-+5CInbox $label-Work $label-Famille/Enfants+20+C3+A9")) {
		t.Errorf("export: %v\n%s", err, b)
	}
}

// TestRestoreGmailDailyUpload: `mailkeep restore` onto Gmail past its
// daily upload limit stops: exit 3 (partial), the summary and --json say
// why, and the next day's rerun restores the rest.
func TestRestoreGmailDailyUpload(t *testing.T) {
	dir := gmailArchive(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// The first message goes (the quota is not reached), the second not.
	g := gmailtest.Start(t, user, pass, gmailtest.Options{DailyUpload: 1, Now: clock})
	args := []string{"restore", "--archive", dir, "--imap", "imap://" + user + "@" + g.Addr, "--tls", "none", "--json", "--connections", "1"}
	r := mailkeep(t, pwEnv(), args...)
	var sum restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 3 {
		t.Fatalf("restore past the limit: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	const why = "stopped: Gmail's daily upload limit; run again after 24 h"
	if sum.Outcome != "partial" || sum.Appended != 1 || !strings.HasPrefix(sum.Stopped, why) || len(sum.Failures) != 1 {
		t.Errorf("summary: %+v", sum)
	}
	if !strings.Contains(r.stderr, "mailkeep restore: "+why) || strings.Contains(r.stderr, "failed: ") || !strings.Contains(r.stderr, "0 failures, stopped early") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if n := len(g.Messages()); n != 1 {
		t.Fatalf("Gmail holds %d messages, want 1", n)
	}
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	r = mailkeep(t, pwEnv(), args...)
	sum = restoreSummary{}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 {
		t.Fatalf("next day: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if sum.Appended != 1 || sum.Skipped != 1 || sum.Stopped != "" || len(g.Messages()) != 2 {
		t.Errorf("next day: %+v; Gmail holds %d", sum, len(g.Messages()))
	}

	// --max-bytes-per-run stops before the limit: one message a run.
	g = gmailtest.Start(t, user, pass, gmailtest.Options{Now: clock})
	args = []string{"restore", "--archive", dir, "--imap", "imap://" + user + "@" + g.Addr, "--tls", "none", "--json", "--max-bytes-per-run", "10"}
	for run, want := range []int{3, 0} {
		r = mailkeep(t, pwEnv(), args...)
		sum = restoreSummary{}
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != want || sum.Appended != 1 {
			t.Fatalf("--max-bytes-per-run, run %d: exit %d, %v, %+v\n%s", run+1, r.code, err, sum, r.stderr)
		}
		if stopped := strings.HasPrefix(sum.Stopped, "stopped: the run's budget is spent"); stopped != (want == 3) {
			t.Errorf("--max-bytes-per-run, run %d: stopped %q", run+1, sum.Stopped)
		}
	}
	if n := len(g.Messages()); n != 2 {
		t.Errorf("--max-bytes-per-run: Gmail holds %d messages, want 2", n)
	}
}
