package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
	"github.com/mailkeep/mailkeep/provlimit"
)

// connFlags are the server connection flags backup and restore share.
type connFlags struct {
	imapURL, pop3URL string
	tls              string
	caFile           string
	timeout          time.Duration
	pw               account.PasswordSource
}

func (c *connFlags) register(fsys interface {
	StringVar(*string, string, string, string)
	Var(flag.Value, string, string)
}, pop3 bool) {
	fsys.StringVar(&c.imapURL, "imap", "", "IMAP server: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT] (STARTTLS)")
	if pop3 {
		fsys.StringVar(&c.pop3URL, "pop3", "", "POP3 server: pop3s://USER@HOST[:PORT] or pop3://USER@HOST[:PORT] (STLS)")
	}
	fsys.StringVar(&c.tls, "tls", "", "none: allow plaintext (loopback and tests only)")
	fsys.StringVar(&c.caFile, "ca-file", "", "PEM file with an extra CA certificate to trust")
	registerTimeout(fsys, &c.timeout)
	fsys.StringVar(&c.pw.File, "password-file", "", "read the password from this file")
	fsys.StringVar(&c.pw.Command, "password-command", "", "run this shell command and read the password from its output")
}

// server resolves the flags into a parsed URL, TLS settings and password.
func (c *connFlags) server(ctx context.Context) (account.Server, imapconn.Config, error) {
	raw := c.imapURL
	if raw == "" {
		raw = c.pop3URL
	}
	if raw == "" {
		return account.Server{}, imapconn.Config{}, usageErr("give --imap URL or --pop3 URL")
	}
	if c.imapURL != "" && c.pop3URL != "" {
		return account.Server{}, imapconn.Config{}, usageErr("give --imap or --pop3, not both")
	}
	s, err := account.ParseURL(raw, c.tls)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	if (c.imapURL != "") != (s.Protocol == account.IMAP) {
		return s, imapconn.Config{}, usageErr("URL scheme %q does not match the flag", raw)
	}
	tc, err := account.TLSConfig(s.Host, c.caFile)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	if err := validTimeout(c.timeout); err != nil {
		return s, imapconn.Config{}, err
	}
	pw, err := c.pw.Password(ctx)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	cfg := imapconn.Config{Addr: s.Addr, TLS: s.TLS, TLSConfig: tc, User: s.User, Password: pw, Timeout: c.timeout}
	return s, cfg, nil
}

// summary is the --json output of backup (documented in README.md).
type summary struct {
	Command     string     `json:"command"`
	Name        string     `json:"name,omitempty"`
	Account     string     `json:"account"`
	Protocol    string     `json:"protocol,omitempty"`
	Archive     string     `json:"archive"`
	Run         int64      `json:"run"`
	Outcome     string     `json:"outcome"`
	Started     time.Time  `json:"started"`
	Seconds     float64    `json:"seconds"`
	Folders     int        `json:"folders"`
	Unchanged   int        `json:"unchanged_folders"`
	Fetched     int        `json:"fetched"`
	Bytes       int64      `json:"bytes"`
	FlagChanges int        `json:"flag_changes"`
	Expunged    int        `json:"expunged"`
	Rekeyed     int        `json:"rekeyed"`
	Deleted     int        `json:"deleted,omitempty"`
	Failures    []string   `json:"failures"`
	Error       string     `json:"error,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	// Stopped says why the run stopped early (a provider's daily limit, the
	// run budget); Remaining what the next runs still have to fetch.
	Stopped   string               `json:"stopped,omitempty"`
	Remaining *provlimit.Remaining `json:"remaining,omitempty"`
}

// backupJob is one account to back up: from the command line or from the
// configuration file.
type backupJob struct {
	name             string // config account name; "" from the command line
	dir              string
	format           archive.Format
	level            int // --compression-level, config compression_level
	folders, exclude []string
	conns            int
	pop3             pop3Flags
	index            bool             // update the search index after the backup (--index)
	budget           provlimit.Budget // max_bytes_per_run, max_messages_per_run
	noGmail          bool             // gmail = false, --gmail=false
	// server resolves the connection settings (reads the password).
	server func(ctx context.Context) (account.Server, imapconn.Config, error)
}

// backupOpts are backup's options.
type backupOpts struct {
	stdout, stderr           io.Writer
	fs                       *flag.FlagSet
	cf                       connFlags
	cfgFlag                  configFlag
	com                      common
	dir, format, metricsFile string
	folders, exclude         stringsFlag
	conns, parallel, level   int
	pf                       pop3Flags
	index                    bool
	shard                    shardFlag
	metricsPush              string
	budget                   provlimit.Budget
	gmail                    bool
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "backup", &backupOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *backupOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cf.register(fs, true)
	o.cfgFlag.register(fs)
	o.com.register(fs)
	o.pf.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory (one per account)")
	fs.StringVar(&o.format, "format", "", "archive format for a new archive: mbox.zst (default), mbox.gz, mbox, maildir")
	fs.IntVar(&o.level, "compression-level", 0, "zstd level 1-22 (-1: fastest, raw literals) or gzip -3 to 9 for new frames; 0: the default (zstd fastest)")
	fs.Var(&o.folders, "folder", "back up only folders matching this glob (repeatable)")
	fs.Var(&o.exclude, "exclude", "skip folders matching this glob (repeatable)")
	connectionsVar(fs, &o.conns)
	fs.IntVar(&o.parallel, "parallel", 0, "accounts backed up at once (config mode; default: the config's parallel, 2)")
	fs.Var(&o.shard, "shard", "back up only the configured accounts of shard K of N (K/N; an account's shard is a hash of its name)")
	fs.StringVar(&o.metricsPush, "metrics-push", "", "after the run, push the metrics to this Prometheus Pushgateway URL (config mode)")
	fs.StringVar(&o.metricsFile, "metrics-file", "", "write Prometheus textfile metrics here after the run")
	fs.BoolVar(&o.index, "index", false, "update the search index after the backup (always done once the archive has one)")
	budgetVars(fs, &o.budget)
	gmailVar(fs, &o.gmail)
}

func (o *backupOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs backup and returns its exit code; it reports its failures itself.
func (o *backupOpts) exec(ctx context.Context) int {
	log := o.com.logger(o.stderr)
	if o.cf.imapURL == "" && o.cf.pop3URL == "" {
		return backupConfigured(ctx, o.fs, o.cfgFlag, o.com, o.pf, o.parallel, o.shard, o.metricsFile, o.metricsPush, o.stdout, o.stderr, log)
	}
	fail := func(err error) int {
		fmt.Fprintln(o.stderr, "mailkeep backup:", err)
		if o.com.jsonOut {
			writeJSON(o.stdout, summary{Command: "backup", Archive: o.dir, Outcome: "failed", Error: err.Error(), Failures: []string{}})
		}
		return exitCode(err)
	}
	if o.fs.NArg() > 0 {
		return fail(usageErr("unexpected arguments %q (account names come from the config file; drop --imap/--pop3 to use it)", o.fs.Args()))
	}
	if o.cfgFlag.path != "" || o.parallel != 0 || o.shard.n != 0 || o.metricsPush != "" {
		return fail(usageErr("--config, --parallel, --shard and --metrics-push work on configured accounts; do not combine them with --imap/--pop3"))
	}
	if o.dir == "" {
		return fail(usageErr("--archive DIR is required"))
	}
	var fmtOpt archive.Format
	if o.format != "" {
		f, err := archive.ParseFormat(o.format)
		if err != nil {
			return fail(usageError{err})
		}
		fmtOpt = f
	}
	job := backupJob{dir: o.dir, format: fmtOpt, level: o.level, folders: o.folders, exclude: o.exclude, conns: o.conns, pop3: o.pf, server: o.cf.server, index: o.index, budget: o.budget, noGmail: !o.gmail}
	bar := progress.New(o.stderr, "backup", o.com.quiet)
	totals := &plannedTotals{line: bar}
	sum, err := runBackup(ctx, job, o.stdout, log, backupProgress{add: bar.Add, planned: totals.add})
	bar.Done()
	if sum.Account == "" && err != nil { // nothing started
		code := fail(err)
		if merr := writeMetrics(ctx, o.metricsFile, []summary{sum}, nil, log); merr != nil {
			fmt.Fprintln(o.stderr, "mailkeep backup:", merr)
		}
		return code
	}
	code := reportBackup(ctx, sum, err, o.stderr, o.com.quiet)
	if o.com.jsonOut {
		writeJSON(o.stdout, sum)
	}
	if merr := writeMetrics(ctx, o.metricsFile, []summary{sum}, nil, log); merr != nil && code == exitOK {
		fmt.Fprintln(o.stderr, "mailkeep backup:", merr)
		code = exitFailed
	}
	return code
}

// runBackup backs up one account. A returned error means the run as a whole
// failed (the summary says so too); failures of single folders or messages
// are in the summary.
func runBackup(ctx context.Context, job backupJob, stdout io.Writer, log *slog.Logger, prog backupProgress) (summary, error) {
	sum := summary{Command: "backup", Name: job.name, Archive: job.dir, Started: time.Now().UTC(), Failures: []string{}}
	srv, cfg, err := job.server(ctx)
	if err != nil {
		return sum, err
	}
	if srv.Protocol == account.IMAP && job.pop3.any() {
		return sum, usageErr("--delete, --keep-days, --dry-run and --no-uidl are POP3 options")
	}
	live := &liveIndex{} // the search index follows the backup's commits
	a, err := archive.Open(job.dir, archive.Options{Format: job.format, CompressionLevel: job.level, OnCommit: live.onCommit, Extract: live.extract})
	if err != nil {
		return sum, err
	}
	defer a.Close()
	source := string(srv.Protocol) + ":" + srv.User + "@" + srv.Host
	bound, err := checkSource(ctx, a, source)
	if err != nil {
		return sum, err
	}
	start := time.Now()
	run, err := a.Cat.BeginRun(ctx, "backup", srv.String(), start)
	if err != nil {
		return sum, err
	}
	sum.Account, sum.Run, sum.Protocol = srv.String(), run, string(srv.Protocol)
	if job.name != "" {
		log = log.With("account", job.name)
	}
	live.start(ctx, a, job.index, log)
	defer live.finish(ctx) // an early return still closes the index
	prefix := ""
	if job.name != "" {
		prefix = job.name + ": "
	}
	src := newSource(srv, cfg, sourceSettings{folders: job.folders, exclude: job.exclude, conns: job.conns, budget: job.budget,
		noGmail: job.noGmail, pop3: job.pop3, log: log, prog: prog, stdout: stdout, prefix: prefix})
	st, err := src.backup(ctx, a, run)
	sum.Seconds = time.Since(start).Seconds()
	sum.Folders, sum.Unchanged, sum.Fetched, sum.Bytes = st.Folders, st.Unchanged, st.Fetched, st.Bytes
	sum.FlagChanges, sum.Expunged, sum.Rekeyed, sum.Deleted = st.FlagChanges, st.Expunged, st.Rekeyed, st.Deleted
	for _, f := range st.Failures {
		sum.Failures = append(sum.Failures, f.Error())
	}
	stoppedSummary(&sum, st)
	if !bound && (err == nil || st.Folders > 0) {
		// Bind the archive to the account only once a run has logged in
		// (it listed folders): a typo in the host or user, or a wrong
		// password, must not lock the directory to that account.
		if berr := a.Cat.SetMeta(context.WithoutCancel(ctx), "source", source); berr != nil && err == nil {
			err = berr
		}
	}
	sum.Outcome, sum.Error, _ = outcome(ctx, err, len(st.Failures))
	rec := catalog.Run{ID: run, Ended: time.Now(), Outcome: sum.Outcome, Fetched: st.Fetched, Bytes: st.Bytes,
		FlagChanges: st.FlagChanges, Expunged: st.Expunged, Rekeyed: st.Rekeyed, Deleted: st.Deleted, Failed: len(st.Failures), Error: sum.Error}
	if eerr := a.Cat.EndRun(context.WithoutCancel(ctx), rec); eerr != nil && err == nil {
		err = eerr
		sum.Outcome, sum.Error = "failed", eerr.Error()
	}
	sum.LastSuccess = lastSuccess(context.WithoutCancel(ctx), a.Cat)
	live.finish(ctx)
	return sum, err
}

// lastSuccess is when the archive's newest ok backup started.
func lastSuccess(ctx context.Context, c *catalog.Catalog) *time.Time {
	runs, err := c.Runs(ctx)
	if err != nil {
		return nil
	}
	var last *time.Time
	for _, r := range runs {
		if r.Kind == "backup" && r.Outcome == "ok" && (last == nil || r.Started.After(*last)) {
			t := r.Started.UTC()
			last = &t
		}
	}
	return last
}

// reportBackup prints an account's failures and summary line on stderr and
// returns its exit code.
func reportBackup(ctx context.Context, sum summary, err error, stderr io.Writer, quiet bool) int {
	name := sum.Account
	if sum.Name != "" {
		name = sum.Name
	}
	cmd := "backup"
	if sum.Name != "" {
		cmd = "backup " + sum.Name
	}
	if sum.Account == "" { // failed before it could start
		if err != nil {
			fmt.Fprintf(stderr, "mailkeep %s: %v\n", cmd, err)
		}
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitCode(err)
	}
	_, _, code := outcome(ctx, err, len(sum.Failures))
	if err == nil && sum.Outcome == "failed" {
		code = exitFailed
	}
	printFailures(stderr, cmd, sum.Failures, err)
	if !quiet || code != exitOK {
		fmt.Fprintf(stderr, "mailkeep backup %s: %s, %d folders (%d unchanged), %d new messages (%.1f MB), %d flag changes, %d expunged, %d failures, %.1fs%s\n",
			name, sum.Outcome, sum.Folders, sum.Unchanged, sum.Fetched, float64(sum.Bytes)/1e6, sum.FlagChanges, sum.Expunged, len(sum.Failures), sum.Seconds, archiveNote(sum.Archive))
		printRemaining(stderr, name, sum)
	}
	return code
}

// checkSource refuses to mix two accounts in one archive. An account is
// its protocol, user and host: changing port or TLS mode is fine. It
// reports whether the archive is bound to an account yet; runBackup binds
// it after the first run that logged in.
func checkSource(ctx context.Context, a *archive.Archive, src string) (bound bool, err error) {
	have, err := a.Cat.Meta(ctx, "source")
	if err != nil {
		return false, err
	}
	if have == "" {
		return false, nil
	}
	if have != src {
		return true, usageErr("archive %s belongs to %s, not %s: use one archive directory per account", a.Dir, have, src)
	}
	return true, nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func isLocked(err error) bool { return errors.Is(err, archive.ErrLocked) }
