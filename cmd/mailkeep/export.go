package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/progress"
	"github.com/mailkeep/mailkeep/restore"
)

// exportSummary is the --json output of export (documented in README.md).
type exportSummary struct {
	Command  string    `json:"command"`
	Account  string    `json:"account,omitempty"`
	Archive  string    `json:"archive"`
	To       string    `json:"to"`
	Format   string    `json:"format"`
	Outcome  string    `json:"outcome"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Folders  int       `json:"folders"`
	Messages int       `json:"messages"`
	Bytes    int64     `json:"bytes"`
	Skipped  int       `json:"skipped"`
	Failures []string  `json:"failures"`
	Error    string    `json:"error,omitempty"`
}

// exportFlags are export's command line.
type exportFlags struct {
	com             common
	cfg             configFlag
	dir, to, format string
	asOf            string
	folders         stringsFlag
	exclude         stringsFlag
	inclExpunged    bool
	labels          string
}

func (f *exportFlags) register(fs *flag.FlagSet) {
	f.com.register(fs)
	f.cfg.register(fs)
	fs.StringVar(&f.dir, "archive", "", "archive directory (or give an account NAME from the config file)")
	fs.StringVar(&f.to, "to", "", "directory to create (or an empty one) for the exported mail")
	fs.StringVar(&f.format, "format", "", "mbox (one file per folder), maildir (a Maildir++ tree) or eml (one file per message)")
	fs.Var(&f.folders, "folder", "export only folders matching this glob (repeatable)")
	fs.Var(&f.exclude, "exclude", "skip folders matching this glob (repeatable)")
	fs.StringVar(&f.asOf, "as-of", "", "export the mailbox as it was at this time (2026-10-01 or RFC 3339)")
	fs.BoolVar(&f.inclExpunged, "include-expunged", false, "also export messages expunged on the server")
	fs.StringVar(&f.labels, "labels", restore.LabelsFolders, exportLabelsUsage)
}

// options checks the flags and turns them into export options.
func (f *exportFlags) options() (export.Options, error) {
	var opt export.Options
	if f.to == "" {
		return opt, usageErr("--to PATH is required")
	}
	if f.format == "" {
		return opt, usageErr("--format mbox|maildir|eml is required")
	}
	format, err := export.ParseFormat(f.format)
	if err != nil {
		return opt, usageError{err}
	}
	if err := checkLabels(f.labels); err != nil {
		return opt, err
	}
	opt = export.Options{Format: format, Folders: f.folders, Exclude: f.exclude, IncludeExpunged: f.inclExpunged, Labels: f.labels}
	if f.asOf != "" {
		if opt.AsOf, err = parseWhen(f.asOf); err != nil {
			return opt, usageError{err}
		}
	}
	return opt, nil
}

// archiveDir resolves --archive DIR or one account NAME from the config
// file; it returns the directory and the name for messages.
func (f *exportFlags) archiveDir(names []string, stderr io.Writer) (dir, name string, err error) {
	switch {
	case f.dir != "" && len(names) > 0:
		return "", "", usageErr("give --archive DIR or an account NAME, not both")
	case f.dir != "":
		return f.dir, "", nil
	case len(names) != 1:
		return "", "", usageErr("usage: mailkeep export --archive DIR | NAME --to PATH --format mbox|maildir|eml")
	}
	_, accts, err := f.cfg.accounts(names, stderr)
	if err != nil {
		return "", "", err
	}
	return accts[0].Archive, accts[0].Name, nil
}

// exportOpts are export's options: its flags and where it writes.
type exportOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	f              exportFlags
}

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "export", &exportOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *exportOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.f.register(fs)
}

func (o *exportOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs export and returns its exit code; it reports its failures itself.
func (o *exportOpts) exec(ctx context.Context) int {
	f, pos, stdout, stderr := &o.f, o.fs.Args(), o.stdout, o.stderr
	start := time.Now()
	sum := exportSummary{Command: "export", To: f.to, Format: f.format, Started: start.UTC(), Failures: []string{}}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailkeep export:", err)
		if f.com.jsonOut {
			sum.Outcome, sum.Error, sum.Seconds = "failed", err.Error(), time.Since(start).Seconds()
			writeJSON(stdout, sum)
		}
		return exitCode(err)
	}
	opt, err := f.options()
	if err != nil {
		return fail(err)
	}
	dir, name, err := f.archiveDir(pos, stderr)
	if err != nil {
		return fail(err)
	}
	sum.Archive, sum.Account = dir, name
	if err := export.CheckTarget(f.to); err != nil {
		if errors.Is(err, export.ErrTargetNotEmpty) {
			err = usageError{err}
		}
		return fail(err)
	}
	// Read-only: no lock, so an export can run while a backup writes.
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer a.Close()
	if sum.Account == "" {
		sum.Account, _ = a.Cat.Meta(ctx, "source")
	}
	opt.Account, opt.Logger = sum.Account, f.com.logger(stderr)
	bar := progress.New(stderr, "export", f.com.quiet)
	bar.SetTotal(archiveTotals(ctx, a, f.folders, f.exclude, f.inclExpunged))
	opt.Progress = func(folder string, bytes int64) { bar.Add(folder, 1, bytes) }
	st, err := export.Run(ctx, a, f.to, opt)
	bar.Done()
	return f.finish(ctx, &sum, st, err, start, stdout, stderr)
}

// finish prints the failures, the summary line and the --json summary,
// and returns the exit code.
func (f *exportFlags) finish(ctx context.Context, sum *exportSummary, st export.Stats, err error, start time.Time, stdout, stderr io.Writer) int {
	sum.Seconds = time.Since(start).Seconds()
	sum.Folders, sum.Messages, sum.Bytes, sum.Skipped = st.Folders, st.Messages, st.Bytes, st.Skipped
	for _, d := range st.Damaged {
		sum.Failures = append(sum.Failures, d.Error())
	}
	var code int
	sum.Outcome, sum.Error, code = outcome(ctx, err, len(st.Damaged))
	if err != nil && errors.Is(err, export.ErrTargetNotEmpty) {
		code = exitUsage
	}
	printFailures(stderr, "export", sum.Failures, err)
	if f.com.jsonOut {
		writeJSON(stdout, sum)
	}
	if !f.com.quiet || code != exitOK {
		fmt.Fprintf(stderr, "mailkeep export to %s (%s): %s, %d folders, %d messages (%.1f MB), %d damaged and skipped, %.1fs%s\n",
			sum.To, sum.Format, sum.Outcome, sum.Folders, sum.Messages, float64(sum.Bytes)/1e6, sum.Skipped, sum.Seconds, archiveNote(sum.Archive))
	}
	return code
}
