package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// archiveTarget is one archive a command reads: --archive DIR, or a
// configured account's archive.
type archiveTarget struct{ name, dir string }

// archiveTargets resolves --archive DIR or account NAMEs (none: every
// configured account) as verify and reindex do.
func archiveTargets(cfg *configFlag, dir string, names []string, stderr io.Writer) ([]archiveTarget, error) {
	switch {
	case dir != "" && len(names) > 0:
		return nil, usageErr("give --archive DIR or account NAMEs, not both")
	case dir != "" && cfg.path != "":
		return nil, usageErr("--config selects accounts by NAME; do not combine it with --archive")
	case dir != "":
		return []archiveTarget{{dir: dir}}, nil
	}
	_, accts, err := cfg.accounts(names, stderr)
	if err != nil {
		return nil, err
	}
	var out []archiveTarget
	for _, a := range accts {
		out = append(out, archiveTarget{name: a.Name, dir: a.Archive})
	}
	return out, nil
}

func (t archiveTarget) label() string {
	if t.name != "" {
		return t.name
	}
	return t.dir
}

// indexSummary is index's --json output, one per archive.
type indexSummary struct {
	Name         string  `json:"name,omitempty"`
	Archive      string  `json:"archive"`
	Outcome      string  `json:"outcome"` // ok | failed | interrupted
	Indexed      int     `json:"indexed"`
	Relinked     int     `json:"relinked"`
	Problems     int     `json:"messages_with_problems"`
	Truncated    int     `json:"messages_truncated"`
	Total        int     `json:"messages_in_index"`
	Seconds      float64 `json:"seconds"`
	IndexBytes   int64   `json:"index_bytes"`
	ArchiveBytes int64   `json:"archive_bytes"`
	Error        string  `json:"error,omitempty"`
}

// cmdIndex builds or brings up to date the search index of archives.
// indexOpts are index's options.
type indexOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	com            common
	cfg            configFlag
	dir            string
}

func cmdIndex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "index", &indexOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *indexOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.com.register(fs)
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory")
}

func (o *indexOpts) run(ctx context.Context) error {
	return status(o.exec(ctx))
}

// exec runs index and returns its exit code; it reports its failures itself.
func (o *indexOpts) exec(ctx context.Context) int {
	names := o.fs.Args()
	targets, err := archiveTargets(&o.cfg, o.dir, names, o.stderr)
	if err != nil {
		return report(o.stderr, "index", err)
	}
	log := o.com.logger(o.stderr)
	worst := exitOK
	var sums []indexSummary
	for _, t := range targets {
		sum, err := runIndex(ctx, t, log)
		if err != nil {
			fmt.Fprintf(o.stderr, "mailkeep index %s: %v\n", t.label(), err)
			if c := exitCode(err); worst == exitOK || c == exitInterrupted {
				worst = c
			}
		} else if !o.com.quiet && !o.com.jsonOut {
			fmt.Fprintf(o.stderr, "%s: indexed %d new messages (%d now), %s index for %s of mail (%.0f%%) in %.1fs\n",
				t.label(), sum.Indexed, sum.Total, mib(sum.IndexBytes), mib(sum.ArchiveBytes), pct(sum.IndexBytes, sum.ArchiveBytes), sum.Seconds)
			if sum.Problems > 0 {
				fmt.Fprintf(o.stderr, "%s: %d messages had parts that did not parse; they are indexed as far as they parse\n", t.label(), sum.Problems)
			}
		}
		sums = append(sums, sum)
	}
	if o.com.jsonOut {
		enc := json.NewEncoder(o.stdout)
		for _, s := range sums {
			enc.Encode(s)
		}
	}
	return worst
}

func mib(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// runIndex indexes what one archive's index lacks. It reads the archive
// without its lock (a backup may run meanwhile: what it committed is
// indexed, the rest next time).
func runIndex(ctx context.Context, t archiveTarget, log *slog.Logger) (indexSummary, error) {
	start := time.Now()
	sum := indexSummary{Name: t.name, Archive: t.dir, Outcome: "ok"}
	err := func() error {
		a, err := archive.Open(t.dir, archive.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer a.Close()
		ix, err := textindex.Open(t.dir)
		if err != nil {
			return err
		}
		defer ix.Close()
		st, err := ix.Update(ctx, a, textindex.UpdateOptions{Progress: func(folder string, s textindex.Stats) {
			log.Debug("indexed", "archive", t.label(), "folder", folder, "messages", s.Indexed)
		}})
		sum.Indexed, sum.Relinked, sum.Problems, sum.Truncated = st.Indexed, st.Relinked, st.Problems, st.Truncated
		if n, cerr := ix.Count(ctx); cerr == nil {
			sum.Total = n
		}
		return err
	}()
	sum.Seconds = time.Since(start).Seconds()
	sum.IndexBytes = textindex.Size(t.dir)
	sum.ArchiveBytes = mailBytes(t.dir)
	if err != nil {
		sum.Outcome, sum.Error = "failed", err.Error()
		if errors.Is(err, context.Canceled) {
			sum.Outcome = "interrupted"
		}
	}
	return sum, err
}

// mailBytes is the size of an archive's mail files (mbox/ and maildir/),
// not following symlinks.
func mailBytes(dir string) int64 {
	var n int64
	for _, sub := range []string{"mbox", "maildir"} {
		filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// splitArgs separates fs's flags from the other arguments, wherever they
// are, without taking a query's "-word" for a flag: an argument is a flag
// only when fs defines its name. "--" ends the flags.
func splitArgs(fs *flag.FlagSet, args []string) (flags, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(rest, args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		if name == "h" || name == "help" { // the flag package's help
			flags = append(flags, a)
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, rest
}
