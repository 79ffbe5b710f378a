package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive"
)

// reindexSummary is reindex's --json output, one per archive.
type reindexSummary struct {
	Name           string   `json:"name,omitempty"`
	Archive        string   `json:"archive"`
	Outcome        string   `json:"outcome"` // ok | partial | failed
	Format         string   `json:"format,omitempty"`
	MovedAside     []string `json:"moved_aside,omitempty"`
	Replayed       int      `json:"journal_transactions"`
	JournalDamaged int      `json:"journal_lines_damaged"`
	NoJournal      bool     `json:"no_journal,omitempty"`
	Folders        int      `json:"folders"`
	Known          int      `json:"messages_from_journal"`
	Found          int      `json:"messages_from_files_only"`
	Missing        int      `json:"messages_missing"`
	Problems       []string `json:"problems,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// cmdReindex rebuilds catalogs from journals and mail files.
// reindexOpts are reindex's options.
type reindexOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	com            common
	cfg            configFlag
	dir            string
}

func cmdReindex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "reindex", &reindexOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *reindexOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.com.register(fs)
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory")
}

func (o *reindexOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs reindex and returns its exit code; it reports its failures itself.
func (o *reindexOpts) exec(ctx context.Context) int {
	type job struct{ name, dir string }
	var jobs []job
	switch {
	case o.dir != "" && o.fs.NArg() > 0:
		return report(o.stderr, "reindex", usageErr("give --archive DIR or account NAMEs, not both"))
	case o.dir != "":
		jobs = []job{{dir: o.dir}}
	default:
		if o.fs.NArg() == 0 && o.cfg.path == "" {
			return report(o.stderr, "reindex", usageErr("give --archive DIR or account NAMEs from the config file"))
		}
		_, accts, err := o.cfg.accounts(o.fs.Args(), o.stderr)
		if err != nil {
			return report(o.stderr, "reindex", err)
		}
		for _, a := range accts {
			jobs = append(jobs, job{name: a.Name, dir: a.Archive})
		}
	}
	code := exitOK
	var sums []reindexSummary
	for _, j := range jobs {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		sum := reindexSummary{Name: j.name, Archive: j.dir, Outcome: "ok"}
		st, err := archive.Reindex(ctx, j.dir, time.Now())
		c := exitOK
		switch {
		case err != nil:
			sum.Outcome, sum.Error = "failed", err.Error()
			c = exitCode(err)
			fmt.Fprintf(o.stderr, "mailkeep reindex %s: %v\n", j.dir, err)
		default:
			sum.Format, sum.MovedAside, sum.Replayed, sum.JournalDamaged, sum.NoJournal = string(st.Format), st.MovedAside, st.Replayed, st.JournalDamaged, st.NoJournal
			sum.Folders, sum.Known, sum.Found, sum.Missing, sum.Problems = st.Folders, st.Known, st.Found, st.Missing, st.Problems
			if len(st.Problems) > 0 || st.Missing > 0 {
				sum.Outcome, c = "partial", exitPartial
			}
			for _, p := range st.Problems {
				fmt.Fprintf(o.stderr, "mailkeep reindex %s: problem: %s\n", j.dir, p)
			}
			if !o.com.quiet || c != exitOK {
				fmt.Fprintf(o.stderr, "mailkeep reindex %s: %s, %s, %d folders, %d messages from the journal (UIDs, flags, keywords), %d found only in the files, %d catalogued but missing from the files%s\n",
					j.dir, sum.Outcome, st.Format, st.Folders, st.Known, st.Found, st.Missing, reindexNotes(st))
			}
		}
		if c > code {
			code = c
		}
		sums = append(sums, sum)
	}
	if o.com.jsonOut {
		writeJSON(o.stdout, sums)
	}
	return code
}

func reindexNotes(st *archive.ReindexStats) string {
	var notes []string
	if st.NoJournal {
		notes = append(notes, "no journal: UIDs, flags and keywords not held by the files are unknown")
	}
	if st.JournalDamaged > 0 {
		notes = append(notes, fmt.Sprintf("%d damaged journal lines skipped", st.JournalDamaged))
	}
	if len(st.MovedAside) > 0 {
		notes = append(notes, "old catalog kept as "+st.MovedAside[0])
	}
	if len(notes) == 0 {
		return ""
	}
	return "; " + strings.Join(notes, "; ")
}

// report prints a command's error and returns its exit code.
func report(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "mailkeep %s: %v\n", cmd, err)
	return exitCode(err)
}
