package archivesrc

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/restore"
)

// Frozen folders (archive.Selector.Frozen): a restore does not restore
// "[before Gmail mode]/NAME" as a folder. Its messages that All Mail,
// Spam or Trash hold too are restored from there, through their labels;
// the others are restored as messages of All Mail labelled NAME's label,
// so that the label rules put them where the label goes.

// frozenState is the Source's frozen folders, read once.
type frozenState struct {
	once sync.Once
	fz   *archive.Frozen
	err  error
}

func (s *Source) frozen(ctx context.Context) (*archive.Frozen, error) {
	s.fz.once.Do(func() {
		var fl []*catalog.Folder
		if fl, s.fz.err = s.sel.Folders(ctx); s.fz.err == nil {
			s.fz.fz, s.fz.err = s.sel.Frozen(ctx, fl)
		}
	})
	return s.fz.fz, s.fz.err
}

// frozenMessages calls fn for the frozen folders' messages read through
// folder f (All Mail), those keep chooses.
func (s *Source) frozenMessages(ctx context.Context, f *catalog.Folder, keep func(restore.Message) bool, fn func(restore.Message) error) error {
	fz, err := s.frozen(ctx)
	if err != nil || fz == nil || fz.Into.ID != f.ID {
		return err
	}
	for _, p := range fz.Parts {
		sel := p.Msgs
		if keep != nil {
			sel = nil
			for _, m := range p.Msgs {
				if keep(meta(m, p.Flags)) {
					sel = append(sel, m)
				}
			}
		}
		if err := s.walk(ctx, p.Folder, sel, p.Flags, fn); err != nil {
			return err
		}
	}
	return nil
}

// walk reads msgs of folder f (storage order) and calls fn with each.
func (s *Source) walk(ctx context.Context, f *catalog.Folder, sel []*catalog.Message, flagsOf map[int64][]string, fn func(restore.Message) error) error {
	// Walk reads the folder's file front to back once; a second Open of the
	// same message (the engine re-reads large ones) seeks to it instead.
	return s.a.Walk(ctx, f, sel, func(m *catalog.Message, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		used := false
		rm := meta(m, flagsOf)
		rm.Open = func() (io.ReadCloser, error) {
			if !used {
				used = true
				return io.NopCloser(r), nil
			}
			return s.a.Open(m)
		}
		return fn(rm)
	})
}

// frozenName names a message of another folder than the one it is
// restored from: `UID 4 in "[before Gmail mode]/Old"`.
func (s *Source) frozenName(ctx context.Context, m *catalog.Message) string {
	fl, err := s.a.Cat.Folders(ctx)
	if err != nil {
		return fmt.Sprintf("UID %d (UIDVALIDITY %d) of folder id %d", m.UID, m.UIDValidity, m.FolderID)
	}
	for _, f := range fl {
		if f.ID == m.FolderID {
			ref := archive.RefTo("", f.Name, m)
			if f.UIDValidity == m.UIDValidity {
				ref.UIDValidity = 0
			}
			return fmt.Sprintf("%s in %q", ref.Message(), f.Name)
		}
	}
	return fmt.Sprintf("UID %d (UIDVALIDITY %d), its folder gone from the catalog", m.UID, m.UIDValidity)
}
