package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/verify"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
)

// verifySummary is the --json output of verify (documented in README.md).
type verifySummary struct {
	Command  string           `json:"command"`
	Name     string           `json:"name,omitempty"`
	Archive  string           `json:"archive"`
	Format   string           `json:"format,omitempty"`
	Server   string           `json:"server,omitempty"`
	Outcome  string           `json:"outcome"` // ok, problems, failed, interrupted
	Started  time.Time        `json:"started"`
	Seconds  float64          `json:"seconds"`
	Folders  int              `json:"folders"`
	Messages int              `json:"messages"`
	Bytes    int64            `json:"bytes"`
	Compared int              `json:"server_folders,omitempty"`
	Problems int              `json:"problem_count"`
	Notes    int              `json:"note_count"`
	Problem  []verify.Finding `json:"problems"`
	Note     []verify.Finding `json:"notes"`
	Capped   bool             `json:"capped,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// verifyJob is what to verify: an archive and, with --server, how to reach
// its account.
type verifyJob struct {
	name             string
	dir              string
	folders, exclude []string // what to verify in the archive
	// srvFolders and srvExclude select the server's folders to compare:
	// the account's own selection, so folders its backups skip are not
	// reported as missing from the archive.
	srvFolders, srvExclude []string
	noUIDL                 bool
	// server resolves the connection settings; nil without --server.
	server func(ctx context.Context) (account.Server, imapconn.Config, error)
}

// verifyFlags is verify's command line.
type verifyFlags struct {
	com              common
	cfg              configFlag
	conn             connFlags
	dir              string
	folders, exclude stringsFlag
	server, noUIDL   bool
}

func (f *verifyFlags) register(fs *flag.FlagSet) {
	f.com.register(fs)
	f.cfg.register(fs)
	f.conn.register(fs, true)
	fs.StringVar(&f.dir, "archive", "", "archive directory (or give an account NAME from the config file)")
	fs.Var(&f.folders, "folder", "verify only folders matching this glob (repeatable)")
	fs.Var(&f.exclude, "exclude", "skip folders matching this glob (repeatable)")
	fs.BoolVar(&f.server, "server", false, "also compare the catalog with the live server (read-only: EXAMINE, UID SEARCH)")
	fs.BoolVar(&f.noUIDL, "no-uidl", false, "with --server --pop3: the server lacks UIDL")
}

// verifyAllSummary is the --json output of verify over several configured
// accounts (no NAME, or several).
type verifyAllSummary struct {
	Command  string          `json:"command"`
	Config   string          `json:"config"`
	Outcome  string          `json:"outcome"`
	Started  time.Time       `json:"started"`
	Seconds  float64         `json:"seconds"`
	Accounts []verifySummary `json:"accounts"`
}

// verifyOpts are verify's options: its flags and where it writes.
type verifyOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	f              verifyFlags
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "verify", &verifyOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *verifyOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.f.register(fs)
}

func (o *verifyOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs verify and returns its exit code; it reports its failures itself.
func (o *verifyOpts) exec(ctx context.Context) int {
	f, fs, pos, stdout, stderr := &o.f, o.fs, o.fs.Args(), o.stdout, o.stderr
	start := time.Now()
	jobs, err := f.jobs(fs, pos, stderr)
	if err != nil {
		sum := verifySummary{Command: "verify", Archive: f.dir, Started: start.UTC(), Problem: []verify.Finding{}, Note: []verify.Finding{}}
		return f.finish(ctx, &sum, nil, err, start, stdout, stderr)
	}
	if len(jobs) == 1 && (f.dir != "" || len(pos) == 1) {
		sum, code := f.verifyOne(ctx, jobs[0], stderr)
		if f.com.jsonOut {
			writeJSON(stdout, sum)
		}
		return code
	}
	// Several accounts, one after the other (verify is disk-bound); one
	// account's problems never stop the others.
	all := verifyAllSummary{Command: "verify", Config: f.cfg.path, Started: start.UTC(), Accounts: []verifySummary{}}
	var codes []int
	for _, job := range jobs {
		if ctx.Err() != nil {
			break
		}
		sum, code := f.verifyOne(ctx, job, stderr)
		all.Accounts = append(all.Accounts, sum)
		codes = append(codes, code)
	}
	code := combine(codes)
	if ctx.Err() != nil {
		code = exitInterrupted
	}
	all.Seconds = time.Since(start).Seconds()
	all.Outcome = map[int]string{exitOK: "ok", exitPartial: "problems", exitInterrupted: "interrupted"}[code]
	if all.Outcome == "" {
		all.Outcome = "failed"
	}
	if code != exitOK {
		var bad []string
		for i, s := range all.Accounts {
			if codes[i] != exitOK {
				bad = append(bad, s.Name+" ("+s.Outcome+")")
			}
		}
		fmt.Fprintf(stderr, "mailkeep verify: %d of %d accounts not ok: %v\n", len(bad), len(jobs), bad)
	}
	if f.com.jsonOut {
		writeJSON(stdout, all)
	}
	return code
}

// verifyOne verifies one archive and prints its findings and summary line;
// it returns the summary and the exit code.
func (f *verifyFlags) verifyOne(ctx context.Context, job verifyJob, stderr io.Writer) (verifySummary, int) {
	start := time.Now()
	sum := verifySummary{Command: "verify", Name: job.name, Archive: job.dir, Started: start.UTC(), Problem: []verify.Finding{}, Note: []verify.Finding{}}
	rep, err := runVerify(ctx, job, &sum, f.com, stderr)
	code := f.finish(ctx, &sum, rep, err, start, nil, stderr)
	return sum, code
}

// jobs checks the flags and resolves --archive DIR, or account NAMEs
// (none: every configured account).
func (f *verifyFlags) jobs(fs *flag.FlagSet, names []string, stderr io.Writer) ([]verifyJob, error) {
	var connSet []string
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "imap", "pop3", "tls", "ca-file", "password-file", "password-command", "no-uidl":
			connSet = append(connSet, "--"+fl.Name)
		}
	})
	switch {
	case f.dir != "" && len(names) > 0:
		return nil, usageErr("give --archive DIR or account NAMEs, not both")
	case f.dir != "":
		job, err := f.dirJob(connSet)
		return []verifyJob{job}, err
	}
	if len(connSet) > 0 {
		return nil, usageErr("%v describe one account: with account NAMEs they come from the config file (or give --archive DIR)", connSet)
	}
	_, accts, err := f.cfg.accounts(names, stderr)
	if err != nil {
		return nil, err
	}
	var jobs []verifyJob
	for _, a := range accts {
		job := verifyJob{name: a.Name, dir: a.Archive, folders: f.folders, exclude: f.exclude, noUIDL: a.NoUIDL,
			srvFolders: f.folders, srvExclude: append(append([]string(nil), a.Exclude...), f.exclude...)}
		if len(job.srvFolders) == 0 {
			job.srvFolders = a.Folders
		}
		if f.server {
			job.server = func(ctx context.Context) (account.Server, imapconn.Config, error) { return accountServer(ctx, a) }
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// dirJob is the job of --archive DIR, with the connection flags for --server.
func (f *verifyFlags) dirJob(connSet []string) (verifyJob, error) {
	if f.cfg.path != "" {
		return verifyJob{}, usageErr("--config selects accounts by NAME; do not combine it with --archive")
	}
	job := verifyJob{dir: f.dir, folders: f.folders, exclude: f.exclude, srvFolders: f.folders, srvExclude: f.exclude, noUIDL: f.noUIDL}
	switch {
	case f.server && f.conn.imapURL == "" && f.conn.pop3URL == "":
		return job, usageErr("--server with --archive DIR needs the account: --imap URL or --pop3 URL")
	case !f.server && len(connSet) > 0:
		return job, usageErr("%v only make sense with --server", connSet)
	case f.server:
		job.server = f.conn.server
	}
	return job, nil
}

// runVerify verifies the archive and, with a server, compares it with
// the server. Findings are printed on stderr as they are made.
func runVerify(ctx context.Context, job verifyJob, sum *verifySummary, com common, stderr io.Writer) (*verify.Report, error) {
	log := com.logger(stderr)
	var srv account.Server
	var cfg imapconn.Config
	if job.server != nil { // resolve the password first: a usage error costs no reading
		var err error
		if srv, cfg, err = job.server(ctx); err != nil {
			return nil, err
		}
		sum.Server = srv.String()
	}
	a, err := archive.Open(job.dir, archive.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	sum.Format = string(a.Format)
	if job.server != nil {
		if err := sameSource(ctx, a, srv); err != nil {
			return nil, err
		}
	}
	bar := progress.New(stderr, "verify", com.quiet)
	bar.SetTotal(archiveTotals(ctx, a, job.folders, job.exclude, true))
	defer bar.Done()
	who := "mailkeep verify" // with an account NAME, every line names it
	if job.name != "" {
		who += " " + job.name
	}
	show := func(fd verify.Finding, problem bool) {
		bar.Done()
		switch {
		case problem:
			fmt.Fprintf(stderr, "%s: problem: %s\n", who, fd)
		case !com.quiet:
			fmt.Fprintf(stderr, "%s: note: %s\n", who, fd)
		}
	}
	rep, err := verify.Run(ctx, a, verify.Options{Folders: job.folders, Exclude: job.exclude, OnFinding: show, Progress: bar.Add, Logger: log})
	bar.Done()
	if err != nil || job.server == nil {
		return rep, err
	}
	add := func(fd verify.Finding) {
		rep.Add(fd, true, 0)
		show(fd, true)
	}
	src := newSource(srv, cfg, sourceSettings{folders: job.srvFolders, exclude: job.srvExclude, pop3: pop3Flags{noUIDL: job.noUIDL}, log: log})
	return rep, src.compare(ctx, a, sum, add)
}

// compareIMAP compares the catalog with an IMAP server, folder by folder.
func compareIMAP(ctx context.Context, a *archive.Archive, opt imapsrc.Options, sum *verifySummary, add func(verify.Finding)) error {
	diffs, err := imapsrc.Compare(ctx, a.Cat, opt)
	if err != nil {
		return fmt.Errorf("comparing with the server: %w", err)
	}
	sum.Compared = len(diffs)
	for _, d := range diffs {
		for _, fd := range diffFindings(d) {
			add(fd)
		}
	}
	return nil
}

// diffFindings turns a folder's comparison into findings.
func diffFindings(d *imapsrc.FolderDiff) []verify.Finding {
	fd := func(kind verify.Kind, uids []uint32, format string, args ...any) verify.Finding {
		return verify.Finding{Folder: d.Folder, Kind: kind, UIDs: imapsrc.UIDRanges(uids), Count: len(uids), Detail: fmt.Sprintf(format, args...)}
	}
	switch {
	case d.Err != nil:
		return []verify.Finding{fd(verify.ServerError, nil, "could not compare with the server: %v", d.Err)}
	case d.OnServer && !d.InArchive:
		return []verify.Finding{fd(verify.ServerOnlyFolder, nil, "on the server (%d messages, uidvalidity %d) but not in the archive: the next backup fetches it", d.ServerMessages, d.ServerValidity)}
	case !d.OnServer:
		return []verify.Finding{fd(verify.ArchiveOnlyFolder, nil, "gone from the server; its %d live archived messages stay in the archive (the next backup marks them expunged)", len(d.Gone))}
	case d.ServerValidity != d.ArchiveValidity:
		return []verify.Finding{fd(verify.ServerValidity, nil, "UIDVALIDITY is %d on the server, %d in the catalog: the next backup matches the archived messages again", d.ServerValidity, d.ArchiveValidity)}
	}
	var out []verify.Finding
	if len(d.New) > 0 {
		out = append(out, fd(verify.ServerNew, d.New, "%d messages on the server are not in the archive (the next backup fetches them)", len(d.New)))
	}
	if len(d.Gone) > 0 {
		out = append(out, fd(verify.ServerGone, d.Gone, "%d archived messages are no longer on the server (the next backup marks them expunged; the archive keeps them)", len(d.Gone)))
	}
	return out
}

// comparePOP3 compares the catalog with a POP3 mailbox by UIDL.
func comparePOP3(ctx context.Context, a *archive.Archive, opt pop3src.Options, sum *verifySummary, add func(verify.Finding)) error {
	d, err := pop3src.Compare(ctx, a.Cat, opt)
	if err != nil {
		return fmt.Errorf("comparing with the server: %w", err)
	}
	sum.Compared = 1
	for _, u := range d.New {
		add(verify.Finding{Folder: pop3src.Folder, UIDL: u, Kind: verify.ServerNew, Detail: "on the server, not in the archive (the next backup fetches it)"})
	}
	for _, u := range d.Gone {
		add(verify.Finding{Folder: pop3src.Folder, UIDL: u, Kind: verify.ServerGone, Detail: "archived, no longer on the server (the next backup marks it expunged; the archive keeps it)"})
	}
	return nil
}

// finish prints the summary line and the --json summary and returns the
// exit code: 0 ok, 3 problems, 1 (or 2, 130) when verification could not
// be done.
func (f *verifyFlags) finish(ctx context.Context, sum *verifySummary, rep *verify.Report, err error, start time.Time, stdout, stderr io.Writer) int {
	sum.Seconds = time.Since(start).Seconds()
	if rep != nil {
		sum.Format = rep.Format
		sum.Folders, sum.Messages, sum.Bytes = rep.Folders, rep.Messages, rep.Bytes
		sum.Problems, sum.Notes, sum.Problem, sum.Note, sum.Capped = rep.Problems, rep.Notes, rep.Problem, rep.Note, rep.Capped
	}
	code := exitOK
	switch {
	case err != nil && ctx.Err() != nil:
		sum.Outcome, sum.Error, code = "interrupted", "interrupted", exitInterrupted
	case err != nil:
		sum.Outcome, sum.Error, code = "failed", err.Error(), exitCode(err)
	case sum.Problems > 0:
		sum.Outcome, code = "problems", exitPartial
	default:
		sum.Outcome = "ok"
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailkeep verify:", err)
	}
	if f.com.jsonOut && stdout != nil {
		writeJSON(stdout, sum)
	}
	if rep != nil && (!f.com.quiet || code != exitOK) {
		what := sum.Archive
		if sum.Name != "" {
			what = sum.Name
		}
		server := ""
		if sum.Server != "" && err == nil {
			server = fmt.Sprintf(", compared %d folders with %s", sum.Compared, sum.Server)
		}
		note := ""
		if what != sum.Archive {
			note = archiveNote(sum.Archive)
		}
		fmt.Fprintf(stderr, "mailkeep verify %s: %s, %d folders, %d messages (%.1f MB) checked%s, %d problems, %d notes, %.1fs%s\n",
			what, sum.Outcome, sum.Folders, sum.Messages, float64(sum.Bytes)/1e6, server, sum.Problems, sum.Notes, sum.Seconds, note)
	}
	return code
}
