package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// searchHit is one line of search's output (--json: one object a line).
type searchHit struct {
	Account string `json:"account,omitempty"`
	Archive string `json:"archive"`
	textindex.Hit
	// ID is what show and cat take after the folder.
	ID string `json:"id"`
}

// cmdSearch searches the full-text index of one or more archives.
// searchOpts are search's options; query is the words after the flags.
type searchOpts struct {
	stdout, stderr io.Writer
	cfg            configFlag
	dir            string
	jsonOut        bool
	limit          int
	query          []string
}

func cmdSearch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// A query word that looks like a flag search does not define ("-foo")
	// is part of the query, not an unknown flag.
	probe := flag.NewFlagSet("mailkeep search", flag.ContinueOnError)
	(&searchOpts{}).register(probe)
	flags, rest := splitArgs(probe, args)
	return runOptions(ctx, "search", &searchOpts{stdout: stdout, stderr: stderr, query: rest}, flags, stderr)
}

func (o *searchOpts) register(fs *flag.FlagSet) {
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per hit")
	fs.IntVar(&o.limit, "limit", 50, "print at most N hits (0: all)")
}

func (o *searchOpts) run(ctx context.Context) error {
	var names []string
	if o.dir == "" {
		// Leading arguments that name configured accounts select
		// them; the rest is the query.
		conf, err := o.cfg.load(o.stderr)
		if err != nil {
			return err
		}
		o.cfg.path = conf.Path
		known := map[string]bool{}
		for _, a := range conf.Accounts {
			known[a.Name] = true
		}
		for len(o.query) > 0 && known[o.query[0]] {
			names, o.query = append(names, o.query[0]), o.query[1:]
		}
	}
	if len(o.query) == 0 {
		return usageErr("usage: mailkeep search [--archive DIR | NAME...] [--json] [--limit N] QUERY...")
	}
	q, err := textindex.ParseQuery(strings.Join(o.query, " "), time.Now(), time.Local)
	if err != nil {
		return usageError{err}
	}
	targets, err := archiveTargets(&o.cfg, o.dir, names, o.stderr)
	if err != nil {
		return err
	}
	var hits []searchHit
	for _, t := range targets {
		hs, err := searchOne(ctx, t, q, o.limit, o.stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", t.label(), err)
		}
		hits = append(hits, hs...)
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Date.After(hits[j].Date) })
	if o.limit > 0 && len(hits) > o.limit {
		hits = hits[:o.limit]
	}
	if o.jsonOut {
		enc := json.NewEncoder(o.stdout)
		for _, h := range hits {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	for _, h := range hits {
		acct := ""
		if len(targets) > 1 {
			acct = h.Account + "\t"
		}
		id := h.ID
		if h.Expunged {
			id += "*"
		}
		fmt.Fprintf(tw, "%s\t%s%s %s\t%s\t%s\n", h.Date.Local().Format("2006-01-02 15:04"), acct,
			shellWord(h.Folder), id, clip(oneLine(h.From), 30), clip(oneLine(h.Subject), 60))
	}
	return tw.Flush()
}

func searchOne(ctx context.Context, t archiveTarget, q textindex.Node, limit int, stderr io.Writer) ([]searchHit, error) {
	a, err := archive.Open(t.dir, archive.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	ix, err := textindex.OpenReadOnly(t.dir)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	if stored, err := a.Cat.MessageCount(ctx); err == nil {
		if n, err := ix.Count(ctx); err == nil && int64(n) < stored {
			fmt.Fprintf(stderr, "mailkeep search: %s: %d of %d messages are not indexed yet (run mailkeep index)\n", t.label(), stored-int64(n), stored)
		}
	}
	if ix.Stale(ctx, a.Cat) {
		fmt.Fprintf(stderr, "mailkeep search: %s: the catalog was rebuilt since the last index run: run mailkeep index (it re-links without reading mail)\n", t.label())
	}
	hs, err := ix.Search(ctx, filepath.Join(t.dir, "catalog.db"), q, limit)
	if err != nil {
		return nil, err
	}
	out := make([]searchHit, len(hs))
	for i, h := range hs {
		out[i] = searchHit{Account: t.name, Archive: t.dir, Hit: h, ID: h.ID()}
	}
	return out, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// shellWord quotes a folder name for a shell when it needs it, so that a
// hit's "FOLDER UID" can be pasted after "mailkeep show --archive DIR".
func shellWord(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-./@+,:%=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
