package archive

import (
	"context"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Selection chooses what of an archive is read back out: restore, export
// and serve share it, so that --as-of and --include-expunged mean the same
// in all three.
type Selection struct {
	// IncludeExpunged keeps messages the server had expunged, and folders
	// deleted on the server.
	IncludeExpunged bool
	// AsOf, when set, shows each folder as it was at that time: messages
	// stored before it and not yet seen expunged, with their flags as of
	// the last run before it.
	AsOf time.Time
}

// Selector applies a Selection to an archive.
type Selector struct {
	a    *Archive
	opt  Selection
	runs map[int64]time.Time
}

// Selector returns the archive's Selector for opt.
func (a *Archive) Selector(ctx context.Context, opt Selection) (*Selector, error) {
	s := &Selector{a: a, opt: opt, runs: map[int64]time.Time{}}
	runs, err := a.Cat.Runs(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		s.runs[r.ID] = r.Started
	}
	return s, nil
}

// Folders lists the archive's folders the Selection shows: without
// IncludeExpunged, no folder deleted on the server (as of AsOf).
func (s *Selector) Folders(ctx context.Context) ([]*catalog.Folder, error) {
	fl, err := s.a.Cat.Folders(ctx)
	if err != nil {
		return nil, err
	}
	var out []*catalog.Folder
	for _, f := range fl {
		if f.GoneRun != 0 && !s.opt.IncludeExpunged && !s.notYet(f.GoneRun) {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

// notYet reports whether the run happened at or after AsOf (so its effects
// are not yet visible at AsOf). Without AsOf every run is visible.
func (s *Selector) notYet(run int64) bool {
	if s.opt.AsOf.IsZero() {
		return false
	}
	return !s.runs[run].Before(s.opt.AsOf)
}

// Select returns the messages of folder f that the Selection chooses, in
// catalog (storage) order, and each one's flags (by catalog id): as
// recorded by the last run before AsOf when AsOf is set, else the current
// ones.
func (s *Selector) Select(ctx context.Context, f *catalog.Folder) ([]*catalog.Message, map[int64][]string, error) {
	all, err := s.a.Cat.All(ctx, f.ID)
	if err != nil {
		return nil, nil, err
	}
	// Messages mailkeep deleted from a POP3 server after archiving them
	// are not expunged: the archive exists to keep them.
	deleted, err := s.a.Cat.Deleted(ctx, f.ID)
	if err != nil {
		return nil, nil, err
	}
	var sel []*catalog.Message
	flagsOf := map[int64][]string{}
	for _, m := range all {
		flags := m.Flags
		expungedRun := deleted.ExpungedRun(m)
		if !s.opt.AsOf.IsZero() {
			if !m.StoredAt.Before(s.opt.AsOf) {
				continue
			}
			if expungedRun != 0 && !s.notYet(expungedRun) && !s.opt.IncludeExpunged {
				continue
			}
			fl, ok, err := s.a.Cat.FlagsAsOf(ctx, m.ID, s.opt.AsOf)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				flags = fl
			}
		} else if expungedRun != 0 && !s.opt.IncludeExpunged {
			continue
		}
		sel = append(sel, m)
		flagsOf[m.ID] = flags
	}
	return sel, flagsOf, nil
}

// SourceNamespace is the personal namespace the backup recorded (catalog
// meta source_namespace), else, for archives from before it was recorded,
// inferred from the folder names: "INBOX" and the delimiter when every
// folder but INBOX is below INBOX (Cyrus, Courier), "" otherwise. Restore
// and export write folders relative to it.
func (a *Archive) SourceNamespace(ctx context.Context) (string, rune, error) {
	prefix, delim, ok, err := a.Cat.SourceNamespace(ctx)
	if err != nil || ok {
		return prefix, delim, err
	}
	fl, err := a.Cat.Folders(ctx)
	if err != nil {
		return "", 0, err
	}
	return inferNamespace(fl)
}

// inferNamespace is SourceNamespace's guess from the folder names.
func inferNamespace(fl []*catalog.Folder) (string, rune, error) {
	below := 0
	var delim rune
	for _, f := range fl {
		if strings.EqualFold(f.Name, "INBOX") {
			continue
		}
		if f.Delim == 0 || len(f.Name) <= 6 || !strings.EqualFold(f.Name[:5], "INBOX") || []rune(f.Name[5:])[0] != f.Delim {
			return "", 0, nil
		}
		below++
		delim = f.Delim
	}
	if below == 0 {
		return "", 0, nil
	}
	return "INBOX" + string(delim), delim, nil
}
