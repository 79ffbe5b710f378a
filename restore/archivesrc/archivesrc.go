// Package archivesrc presents a mailkeep archive to the restore engine: its
// folders and messages (optionally as they were at a past time) and the
// catalog's record of what was restored where.
package archivesrc

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/restore"
)

// Options choose what of the archive is restored (archive.Selection:
// IncludeExpunged, AsOf).
type Options = archive.Selection

// Source is an archive as a restore.Source and restore.Progress.
type Source struct {
	a   *archive.Archive
	sel *archive.Selector
	run int64
	fz  frozenState
}

// New wraps an open archive; run is the restore's run id in its catalog.
func New(ctx context.Context, a *archive.Archive, run int64, opt Options) (*Source, error) {
	sel, err := a.Selector(ctx, opt)
	if err != nil {
		return nil, err
	}
	return &Source{a: a, sel: sel, run: run}, nil
}

// Folders lists the archive's folders the Options show, less the Gmail
// label views: their messages are those of the real folders (All Mail),
// whose Message.Labels say where else they are shown (restore/labels.go);
// and less the frozen folders, read through All Mail (frozen.go).
func (s *Source) Folders(ctx context.Context) ([]restore.Folder, error) {
	fl, err := s.sel.Folders(ctx)
	if err != nil {
		return nil, err
	}
	fz, err := s.frozen(ctx)
	if err != nil {
		return nil, err
	}
	var out []restore.Folder
	for _, f := range fl {
		if f.IsView() || fz.IsFrozenOut(f) {
			continue
		}
		out = append(out, restore.Folder{Name: f.Name, Delim: f.Delim, SpecialUse: f.SpecialUse})
	}
	return out, nil
}

// Messages calls fn for each message of a folder to restore, in the order
// they were archived.
func (s *Source) Messages(ctx context.Context, folder restore.Folder, fn func(restore.Message) error) error {
	return s.MessagesWhere(ctx, folder, nil, fn)
}

// MessagesWhere implements restore.Filterer: keep (nil: every message)
// chooses by the catalog's record, and only the chosen are read.
func (s *Source) MessagesWhere(ctx context.Context, folder restore.Folder, keep func(restore.Message) bool, fn func(restore.Message) error) error {
	f, err := s.a.Cat.Folder(ctx, folder.Name)
	if err != nil {
		return err
	}
	// Load the folder's metadata first: fn talks to the network, and a
	// database cursor should not stay open that long.
	sel, flagsOf, err := s.sel.Select(ctx, f)
	if err != nil {
		return err
	}
	if keep != nil {
		chosen := sel[:0:0]
		for _, m := range sel {
			if keep(meta(m, flagsOf)) {
				chosen = append(chosen, m)
			}
		}
		sel = chosen
	}
	if err := s.walk(ctx, f, sel, flagsOf, fn); err != nil {
		return err
	}
	return s.frozenMessages(ctx, f, keep, fn)
}

// meta is a catalogued message as a restore.Message without Open.
func meta(m *catalog.Message, flagsOf map[int64][]string) restore.Message {
	return restore.Message{
		Key:          Key(m),
		Flags:        flagsOf[m.ID],
		InternalDate: m.InternalDate,
		Size:         m.Size,
		SHA256:       m.SHA256,
		MessageID:    m.MessageID,
		Labels:       m.Labels,
	}
}

// LabelViews implements restore.LabelViewer: the archive's Gmail label
// views by label, so that a label is restored under the name its folder
// had (in the account's language).
func (s *Source) LabelViews(ctx context.Context) (map[string]restore.Folder, error) {
	fl, err := s.a.Cat.Folders(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]restore.Folder{}
	for _, f := range fl {
		if f.IsView() && f.Label != "" {
			out[f.Label] = restore.Folder{Name: f.Name, Delim: f.Delim, SpecialUse: f.SpecialUse}
		}
	}
	return out, nil
}

// HasLabels implements restore.LabelChecker.
func (s *Source) HasLabels(ctx context.Context) (bool, error) { return s.a.Cat.HasLabels(ctx) }

var (
	_ restore.Filterer     = (*Source)(nil)
	_ restore.LabelViewer  = (*Source)(nil)
	_ restore.LabelChecker = (*Source)(nil)
)

// Key is a message's restore key: its catalog row id, which survives
// UIDVALIDITY changes.
func Key(m *catalog.Message) string { return "msg:" + strconv.FormatInt(m.ID, 10) }

// IsRestored implements restore.Progress.
func (s *Source) IsRestored(ctx context.Context, dest restore.Destination, key string) (bool, error) {
	return s.a.Cat.IsRestored(ctx, dest.Server, dest.User, key)
}

// MarkRestored implements restore.Progress.
func (s *Source) MarkRestored(ctx context.Context, dest restore.Destination, key string, r restore.Restored) error {
	if err := s.a.Cat.MarkRestored(ctx, dest.Server, dest.User, key, r.Folder, r.UIDValidity, r.UID, s.run); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}
