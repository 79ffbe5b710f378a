package main

import (
	"context"
	"encoding/json"
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
func cmdSearch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("search", stderr)
	var cfg configFlag
	var dir string
	var jsonOut bool
	var limit int
	cfg.register(fs)
	fs.StringVar(&dir, "archive", "", "archive directory")
	fs.BoolVar(&jsonOut, "json", false, "print one JSON object per hit")
	fs.IntVar(&limit, "limit", 50, "print at most N hits (0: all)")
	flags, rest := splitArgs(fs, args)
	if code, ok := parse(fs, flags); !ok {
		return code
	}
	err := func() error {
		var names []string
		if dir == "" {
			// Leading arguments that name configured accounts select
			// them; the rest is the query.
			conf, err := cfg.load(stderr)
			if err != nil {
				return err
			}
			cfg.path = conf.Path
			known := map[string]bool{}
			for _, a := range conf.Accounts {
				known[a.Name] = true
			}
			for len(rest) > 0 && known[rest[0]] {
				names, rest = append(names, rest[0]), rest[1:]
			}
		}
		if len(rest) == 0 {
			return usageErr("usage: mailkeep search [--archive DIR | NAME...] [--json] [--limit N] QUERY...")
		}
		q, err := textindex.ParseQuery(strings.Join(rest, " "), time.Now(), time.Local)
		if err != nil {
			return usageError{err}
		}
		targets, err := archiveTargets(&cfg, dir, names, stderr)
		if err != nil {
			return err
		}
		var hits []searchHit
		for _, t := range targets {
			hs, err := searchOne(ctx, t, q, limit, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", t.label(), err)
			}
			hits = append(hits, hs...)
		}
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].Date.After(hits[j].Date) })
		if limit > 0 && len(hits) > limit {
			hits = hits[:limit]
		}
		if jsonOut {
			enc := json.NewEncoder(stdout)
			for _, h := range hits {
				if err := enc.Encode(h); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
	}()
	if err != nil {
		return report(stderr, "search", err)
	}
	return exitOK
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
