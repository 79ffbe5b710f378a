// Package archivesrc presents a mailkeep archive to the restore engine: its
// folders and messages (optionally as they were at a past time) and the
// catalog's record of what was restored where.
package archivesrc

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/restore"
)

// Options choose what of the archive is restored.
type Options struct {
	// IncludeExpunged restores messages the server had expunged, and
	// folders deleted on the server.
	IncludeExpunged bool
	// AsOf, when set, restores each folder as it was at that time: messages
	// stored before it and not yet seen expunged, with their flags as of
	// the last run before it.
	AsOf time.Time
}

// Source is an archive as a restore.Source and restore.Progress.
type Source struct {
	a    *archive.Archive
	opt  Options
	run  int64
	runs map[int64]time.Time
}

// New wraps an open archive; run is the restore's run id in its catalog.
func New(a *archive.Archive, run int64, opt Options) (*Source, error) {
	s := &Source{a: a, opt: opt, run: run, runs: map[int64]time.Time{}}
	runs, err := a.Cat.Runs()
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		s.runs[r.ID] = r.Started
	}
	return s, nil
}

// Folders lists the archive's folders.
func (s *Source) Folders(ctx context.Context) ([]restore.Folder, error) {
	fl, err := s.a.Cat.Folders()
	if err != nil {
		return nil, err
	}
	var out []restore.Folder
	for _, f := range fl {
		if f.GoneRun != 0 && !s.opt.IncludeExpunged && !s.before(f.GoneRun) {
			continue
		}
		out = append(out, restore.Folder{Name: f.Name, Delim: f.Delim, SpecialUse: f.SpecialUse})
	}
	return out, nil
}

// before reports whether the run happened at or after AsOf (so its effects
// are not yet visible at AsOf). Without AsOf nothing is "before".
func (s *Source) before(run int64) bool {
	if s.opt.AsOf.IsZero() {
		return false
	}
	return !s.runs[run].Before(s.opt.AsOf)
}

// Messages calls fn for each message of a folder to restore, in the order
// they were archived.
func (s *Source) Messages(ctx context.Context, folder restore.Folder, fn func(restore.Message) error) error {
	f, err := s.a.Cat.Folder(folder.Name)
	if err != nil {
		return err
	}
	// Load the folder's metadata first: fn talks to the network, and a
	// database cursor should not stay open that long.
	sel, flagsOf, err := s.Select(f)
	if err != nil {
		return err
	}
	// Walk reads the folder's file front to back once; a second Open of the
	// same message (the engine re-reads large ones) seeks to it instead.
	return s.a.Walk(f, sel, func(m *catalog.Message, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		used := false
		return fn(restore.Message{
			Key:          Key(m),
			Flags:        flagsOf[m.ID],
			InternalDate: m.InternalDate,
			Size:         m.Size,
			SHA256:       m.SHA256,
			MessageID:    m.MessageID,
			Open: func() (io.ReadCloser, error) {
				if !used {
					used = true
					return io.NopCloser(r), nil
				}
				return s.a.Open(m)
			},
		})
	})
}

// Select returns the messages of folder f that the Options choose, in
// catalog (storage) order, and each one's flags: as recorded by the last
// run before AsOf when AsOf is set, else the current ones. Restore and
// export (package restore/export) share it so that --as-of and
// --include-expunged mean the same in both.
func (s *Source) Select(f *catalog.Folder) ([]*catalog.Message, map[int64][]string, error) {
	all, err := s.a.Cat.All(f.ID)
	if err != nil {
		return nil, nil, err
	}
	// Messages mailkeep deleted from a POP3 server after archiving them
	// are not expunged: the archive exists to keep them.
	deleted, err := s.a.Cat.Deleted(f.ID)
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
			if expungedRun != 0 && !s.before(expungedRun) && !s.opt.IncludeExpunged {
				continue
			}
			fl, ok, err := s.a.Cat.FlagsAsOf(m.ID, s.opt.AsOf)
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

// Key is a message's restore key: its catalog row id, which survives
// UIDVALIDITY changes.
func Key(m *catalog.Message) string { return "msg:" + strconv.FormatInt(m.ID, 10) }

// IsRestored implements restore.Progress.
func (s *Source) IsRestored(dest restore.Destination, key string) (bool, error) {
	return s.a.Cat.IsRestored(dest.Server, dest.User, key)
}

// MarkRestored implements restore.Progress.
func (s *Source) MarkRestored(dest restore.Destination, key string, r restore.Restored) error {
	if err := s.a.Cat.MarkRestored(dest.Server, dest.User, key, r.Folder, r.UIDValidity, r.UID, s.run); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}
