package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
	"github.com/mailkeep/mailkeep/provlimit"
	"github.com/mailkeep/mailkeep/restore"
	"github.com/mailkeep/mailkeep/restore/archivesrc"
	"github.com/mailkeep/mailkeep/restore/foreignsrc"
)

// restoreSummary is the --json output of restore.
type restoreSummary struct {
	Command         string    `json:"command"`
	Destination     string    `json:"destination"`
	Archive         string    `json:"archive,omitempty"`
	Outcome         string    `json:"outcome"`
	Started         time.Time `json:"started"`
	Seconds         float64   `json:"seconds"`
	DryRun          bool      `json:"dry_run"`
	Folders         int       `json:"folders"`
	Created         int       `json:"created_folders"`
	Appended        int       `json:"appended"`
	Skipped         int       `json:"skipped"`
	Damaged         int       `json:"damaged"`
	KeywordsDropped int       `json:"keywords_dropped"`
	Bytes           int64     `json:"bytes"`
	Failures        []string  `json:"failures"`
	Error           string    `json:"error,omitempty"`

	// Missing: recorded as restored but not on the destination, so
	// restored again (counted in Appended too).
	Missing             int  `json:"missing_from_destination"`
	ProgressNotRecorded bool `json:"progress_not_recorded"`
	// Renamed: folders --rename-collisions moved apart.
	Renamed []restore.Renamed `json:"renamed,omitempty"`
	// TooBig: messages skipped because the destination takes none that
	// large (APPENDLIMIT, TOOBIG, Microsoft's size limit); not failures.
	TooBig []restore.TooBig `json:"too_big,omitempty"`
	// FolderReports: per folder appended to, what the destination kept.
	FolderReports []restore.FolderReport `json:"folder_reports"`
	// Gmail labels onto Gmail (restore_labels.go).
	LabelsStored  int                    `json:"labels_stored"`
	LabelsRefused []restore.LabelRefusal `json:"labels_refused,omitempty"`
	// Stopped: the destination's daily limit (Gmail's upload limit) or
	// --max-bytes-per-run stopped the restore; outcome partial, a rerun
	// resumes. Also in Failures.
	Stopped string `json:"stopped,omitempty"`
}

// nopProgress is the progress record of a foreign restore, which has no
// catalog: a rerun relies on the destination check (Message-ID, size, date).
type nopProgress struct{}

func (nopProgress) IsRestored(context.Context, restore.Destination, string) (bool, error) {
	return false, nil
}
func (nopProgress) MarkRestored(context.Context, restore.Destination, string, restore.Restored) error {
	return nil
}

// restoreFlags are restore's options.
type restoreFlags struct {
	cf                                       connFlags
	com                                      common
	dir, prefix, asOf, fromMbox, fromMaildir string
	folders, exclude                         stringsFlag
	conns                                    int
	dryRun, inclExpunged, noSpecial          bool
	renameColl, verify                       bool
	budget                                   provlimit.Budget
	cfgFlag                                  configFlag
	acctName                                 string
	labels                                   string
}

func (f *restoreFlags) register(fs *flag.FlagSet) {
	f.cf.register(fs, false)
	f.cfgFlag.register(fs)
	f.com.register(fs)
	fs.StringVar(&f.acctName, "account", "", "restore to this account of the config file (its server and login, OAuth2 included); the archive defaults to the account's own")
	fs.StringVar(&f.dir, "archive", "", "archive directory to restore from")
	fs.StringVar(&f.fromMbox, "from-mbox", "", "restore a foreign mbox file (Takeout, Thunderbird) into --folder")
	fs.StringVar(&f.fromMaildir, "from-maildir", "", "restore a foreign Maildir folder into --folder")
	fs.Var(&f.folders, "folder", "restore only folders matching this glob (repeatable); with --from-mbox/--from-maildir: the destination folder")
	fs.Var(&f.exclude, "exclude", "skip folders matching this glob (repeatable)")
	fs.StringVar(&f.prefix, "prefix", "", "restore under this folder (e.g. Restored/2026)")
	fs.StringVar(&f.asOf, "as-of", "", "restore the mailbox as it was at this time (2026-10-01 or RFC 3339)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "show what would be created and appended; change nothing")
	fs.BoolVar(&f.inclExpunged, "include-expunged", false, "also restore messages expunged on the server")
	fs.BoolVar(&f.noSpecial, "no-special-use", false, "do not map Sent/Drafts/Trash/Junk/Archive to the destination's special-use folders")
	connectionsVar(fs, &f.conns)
	fs.BoolVar(&f.verify, "verify", false, "fetch every appended message back and compare it (SHA-256, size, flags, keywords, INTERNALDATE); say per folder what arrived exact, altered (and how) or refused")
	registerLabels(fs, &f.labels)
	restoreBudgetVars(fs, &f.budget)
	fs.BoolVar(&f.renameColl, "rename-collisions", false, `restore source folders that would land in one destination folder apart, adding " (2)", " (3)", ... to the later ones' names (without it such a restore is refused)`)
}

// restoreRun is one restore under way: what the steps share.
type restoreRun struct {
	f      *restoreFlags
	fs     *flag.FlagSet
	stdout io.Writer
	stderr io.Writer
	start  time.Time
	sum    restoreSummary
	srv    account.Server
	cfg    imapconn.Config
	a      *archive.Archive // nil for a foreign source
	run    int64            // the catalog's run, 0 when not recorded
	totalN int              // messages and bytes the source holds (progress)
	totalB int64
}

// restoreOpts are restore's options: its flags and where it writes.
type restoreOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	f              restoreFlags
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "restore", &restoreOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *restoreOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.f.register(fs)
}

func (o *restoreOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs restore and returns its exit code; it reports its failures
// itself (stderr, and the --json summary).
func (o *restoreOpts) exec(ctx context.Context) int {
	f, fs := &o.f, o.fs
	r := &restoreRun{f: f, fs: fs, stdout: o.stdout, stderr: o.stderr, start: time.Now()}
	r.sum = restoreSummary{Command: "restore", Archive: f.dir, Started: r.start.UTC(), DryRun: f.dryRun, Failures: []string{}}
	if fs.NArg() > 0 {
		return r.fail(usageErr("unexpected arguments %q", fs.Args()))
	}
	acct, err := r.resolveAccount()
	if err != nil {
		return r.fail(err)
	}
	when, err := f.checkSources()
	if err == nil {
		err = checkLabels(f.labels)
	}
	if err != nil {
		return r.fail(err)
	}
	if err := r.connectSettings(ctx, acct); err != nil {
		return r.fail(err)
	}
	src, prog, err := r.openSource(ctx, when)
	if r.a != nil {
		defer r.a.Close()
	}
	if err != nil {
		return r.fail(err)
	}
	st, err := r.restore(ctx, src, prog)
	return r.finish(ctx, st, err)
}

// fail reports an error that ended the restore before it started.
func (r *restoreRun) fail(err error) int {
	fmt.Fprintln(r.stderr, "mailkeep restore:", err)
	if r.f.com.jsonOut {
		r.sum.Outcome, r.sum.Error = "failed", err.Error()
		writeJSON(r.stdout, r.sum)
	}
	return exitCode(err)
}

// resolveAccount resolves --account NAME (the destination, and the
// archive unless one is given); nil without --account.
func (r *restoreRun) resolveAccount() (*config.Account, error) {
	f := r.f
	if f.acctName == "" {
		if f.cfgFlag.path != "" {
			return nil, usageErr("--config goes with --account NAME")
		}
		return nil, nil
	}
	a, err := restoreAccount(r.fs, f.cfgFlag, f.acctName, r.stderr)
	if err != nil {
		return nil, err
	}
	if f.dir == "" && f.fromMbox == "" && f.fromMaildir == "" {
		f.dir, r.sum.Archive = a.Archive, a.Archive
	}
	return &a, nil
}

// checkSources checks that exactly one source is given and parses --as-of.
func (f *restoreFlags) checkSources() (time.Time, error) {
	sources := 0
	for _, s := range []string{f.dir, f.fromMbox, f.fromMaildir} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return time.Time{}, usageErr("give exactly one of --archive DIR, --from-mbox FILE, --from-maildir DIR")
	}
	if f.fromMbox != "" || f.fromMaildir != "" {
		if len(f.folders) != 1 {
			return time.Time{}, usageErr("--from-mbox and --from-maildir need exactly one --folder NAME (the destination folder)")
		}
	}
	if f.asOf == "" {
		return time.Time{}, nil
	}
	t, err := parseWhen(f.asOf)
	if err != nil {
		return time.Time{}, usageError{err}
	}
	return t, nil
}

// connectSettings resolves the destination server and login, from the
// account or the command line.
func (r *restoreRun) connectSettings(ctx context.Context, acct *config.Account) error {
	server := r.f.cf.server
	if acct != nil {
		server = func(ctx context.Context) (account.Server, imapconn.Config, error) { return accountServer(ctx, *acct) }
	}
	srv, cfg, err := server(ctx)
	if err != nil {
		return err
	}
	r.srv, r.cfg = srv, cfg
	r.sum.Destination = srv.String()
	return nil
}

// openSource opens the archive (recording the run unless the medium is
// read-only) or the foreign mbox or Maildir.
func (r *restoreRun) openSource(ctx context.Context, when time.Time) (restore.Source, restore.Progress, error) {
	f := r.f
	if f.dir == "" {
		if f.fromMbox != "" {
			return &foreignsrc.Mbox{Path: f.fromMbox, Folder: f.folders[0]}, nopProgress{}, nil
		}
		return &foreignsrc.Maildir{Path: f.fromMaildir, Folder: f.folders[0]}, nopProgress{}, nil
	}
	// An archive on read-only media is restored without a progress
	// record: the destination check tells a rerun what is there.
	readOnly := !writableDir(f.dir)
	a, err := archive.Open(f.dir, archive.Options{MustExist: true, ReadOnly: readOnly})
	if err != nil {
		return nil, nil, err
	}
	r.a = a
	if readOnly {
		r.sum.ProgressNotRecorded = true
	} else if r.run, err = a.Cat.BeginRun(ctx, "restore", r.srv.String(), r.start); err != nil {
		return nil, nil, err
	}
	as, err := archivesrc.New(ctx, a, r.run, archivesrc.Options{IncludeExpunged: f.inclExpunged, AsOf: when})
	if err != nil {
		return nil, nil, err
	}
	r.totalN, r.totalB = archiveTotals(ctx, a, f.folders, f.exclude, f.inclExpunged)
	return as, as, nil
}

// restore runs the restore with a progress line and names on stderr what
// the destination did not keep as given.
func (r *restoreRun) restore(ctx context.Context, src restore.Source, prog restore.Progress) (restore.Stats, error) {
	f := r.f
	opt := restore.Options{Folders: f.folders, Exclude: f.exclude, Prefix: f.prefix, NoSpecialUse: f.noSpecial, RenameCollisions: f.renameColl, Verify: f.verify, DryRun: f.dryRun, Connections: f.conns, Logger: f.com.logger(r.stderr),
		DialRaw:    func(ctx context.Context) (restore.AppendConn, error) { return imapconn.DialRaw(ctx, r.cfg) },
		Labels:     f.labels,
		Budget:     f.budget,
		DialLabels: func(ctx context.Context) (restore.LabelConn, error) { return imapconn.DialRaw(ctx, r.cfg) }}
	if r.a == nil {
		opt.Folders = nil // --folder named the destination
	}
	if f.dryRun {
		opt.DryRunOutput = r.stdout
	}
	bar := progress.New(r.stderr, "restore", f.com.quiet)
	bar.SetTotal(r.totalN, r.totalB)
	opt.Progress = func(ev restore.Event) { bar.Add(ev.Folder, 1, ev.Bytes) }
	if r.totalN > 0 {
		// Label folders' copies (--labels folders) are not in the archive's count.
		opt.Planned = func(n int, b int64) { bar.SetTotal(r.totalN+n, r.totalB+b) }
	}
	dial := func(ctx context.Context) (*imapclient.Client, error) { return imapconn.Dial(ctx, r.cfg) }
	st, err := restore.Run(ctx, dial, restore.Destination{Server: r.srv.Addr, User: r.srv.User}, src, prog, opt)
	bar.Done()
	for _, fr := range st.Reports {
		if fr.Noteworthy() {
			fmt.Fprintf(r.stderr, "mailkeep restore: %s\n", fr.String())
		}
	}
	for _, rn := range st.Renamed {
		fmt.Fprintf(r.stderr, "mailkeep restore: folder %q restored as %q (%q was taken by another folder)\n", rn.Folder, rn.Dest, rn.Instead)
	}
	return st, err
}

// finish fills the summary, records the run's end in the catalog and
// prints the failures, the --json summary and the one-line summary.
func (r *restoreRun) finish(ctx context.Context, st restore.Stats, err error) int {
	sum := &r.sum
	sum.Renamed = st.Renamed
	sum.FolderReports = st.Reports
	if sum.FolderReports == nil {
		sum.FolderReports = []restore.FolderReport{}
	}
	sum.Seconds = time.Since(r.start).Seconds()
	sum.Folders, sum.Created, sum.Appended, sum.Skipped, sum.Damaged, sum.KeywordsDropped, sum.Bytes, sum.Missing =
		st.Folders, st.Created, st.Appended, st.Skipped, st.Damaged, st.KeywordsDropped, st.Bytes, st.Missing
	if r.a != nil && (sum.ProgressNotRecorded || st.ProgressNotRecorded) {
		sum.ProgressNotRecorded = true
		fmt.Fprintf(r.stderr, "mailkeep restore: archive %s is read-only: restore progress was not recorded (a rerun checks the destination instead)\n", r.f.dir)
	}
	var failed []string // printed as failures: all but the stop
	for _, f := range st.Failures {
		sum.Failures = append(sum.Failures, f.Error())
		if !errors.Is(f, st.Stopped) {
			failed = append(failed, f.Error())
		}
	}
	if st.Stopped != nil {
		sum.Stopped = st.Stopped.Error()
	}
	var code int
	sum.Outcome, sum.Error, code = outcome(ctx, err, len(st.Failures))
	if errors.Is(err, restore.ErrCollision) {
		code = exitUsage // nothing was restored: choose a mapping
	}
	if r.a != nil && r.run != 0 {
		rec := catalog.Run{ID: r.run, Ended: time.Now(), Outcome: sum.Outcome, Fetched: st.Appended, Bytes: st.Bytes, Failed: len(st.Failures), Error: sum.Error}
		if eerr := r.a.Cat.EndRun(context.WithoutCancel(ctx), rec); eerr != nil && err == nil {
			err, code = eerr, exitFailed
		}
	}
	printFailures(r.stderr, "restore", failed, err)
	if st.Stopped != nil {
		fmt.Fprintf(r.stderr, "mailkeep restore: %v\n", st.Stopped)
	}
	reportLabels(r.stderr, sum, st)
	sum.TooBig = st.TooBig
	for _, tb := range st.TooBig {
		fmt.Fprintf(r.stderr, "mailkeep restore: %s\n", tb)
	}
	if r.f.com.jsonOut {
		writeJSON(r.stdout, sum)
	}
	if !r.f.com.quiet || code != exitOK {
		r.printSummary(code)
	}
	return code
}

// printSummary prints the one-line summary, naming the source archive.
func (r *restoreRun) printSummary(code int) {
	sum := &r.sum
	verb := "appended"
	if r.f.dryRun {
		verb = "would append"
	}
	missing := ""
	if sum.Missing > 0 {
		missing = fmt.Sprintf(" (%d of them recorded as restored but missing from the destination)", sum.Missing)
	}
	from := r.f.dir
	if from == "" {
		from = r.f.fromMbox + r.f.fromMaildir
	}
	failures, stopped := len(sum.Failures), ""
	if sum.Stopped != "" {
		failures, stopped = failures-1, ", stopped early" // the stop is one of the failures
	}
	fmt.Fprintf(r.stderr, "mailkeep restore to %s: %s, %d folders (%d created), %s %d messages%s (%.1f MB), %d already there, %d damaged, %d failures%s, %.1fs, from %s\n",
		r.srv, sum.Outcome, sum.Folders, sum.Created, verb, sum.Appended, missing, float64(sum.Bytes)/1e6, sum.Skipped, sum.Damaged, failures, stopped, sum.Seconds, from)
}

// restoreAccount resolves --account NAME: an IMAP account of the config
// file, whose connection settings replace the command line's.
func restoreAccount(fs *flag.FlagSet, cf configFlag, name string, stderr io.Writer) (config.Account, error) {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "imap", "tls", "ca-file", "password-file", "password-command":
			set = append(set, "--"+f.Name)
		}
	})
	if len(set) > 0 {
		return config.Account{}, usageErr("%v describe the destination: with --account they come from the config file", set)
	}
	_, accts, err := cf.accounts([]string{name}, stderr)
	if err != nil {
		return config.Account{}, err
	}
	if accts[0].IMAP == "" {
		return config.Account{}, usageErr("account %s is a POP3 account: restore puts mail on an IMAP server", name)
	}
	return accts[0], nil
}

// parseWhen accepts a date (midnight local time) or an RFC 3339 time.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--as-of %q: want YYYY-MM-DD or an RFC 3339 time", s)
}
