package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
	"github.com/mailkeep/mailkeep/provlimit"
	"golang.org/x/sync/errgroup"
)

// runSummary is the --json output of a backup of configured accounts
// (documented in README.md).
type runSummary struct {
	Command  string    `json:"command"`
	Config   string    `json:"config"`
	Outcome  string    `json:"outcome"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Accounts []summary `json:"accounts"`
}

// backupConfigured backs up the accounts named on the command line, or all
// of them, from the configuration file. One account's failure never stops
// the others.
func backupConfigured(ctx context.Context, fs *flag.FlagSet, cf configFlag, com common, pf pop3Flags, parallel int, shard shardFlag, metricsFile, metricsPush string, stdout, stderr io.Writer, log *slog.Logger) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailkeep backup:", err)
		if com.jsonOut {
			writeJSON(stdout, runSummary{Command: "backup", Config: cf.path, Outcome: "failed", Accounts: []summary{}})
		}
		return exitCode(err)
	}
	// Flags that describe one account belong in the config file.
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "archive", "format", "folder", "exclude", "connections", "tls", "ca-file", "password-file", "password-command", "delete", "keep-days", "no-uidl", "max-bytes-per-run", "max-messages-per-run", "gmail":
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return fail(usageErr("%v describe one account: set them in the config file, or back up a single account with --imap/--pop3 URL --archive DIR", bad))
	}
	cfg, accts, err := cf.accounts(fs.Args(), stderr)
	if err != nil {
		return fail(err)
	}
	// With --shard, this run owns the shard's accounts: only those are
	// backed up and only those go into its metrics (another shard's
	// archives may be on another volume).
	configured := cfg.Accounts
	if shard.n != 0 {
		if accts, err = shard.shardSelect(accts, fs.NArg() > 0); err != nil {
			return fail(err)
		}
		configured, _ = shard.shardSelect(cfg.Accounts, false)
		log.Info("shard", "shard", shard.String(), "accounts", len(configured), "configured", len(cfg.Accounts))
		if len(accts) == 0 && !com.quiet {
			fmt.Fprintf(stderr, "mailkeep backup: shard %s has none of the %d configured accounts\n", shard.String(), len(cfg.Accounts))
		}
	}
	if parallel == 0 {
		parallel = cfg.Parallel
	}
	if parallel < 1 {
		return fail(usageErr("--parallel must be at least 1"))
	}
	if metricsFile == "" {
		metricsFile = cfg.MetricsFile
	}

	start := time.Now()
	bar := progress.New(stderr, "backup", com.quiet)
	totals := &plannedTotals{line: bar}
	sums := make([]summary, len(accts))
	codes := make([]int, len(accts))
	var outMu sync.Mutex // one account's report at a time on stderr
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, a := range accts {
		g.Go(func() error {
			if ctx.Err() != nil {
				sums[i] = summary{Command: "backup", Name: a.Name, Archive: a.Archive, Outcome: "interrupted", Error: "interrupted before it started", Failures: []string{}}
				codes[i] = exitInterrupted
				return nil
			}
			job := configJob(a, pf.dryRun)
			prog := backupProgress{add: func(folder string, n int, bytes int64) { bar.Add(a.Name+": "+folder, n, bytes) }, planned: totals.add}
			sum, err := runBackup(ctx, job, stdout, log, prog)
			if sum.Account == "" && err != nil {
				sum.Outcome, sum.Error = "failed", err.Error()
				if ctx.Err() != nil {
					sum.Outcome = "interrupted"
				}
			}
			outMu.Lock()
			bar.Done()
			codes[i] = reportBackup(ctx, sum, err, stderr, com.quiet)
			outMu.Unlock()
			sums[i] = sum
			return nil
		})
	}
	g.Wait()
	bar.Done()

	rs := runSummary{Command: "backup", Config: cfg.Path, Started: start.UTC(), Seconds: time.Since(start).Seconds(), Accounts: sums}
	code := combine(codes)
	rs.Outcome = map[int]string{exitOK: "ok", exitInterrupted: "interrupted", exitPartial: "partial"}[code]
	if rs.Outcome == "" {
		rs.Outcome = "failed"
	}
	if len(accts) > 1 && code != exitOK {
		var failed []string
		for i, s := range sums {
			if codes[i] != exitOK {
				failed = append(failed, s.Name+" ("+s.Outcome+")")
			}
		}
		fmt.Fprintf(stderr, "mailkeep backup: %d of %d accounts not ok: %v\n", len(failed), len(accts), failed)
	}
	if com.jsonOut {
		writeJSON(stdout, rs)
	}
	if merr := writeMetrics(ctx, metricsFile, sums, notRun(configured, accts), log); merr != nil {
		fmt.Fprintln(stderr, "mailkeep backup:", merr)
		if code == exitOK {
			code = exitFailed
		}
	}
	if perr := pushMetrics(ctx, metricsPush, shard, sums, notRun(configured, accts), log); perr != nil {
		fmt.Fprintln(stderr, "mailkeep backup:", perr)
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

// configJob turns a configured account into a backup job.
func configJob(a config.Account, dryRun bool) backupJob {
	job := backupJob{
		name: a.Name, dir: a.Archive, format: archive.Format(a.Format), level: a.CompressionLevel,
		folders: a.Folders, exclude: a.Exclude, conns: a.Connections,
		budget:  provlimit.Budget{MaxBytes: a.MaxBytesPerRun, MaxMessages: a.MaxMessagesPerRun},
		noGmail: a.Gmail != nil && !*a.Gmail,
		server:  func(ctx context.Context) (account.Server, imapconn.Config, error) { return accountServer(ctx, a) },
	}
	if a.POP3 != "" {
		job.pop3 = pop3Flags{del: a.Delete, keepDays: a.KeepDays, noUIDL: a.NoUIDL, dryRun: dryRun}
	}
	return job
}

// combine is the exit code of a run over several accounts: every account's
// own code when they agree, 3 (partial) when some did better than others.
func combine(codes []int) int {
	if len(codes) == 0 {
		return exitOK
	}
	first, same, interrupted := codes[0], true, false
	for _, c := range codes {
		same = same && c == first
		interrupted = interrupted || c == exitInterrupted
	}
	switch {
	case interrupted:
		return exitInterrupted
	case same:
		return first
	}
	return exitPartial
}

// notRun lists the configured accounts that are not in ran.
func notRun(all, ran []config.Account) []config.Account {
	done := map[string]bool{}
	for _, a := range ran {
		done[a.Name] = true
	}
	var out []config.Account
	for _, a := range all {
		if !done[a.Name] {
			out = append(out, a)
		}
	}
	return out
}
