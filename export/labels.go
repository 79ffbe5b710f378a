package export

// Gmail labels (issue 13). A Gmail archive holds each message once, in
// [Gmail]/All Mail, [Gmail]/Spam or [Gmail]/Trash, with its labels; the
// label folders are views of it with no messages of their own, and
// export never writes them as they are. Options.Labels chooses:
//
//   - "folders" (the default): a copy of each message in a folder per
//     label, as restore makes them on a server that is not Gmail
//     (internal/gmaillabels.Folder): \Inbox is INBOX, \Sent
//     "[Gmail]/Sent Mail", \Draft "[Gmail]/Drafts", a user label its name
//     (nested with '/'), or the name its view folder had in the archive;
//     \Important is dropped and \Starred is the \Flagged flag. All Mail
//     keeps the messages with no user label; Spam and Trash are written
//     as they are.
//   - "keywords": each message once, in its folder, with every label as a
//     keyword "$label-NAME" (gmaillabels.Keyword: non-atom bytes as +XX).
//     Maildir writes keywords as Dovecot does (a letter in the file name,
//     listed in the folder's dovecot-keywords file: Dovecot reads them,
//     and Dovecot's limit of 26 per folder applies), mbox as an
//     X-Keywords header (Dovecot's mbox convention; mutt and NeoMutt read
//     it as the message's labels). An .eml file has no place for flags:
//     keywords mode writes each message once, without them.
//   - "none": labels ignored.
//
// --folder and --exclude apply to the label folders' names too.

import (
	"context"
	"sort"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/internal/gmaillabels"
)

// outFolder is one folder written: the messages of parts.
type outFolder struct {
	name  string
	delim rune
	parts []part
}

// part is the messages of one archive folder that keep chooses (nil:
// all).
type part struct {
	f    *catalog.Folder
	keep func(*catalog.Message) bool
	// fixed: msgs and flags are the messages to choose from (a frozen
	// folder's, frozen.go), not the folder's selection.
	fixed bool
	msgs  []*catalog.Message
	flags map[int64][]string
}

// plan lists the folders to write: the archive's folders that sel
// matches (less Gmail label views) and, with labels as folders, a folder
// per label that sel matches.
func plan(ctx context.Context, cat *catalog.Catalog, src *archive.Selector, folders []*catalog.Folder, sel *glob.Set, mode string) ([]*outFolder, error) {
	match := func(name string, delim rune) bool { return sel.Match(layout.Join(layout.Components(name, delim), '/')) }
	copies := mode == "" || mode == gmaillabels.ModeFolders
	views := map[string]*catalog.Folder{}
	var real []*catalog.Folder
	fz, err := src.Frozen(ctx, folders)
	if err != nil {
		return nil, err
	}
	for _, f := range folders {
		if fz.IsFrozenOut(f) {
			continue
		}
		if f.IsView() {
			if f.Label != "" {
				views[f.Label] = f
			}
			continue
		}
		real = append(real, f)
	}
	// The labels of the messages of the folders labels are drawn from.
	labels := map[string]bool{}
	if copies {
		has, err := cat.HasLabels(ctx)
		if err != nil {
			return nil, err
		}
		copies = has
	}
	if copies {
		for _, f := range real {
			if !gmaillabels.DrawnFrom(f.SpecialUse) {
				continue
			}
			msgs, _, err := src.Select(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				for _, l := range m.Labels {
					labels[l] = true
				}
			}
		}
		frozenLabels(labels, fz)
	}
	var out []*outFolder
	for _, f := range real {
		if !match(f.Name, f.Delim) {
			continue
		}
		of := &outFolder{name: f.Name, delim: f.Delim, parts: []part{{f: f}}}
		if len(labels) > 0 && gmaillabels.DrawnFrom(f.SpecialUse) {
			of.parts[0].keep = func(m *catalog.Message) bool { return !gmaillabels.HasUser(m.Labels) }
		}
		out = append(out, of)
	}
	var names []string
	for l := range labels {
		names = append(names, l)
	}
	sort.Strings(names)
	taken := map[string]bool{}
	for _, of := range out {
		taken[of.name] = true
	}
	for _, l := range names {
		name, _, ok := gmaillabels.Folder(l)
		if !ok {
			continue
		}
		delim := '/'
		if v := views[l]; v != nil && name != "INBOX" {
			name, delim = v.Name, v.Delim
		}
		if taken[name] || !match(name, delim) {
			continue // a real folder of that name wins
		}
		taken[name] = true
		of := &outFolder{name: name, delim: delim}
		for _, f := range real {
			if gmaillabels.DrawnFrom(f.SpecialUse) {
				of.parts = append(of.parts, part{f: f, keep: func(m *catalog.Message) bool { return gmaillabels.Has(m.Labels, l) }})
			}
		}
		out = append(out, of)
	}
	withFrozen(out, fz)
	return out, nil
}

// labelFlags are the flags a message is written with: its own, and what
// its labels stand for in mode (Flags, keywords).
func labelFlags(mode string, flags, labels []string) []string {
	switch {
	case labels == nil || mode == gmaillabels.ModeNone:
		return flags
	case mode == gmaillabels.ModeKeywords:
		return gmaillabels.WithKeywords(flags, labels)
	}
	return gmaillabels.Flags(flags, labels)
}
