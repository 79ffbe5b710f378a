package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
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
}

// nopProgress is the progress record of a foreign restore, which has no
// catalog: a rerun relies on the destination check (Message-ID, size, date).
type nopProgress struct{}

func (nopProgress) IsRestored(restore.Destination, string) (bool, error) { return false, nil }
func (nopProgress) MarkRestored(restore.Destination, string, restore.Restored) error {
	return nil
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("restore", stderr)
	var cf connFlags
	var com common
	var dir, prefix, asOf, fromMbox, fromMaildir string
	var folders, exclude stringsFlag
	var conns int
	var dryRun, inclExpunged, noSpecial, renameColl, verify bool
	var cfgFlag configFlag
	var acctName string
	cf.register(fs, false)
	cfgFlag.register(fs)
	com.register(fs)
	fs.StringVar(&acctName, "account", "", "restore to this account of the config file (its server and login, OAuth2 included); the archive defaults to the account's own")
	fs.StringVar(&dir, "archive", "", "archive directory to restore from")
	fs.StringVar(&fromMbox, "from-mbox", "", "restore a foreign mbox file (Takeout, Thunderbird) into --folder")
	fs.StringVar(&fromMaildir, "from-maildir", "", "restore a foreign Maildir folder into --folder")
	fs.Var(&folders, "folder", "restore only folders matching this glob (repeatable); with --from-mbox/--from-maildir: the destination folder")
	fs.Var(&exclude, "exclude", "skip folders matching this glob (repeatable)")
	fs.StringVar(&prefix, "prefix", "", "restore under this folder (e.g. Restored/2026)")
	fs.StringVar(&asOf, "as-of", "", "restore the mailbox as it was at this time (2026-10-01 or RFC 3339)")
	fs.BoolVar(&dryRun, "dry-run", false, "show what would be created and appended; change nothing")
	fs.BoolVar(&inclExpunged, "include-expunged", false, "also restore messages expunged on the server")
	fs.BoolVar(&noSpecial, "no-special-use", false, "do not map Sent/Drafts/Trash/Junk/Archive to the destination's special-use folders")
	connectionsVar(fs, &conns)
	fs.BoolVar(&verify, "verify", false, "fetch every appended message back and compare it (SHA-256, size, flags, keywords, INTERNALDATE); say per folder what arrived exact, altered (and how) or refused")
	fs.BoolVar(&renameColl, "rename-collisions", false, `restore source folders that would land in one destination folder apart, adding " (2)", " (3)", ... to the later ones' names (without it such a restore is refused)`)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	log := com.logger(stderr)
	start := time.Now()
	sum := restoreSummary{Command: "restore", Archive: dir, Started: start.UTC(), DryRun: dryRun, Failures: []string{}}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailkeep restore:", err)
		if com.jsonOut {
			sum.Outcome, sum.Error = "failed", err.Error()
			writeJSON(stdout, sum)
		}
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		return fail(usageErr("unexpected arguments %q", fs.Args()))
	}
	var acct *config.Account
	if acctName != "" {
		a, err := restoreAccount(fs, cfgFlag, acctName, stderr)
		if err != nil {
			return fail(err)
		}
		acct = &a
		if dir == "" && fromMbox == "" && fromMaildir == "" {
			dir, sum.Archive = a.Archive, a.Archive
		}
	} else if cfgFlag.path != "" {
		return fail(usageErr("--config goes with --account NAME"))
	}
	sources := 0
	for _, s := range []string{dir, fromMbox, fromMaildir} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return fail(usageErr("give exactly one of --archive DIR, --from-mbox FILE, --from-maildir DIR"))
	}
	var when time.Time
	if asOf != "" {
		t, err := parseWhen(asOf)
		if err != nil {
			return fail(usageError{err})
		}
		when = t
	}
	server := cf.server
	if acct != nil {
		server = func(ctx context.Context) (account.Server, imapconn.Config, error) { return accountServer(ctx, *acct) }
	}
	srv, cfg, err := server(ctx)
	if err != nil {
		return fail(err)
	}
	sum.Destination = srv.String()
	opt := restore.Options{Folders: folders, Exclude: exclude, Prefix: prefix, NoSpecialUse: noSpecial, RenameCollisions: renameColl, Verify: verify, DryRun: dryRun, Connections: conns, Logger: log,
		DialRaw: func(ctx context.Context) (*imapconn.Raw, error) { return imapconn.DialRaw(ctx, cfg) }}
	var src restore.Source
	var prog restore.Progress
	var a *archive.Archive
	var run int64
	if dir != "" {
		// An archive on read-only media is restored without a progress
		// record: the destination check tells a rerun what is there.
		readOnly := !writableDir(dir)
		a, err = archive.Open(dir, archive.Options{MustExist: true, ReadOnly: readOnly})
		if err != nil {
			return fail(err)
		}
		defer a.Close()
		if readOnly {
			sum.ProgressNotRecorded = true
		} else if run, err = a.Cat.BeginRun("restore", srv.String(), start); err != nil {
			return fail(err)
		}
		as, err := archivesrc.New(a, run, archivesrc.Options{IncludeExpunged: inclExpunged, AsOf: when})
		if err != nil {
			return fail(err)
		}
		src, prog = as, as
	} else {
		if len(folders) != 1 {
			return fail(usageErr("--from-mbox and --from-maildir need exactly one --folder NAME (the destination folder)"))
		}
		opt.Folders = nil
		if fromMbox != "" {
			src = &foreignsrc.Mbox{Path: fromMbox, Folder: folders[0]}
		} else {
			src = &foreignsrc.Maildir{Path: fromMaildir, Folder: folders[0]}
		}
		prog = nopProgress{}
	}
	if dryRun {
		restore.SetDryRunOutput(stdout)
	}
	bar := progress.New(stderr, "restore", com.quiet)
	opt.Progress = func(ev restore.Event) { bar.Add(ev.Folder, 1, ev.Bytes) }
	dial := func(ctx context.Context) (*imapclient.Client, error) { return imapconn.Dial(ctx, cfg) }
	st, err := restore.Run(ctx, dial, restore.Destination{Server: srv.Addr, User: srv.User}, src, prog, opt)
	bar.Done()
	sum.Renamed = st.Renamed
	sum.FolderReports = st.Reports
	if sum.FolderReports == nil {
		sum.FolderReports = []restore.FolderReport{}
	}
	for _, fr := range st.Reports {
		if fr.Noteworthy() {
			fmt.Fprintf(stderr, "mailkeep restore: %s\n", fr.String())
		}
	}
	for _, rn := range st.Renamed {
		fmt.Fprintf(stderr, "mailkeep restore: folder %q restored as %q (%q was taken by another folder)\n", rn.Folder, rn.Dest, rn.Instead)
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Folders, sum.Created, sum.Appended, sum.Skipped, sum.Damaged, sum.KeywordsDropped, sum.Bytes, sum.Missing =
		st.Folders, st.Created, st.Appended, st.Skipped, st.Damaged, st.KeywordsDropped, st.Bytes, st.Missing
	if a != nil && (sum.ProgressNotRecorded || st.ProgressNotRecorded) {
		sum.ProgressNotRecorded = true
		fmt.Fprintf(stderr, "mailkeep restore: archive %s is read-only: restore progress was not recorded (a rerun checks the destination instead)\n", dir)
	}
	for _, f := range st.Failures {
		sum.Failures = append(sum.Failures, f.Error())
	}
	var code int
	sum.Outcome, sum.Error, code = outcome(ctx, err, len(st.Failures))
	if errors.Is(err, restore.ErrCollision) {
		code = exitUsage // nothing was restored: choose a mapping
	}
	if a != nil && run != 0 {
		rec := catalog.Run{ID: run, Ended: time.Now(), Outcome: sum.Outcome, Fetched: st.Appended, Bytes: st.Bytes, Failed: len(st.Failures), Error: sum.Error}
		if eerr := a.Cat.EndRun(rec); eerr != nil && err == nil {
			err, code = eerr, exitFailed
		}
	}
	printFailures(stderr, "restore", sum.Failures, err)
	sum.TooBig = st.TooBig
	for _, tb := range st.TooBig {
		fmt.Fprintf(stderr, "mailkeep restore: %s\n", tb)
	}
	if com.jsonOut {
		writeJSON(stdout, sum)
	}
	if !com.quiet || code != exitOK {
		verb := "appended"
		if dryRun {
			verb = "would append"
		}
		missing := ""
		if sum.Missing > 0 {
			missing = fmt.Sprintf(" (%d of them recorded as restored but missing from the destination)", sum.Missing)
		}
		fmt.Fprintf(stderr, "mailkeep restore to %s: %s, %d folders (%d created), %s %d messages%s (%.1f MB), %d already there, %d damaged, %d failures, %.1fs\n",
			srv, sum.Outcome, sum.Folders, sum.Created, verb, sum.Appended, missing, float64(sum.Bytes)/1e6, sum.Skipped, sum.Damaged, len(sum.Failures), sum.Seconds)
	}
	return code
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

// writableDir reports whether the archive directory can be written (false
// on read-only media, whoever runs mailkeep: access(2) reports EROFS to
// root as well).
func writableDir(dir string) bool {
	return syscall.Access(dir, 2 /* W_OK */) == nil
}
