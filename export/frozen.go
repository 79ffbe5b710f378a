package export

import (
	"context"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Frozen folders (archive.Selector.Frozen): export writes no
// "[before Gmail mode]/NAME" folder. Its messages that All Mail, Spam or
// Trash hold too are written from there, through their labels; the others
// are written as messages of All Mail labelled NAME's label: into the
// label's folder (--labels folders), with its keyword (keywords), in All
// Mail (none).

// withFrozen gives every folder that writes messages of All Mail the
// frozen folders' messages read through it, chosen by the same keep.
func withFrozen(out []*outFolder, fz *archive.Frozen) {
	if fz == nil {
		return
	}
	for _, of := range out {
		for _, p := range of.parts[:len(of.parts):len(of.parts)] {
			if p.f.ID != fz.Into.ID {
				continue
			}
			for _, fp := range fz.Parts {
				of.parts = append(of.parts, part{f: fp.Folder, keep: p.keep, msgs: fp.Msgs, flags: fp.Flags, fixed: true})
			}
		}
	}
}

// frozenLabels adds the labels of the frozen folders' messages.
func frozenLabels(labels map[string]bool, fz *archive.Frozen) {
	if fz == nil {
		return
	}
	for _, fp := range fz.Parts {
		for _, m := range fp.Msgs {
			for _, l := range m.Labels {
				labels[l] = true
			}
		}
	}
}

// selected is the part's messages: those of its folder the Selection
// chooses, or, for frozen messages, the ones given.
func (p part) selected(ctx context.Context, src *archive.Selector) ([]*catalog.Message, map[int64][]string, error) {
	if p.fixed {
		return p.msgs, p.flags, nil
	}
	return src.Select(ctx, p.f)
}
