package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/internal/account"
	"golang.org/x/sync/errgroup"
)

// checkResult is one account in check's --json output.
type checkResult struct {
	Name        string              `json:"name,omitempty"`
	Account     string              `json:"account"`
	Archive     string              `json:"archive"`
	Outcome     string              `json:"outcome"` // ok, partial (some folders failed), failed
	Error       string              `json:"error,omitempty"`
	NewMessages int                 `json:"new_messages"`
	NewBytes    int64               `json:"new_bytes"`
	Folders     []fetch.FolderCheck `json:"folders"`
}

// checkOpts are check's options.
type checkOpts struct {
	stdout, stderr   io.Writer
	fs               *flag.FlagSet
	cf               connFlags
	cfgFlag          configFlag
	com              common
	dir              string
	folders, exclude stringsFlag
	noUIDL           bool
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "check", &checkOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *checkOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cf.register(fs, true)
	o.cfgFlag.register(fs)
	o.com.register(fs)
	fs.StringVar(&o.dir, "archive", "", "with --imap/--pop3: the account's archive, to compare with (optional)")
	fs.Var(&o.folders, "folder", "with --imap: only folders matching this glob (repeatable)")
	fs.Var(&o.exclude, "exclude", "with --imap: skip folders matching this glob (repeatable)")
	fs.BoolVar(&o.noUIDL, "no-uidl", false, "with --pop3: the server lacks UIDL")
}

func (o *checkOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs check and returns its exit code; it reports its failures itself.
func (o *checkOpts) exec(ctx context.Context) int {
	log := o.com.logger(o.stderr)
	fail := func(err error) int {
		fmt.Fprintln(o.stderr, "mailkeep check:", err)
		return exitCode(err)
	}
	var jobs []backupJob
	if o.cf.imapURL != "" || o.cf.pop3URL != "" {
		if o.fs.NArg() > 0 || o.cfgFlag.path != "" {
			return fail(usageErr("give account names (from the config) or --imap/--pop3 URL, not both"))
		}
		jobs = []backupJob{{dir: o.dir, folders: o.folders, exclude: o.exclude, pop3: pop3Flags{noUIDL: o.noUIDL}, server: o.cf.server}}
	} else {
		var bad []string
		o.fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "archive", "folder", "exclude", "no-uidl", "tls", "ca-file", "password-file", "password-command":
				bad = append(bad, "--"+f.Name)
			}
		})
		if len(bad) > 0 {
			return fail(usageErr("%v describe one account: set them in the config file, or check a single account with --imap/--pop3 URL", bad))
		}
		_, accts, err := o.cfgFlag.accounts(o.fs.Args(), o.stderr)
		if err != nil {
			return fail(err)
		}
		for _, a := range accts {
			jobs = append(jobs, configJob(a, false))
		}
	}

	results := make([]checkResult, len(jobs))
	codes := make([]int, len(jobs))
	var g errgroup.Group
	g.SetLimit(4)
	for i, job := range jobs {
		g.Go(func() error {
			res, err := checkAccount(ctx, job, log)
			switch {
			case err != nil && res.Account == "" || err != nil && len(res.Folders) == 0:
				res.Outcome, res.Error, codes[i] = "failed", err.Error(), exitCode(err)
			case err != nil:
				res.Outcome, res.Error, codes[i] = "partial", err.Error(), exitPartial
			default:
				res.Outcome = "ok"
			}
			results[i] = res
			return nil
		})
	}
	g.Wait()
	if o.com.jsonOut {
		writeJSON(o.stdout, struct {
			Command  string        `json:"command"`
			Accounts []checkResult `json:"accounts"`
		}{"check", results})
	} else if !o.com.quiet {
		printCheck(o.stdout, results)
	}
	for _, r := range results {
		if r.Error != "" {
			who := r.Name
			if who == "" {
				who = r.Account
			}
			if who != "" {
				who += ": "
			}
			fmt.Fprintf(o.stderr, "mailkeep check: %s%s\n", who, r.Error)
		}
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return combine(codes)
}

// checkAccount surveys one account against its archive, if there is one.
func checkAccount(ctx context.Context, job backupJob, log *slog.Logger) (checkResult, error) {
	res := checkResult{Name: job.name, Archive: job.dir, Folders: []fetch.FolderCheck{}}
	srv, cfg, err := job.server(ctx)
	if err != nil {
		return res, err
	}
	res.Account = srv.String()
	var cat *catalog.Catalog
	if job.dir != "" {
		a, err := archive.Open(job.dir, archive.Options{ReadOnly: true})
		switch {
		case errors.Is(err, archive.ErrNoArchive):
		case err != nil:
			return res, err
		default:
			defer a.Close()
			if err := sameSource(ctx, a, srv); err != nil {
				return res, err
			}
			cat = a.Cat
		}
	}
	src := newSource(srv, cfg, sourceSettings{folders: job.folders, exclude: job.exclude, pop3: job.pop3, log: log})
	chk, err := src.check(ctx, cat)
	res.Folders = append(res.Folders, chk.Folders...)
	res.NewMessages, res.NewBytes = chk.Totals()
	return res, err
}

// sameSource refuses to compare an account with another account's archive.
func sameSource(ctx context.Context, a *archive.Archive, srv account.Server) error {
	have, err := a.Cat.Meta(ctx, "source")
	if err != nil {
		return err
	}
	if want := string(srv.Protocol) + ":" + srv.User + "@" + srv.Host; have != "" && have != want {
		return usageErr("archive %s belongs to %s, not %s", a.Dir, have, want)
	}
	return nil
}

func printCheck(w io.Writer, results []checkResult) {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := r.Account
		if r.Name != "" {
			name = r.Name + " (" + r.Account + ")"
		}
		if r.Outcome == "failed" {
			fmt.Fprintf(w, "%s: cannot check: %s\n", name, r.Error)
			continue
		}
		fmt.Fprintf(w, "%s: %d folders; a backup would fetch %d messages (%.1f MB)\n", name, len(r.Folders), r.NewMessages, float64(r.NewBytes)/1e6)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FOLDER\tSERVER\tARCHIVED\tNEW\tNEW MB\tNOTE")
		for _, f := range r.Folders {
			srv := fmt.Sprint(f.Server)
			if f.Server < 0 {
				srv = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%.1f\t%s\n", f.Folder, srv, f.Archived, f.New, float64(f.NewBytes)/1e6, f.Note)
		}
		tw.Flush()
	}
}
