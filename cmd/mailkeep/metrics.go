package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/metrics"
)

// writeMetrics writes the --metrics-file (nothing when path is ""). sums
// are the accounts this run backed up; others are configured accounts it
// did not run (`mailkeep backup alice` of a three-account config), which
// keep their series, read from their catalogs, so the file always covers
// every configured account.
func writeMetrics(ctx context.Context, path string, sums []summary, others []config.Account, log *slog.Logger) error {
	ctx = context.WithoutCancel(ctx) // written after an interrupted run too
	if path == "" {
		return nil
	}
	return metrics.Write(path, metricsAccounts(ctx, sums, others, log), time.Now())
}

// metricsAccounts describes the accounts that ran (sums) and the others.
func metricsAccounts(ctx context.Context, sums []summary, others []config.Account, log *slog.Logger) []metrics.Account {
	var accts []metrics.Account
	for _, s := range sums {
		accts = append(accts, summaryMetrics(ctx, s, log))
	}
	for _, a := range others {
		m, _ := catalogMetrics(ctx, a.Name, a.Archive, log)
		accts = append(accts, m)
	}
	metrics.Sort(accts)
	return accts
}

// metricsName is an account's label: its config name, or on the command
// line its URL (or archive directory when it failed before connecting).
func metricsName(s summary) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Account != "":
		return s.Account
	}
	return s.Archive
}

// summaryMetrics describes an account that ran now. A run recorded in the
// catalog is described from there, like the accounts that did not run; a
// run that failed before it reached its catalog (no archive yet, no
// password) from its summary.
func summaryMetrics(ctx context.Context, s summary, log *slog.Logger) metrics.Account {
	m, last := catalogMetrics(ctx, metricsName(s), s.Archive, log)
	if s.Started.IsZero() || (s.Run != 0 && last == s.Run) {
		return m
	}
	m.LastRun, m.Outcome = s.Started, s.Outcome
	if m.Outcome == "" {
		m.Outcome = "failed"
	}
	m.Fetched, m.Bytes, m.Failures = s.Fetched, s.Bytes, len(s.Failures)
	m.Duration = time.Duration(s.Seconds * float64(time.Second))
	if s.LastSuccess != nil {
		m.LastSuccess = *s.LastSuccess
	}
	return m
}

// catalogMetrics reads an account's last backup run, last success, size and
// message count from its archive, without locking it (a backup of that
// account may be running in another process). last is the id of the run
// described, 0 for none.
func catalogMetrics(ctx context.Context, name, dir string, log *slog.Logger) (m metrics.Account, last int64) {
	m = metrics.Account{Name: name, ArchiveBytes: -1, Messages: -1}
	if dir == "" {
		return m, 0
	}
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		if !errors.Is(err, archive.ErrNoArchive) {
			log.Warn("metrics: cannot read the archive", "account", name, "archive", dir, "err", err)
		}
		return m, 0
	}
	defer a.Close()
	if n, err := metrics.DirSize(dir); err == nil {
		m.ArchiveBytes = n
	}
	if n, err := a.Cat.MessageCount(context.Background()); err == nil {
		m.Messages = n
	} else {
		m.Messages = -1
	}
	runs, err := a.Cat.Runs(ctx)
	if err != nil {
		log.Warn("metrics: cannot read the runs", "account", name, "archive", dir, "err", err)
		return m, 0
	}
	for _, r := range runs {
		if r.Kind != "backup" || r.Outcome == "" { // still running
			continue
		}
		m.LastRun, m.Outcome, last = r.Started, r.Outcome, r.ID
		m.Fetched, m.Bytes, m.Failures = r.Fetched, r.Bytes, r.Failed
		m.Duration = 0
		if !r.Ended.IsZero() {
			m.Duration = r.Ended.Sub(r.Started)
		}
		if r.Outcome == "ok" {
			m.LastSuccess = r.Started
		}
	}
	return m, last
}
