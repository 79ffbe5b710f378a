package archive

import (
	"context"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Frozen is what restore and export read of an archive's frozen folders
// (catalog.Folder.IsFrozen: label folders backed up folder by folder
// before Gmail mode, "[before Gmail mode]/NAME"). A frozen folder's
// message whose SHA-256 is that of a live message of All Mail, Spam or
// Trash (the folders Gmail mode backs up; live at AsOf with AsOf) is left
// out: it comes out of there, through its labels. An expunged twin does
// not count, even with IncludeExpunged: it carries no labels (Gmail mode
// never read them), and the frozen copy keeps where the message was. The others, mail only the
// old folder holds, are read as messages of All Mail (Into) carrying the
// frozen folder's label (catalog.Message.Labels), so that restore and
// export put them where that label goes: "--labels folders" into the
// label's folder (INBOX for \Inbox), keywords as $label- keywords, onto
// Gmail as the label. A message held by several frozen folders (and
// nowhere else) is read once, with each of their labels. Frozen folders
// themselves are not read as folders. Nothing archived is left out that
// is not read through All Mail, Spam or Trash.
type Frozen struct {
	Into  *catalog.Folder // All Mail, whose messages the parts join
	Parts []FrozenPart
}

// FrozenPart is one frozen folder's messages to read, in storage order,
// with their flags (by catalog id); each message's Labels hold its
// labels (its frozen folders').
type FrozenPart struct {
	Folder *catalog.Folder
	Msgs   []*catalog.Message
	Flags  map[int64][]string
}

// IsFrozenOut reports whether f is a frozen folder that Frozen reads
// through All Mail (fz nil: none is).
func (fz *Frozen) IsFrozenOut(f *catalog.Folder) bool { return fz != nil && f.IsFrozen() }

// Frozen returns how the frozen folders among folders (Folders' answer)
// are read, or nil when there are none or the archive has no All Mail
// among them (the frozen folders are then read as ordinary folders).
// It reads the digests of All Mail, Spam and Trash once: by the catalog
// (catalog.SHA256Set) without AsOf, by Select (live at AsOf) with it.
func (s *Selector) Frozen(ctx context.Context, folders []*catalog.Folder) (*Frozen, error) {
	var frozen, twins []*catalog.Folder
	var into *catalog.Folder
	for _, f := range folders {
		switch {
		case f.IsView():
		case f.IsFrozen():
			frozen = append(frozen, f)
		default:
			twins = append(twins, f)
			if into == nil && strings.EqualFold(f.SpecialUse, `\All`) {
				into = f
			}
		}
	}
	if len(frozen) == 0 || into == nil {
		return nil, nil
	}
	var set catalog.SHASet
	if s.opt.AsOf.IsZero() {
		ids := make([]int64, len(twins))
		for i, f := range twins {
			ids[i] = f.ID
		}
		var err error
		if set, err = s.a.Cat.SHA256Set(ctx, ids, false); err != nil {
			return nil, err
		}
	} else {
		set = catalog.SHASet{}
		live := &Selector{a: s.a, opt: Selection{AsOf: s.opt.AsOf}, runs: s.runs}
		for _, f := range twins {
			msgs, _, err := live.Select(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				set.AddHex(m.SHA256)
			}
		}
	}
	fz := &Frozen{Into: into}
	first := map[string]*catalog.Message{} // by SHA-256: the copy read
	for _, f := range frozen {
		msgs, flags, err := s.Select(ctx, f)
		if err != nil {
			return nil, err
		}
		part := FrozenPart{Folder: f, Flags: flags}
		for _, m := range msgs {
			if set.HasHex(m.SHA256) {
				continue
			}
			if c := first[m.SHA256]; c != nil {
				c.Labels = withLabel(c.Labels, f.Label)
				continue
			}
			c := *m
			c.Labels = withLabel(append([]string(nil), m.Labels...), f.Label)
			first[m.SHA256] = &c
			part.Msgs = append(part.Msgs, &c)
		}
		if len(part.Msgs) > 0 {
			fz.Parts = append(fz.Parts, part)
		}
	}
	return fz, nil
}

// withLabel adds l to labels unless there (system labels in any case).
func withLabel(labels []string, l string) []string {
	for _, x := range labels {
		if x == l || strings.HasPrefix(l, `\`) && strings.EqualFold(x, l) {
			return labels
		}
	}
	return append(labels, l)
}
