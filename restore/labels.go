package restore

// Gmail labels (issue 13). A Gmail archive holds each message once, in
// [Gmail]/All Mail, [Gmail]/Spam or [Gmail]/Trash, with its X-GM-LABELS in
// Message.Labels; the labels' folders are views the Source does not list.
// What a restore makes of the labels depends on the destination:
//
//   - Gmail (CAPABILITY X-GM-EXT-1): each message is APPENDed once, into
//     the folder it was archived in (All Mail, Spam or Trash, mapped by
//     name or special use like any folder), and its labels are added with
//     UID STORE +X-GM-LABELS (gmail.go). \Starred is the \Flagged flag,
//     sent with the APPEND; \Inbox, \Sent, \Draft, \Important and the
//     user labels are stored as labels. Options.Labels does not apply.
//   - Any other server, Options.Labels "folders" (the default): a copy of
//     the message in one folder per label. \Inbox is INBOX, \Sent and
//     \Draft the destination's \Sent and \Drafts folders (through the
//     special-use mapping, like any source folder with that attribute),
//     \Starred the \Flagged flag on every copy, and \Important is dropped:
//     Gmail's classifier sets it on a large share of the mail, and a copy
//     of all of that is no use on another server. A user label is a
//     folder of that name ('/' between levels, as Gmail nests labels).
//     All Mail keeps the messages with no user label. Spam and Trash are
//     restored as they are (Gmail shows no labels on their messages).
//     Each copy is its own message for the progress record: its key is
//     the message's key and " label:" and the label.
//   - "keywords": each message once, in the folder it was archived in,
//     with every label as an IMAP keyword (LabelKeyword), plus \Flagged
//     for \Starred and \Draft for \Draft.
//   - "none": the labels are ignored (as a restore before issue 13 did).
//
// Messages without labels (Labels nil: mail not from Gmail) pass through
// every mode unchanged, so an archive from another server restores
// exactly as before.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mailkeep/mailkeep/internal/gmaillabels"
)

// Options.Labels values.
const (
	LabelsFolders  = gmaillabels.ModeFolders
	LabelsKeywords = gmaillabels.ModeKeywords
	LabelsNone     = gmaillabels.ModeNone
)

// ErrLabelsMode marks an Options.Labels value that is none of the modes.
var ErrLabelsMode = gmaillabels.ErrMode

// CheckLabelsMode validates an Options.Labels value ("" is folders).
func CheckLabelsMode(mode string) error { return gmaillabels.CheckMode(mode) }

// Filterer is a Source that can choose a folder's messages by their
// metadata before reading any of their bytes (an archive: by its
// catalog). Without it, label folders read every message of the folders
// they are drawn from to pick theirs.
type Filterer interface {
	// MessagesWhere is Messages for the messages keep chooses. keep sees
	// each message with Open nil; fn gets the chosen ones, openable.
	MessagesWhere(ctx context.Context, folder Folder, keep func(Message) bool, fn func(Message) error) error
}

// LabelChecker is a Source that can tell cheaply whether any of its
// messages has a Gmail label (an archive: one catalog query). Without
// labels, folders mode lists the Source's folders as they are, without
// reading every message's record first.
type LabelChecker interface {
	HasLabels(ctx context.Context) (bool, error)
}

// LabelViewer is a Source that knows the names of the folders its Gmail
// labels were shown as (a Gmail archive's view folders): a label folder
// is restored under that name rather than a default one.
type LabelViewer interface {
	LabelViews(ctx context.Context) (map[string]Folder, error)
}

// LabelKeyword is the IMAP keyword (an atom) a label becomes with
// LabelsKeywords: "$label-" and the label, each byte that is not an atom
// character, not ASCII, or '+' written "+XX" (internal/gmaillabels).
func LabelKeyword(label string) string { return gmaillabels.Keyword(label) }

// ParseLabelKeyword reverses LabelKeyword.
func ParseLabelKeyword(kw string) (string, bool) { return gmaillabels.ParseKeyword(kw) }

var (
	hasLabel     = gmaillabels.Has
	hasUserLabel = gmaillabels.HasUser
	labelFlags   = gmaillabels.Flags
	labelsFrom   = func(f Folder) bool { return gmaillabels.DrawnFrom(f.SpecialUse) }
)

const (
	labelInbox   = gmaillabels.Inbox
	labelStarred = gmaillabels.Starred
)

// labeled is the Source a restore reads: the real one with labels made
// flags, keywords or folders (see the top of this file).
type labeled struct {
	src   Source
	mode  string
	gmail bool

	real    []Folder
	byLabel map[string]Folder // label -> its folder (folders mode)
	ofName  map[string]string // label folder name -> label
	// Folder.label marks the label folders: a real folder may have the
	// same name (the collision check then stops or renames one).
	origin sync.Map // copy key -> [2]string{source folder, key}

	// Counted while the labels are read (folders mode): the messages of
	// each label, and those of each folder labels are drawn from that
	// have a user label (restored in their labels' folders instead).
	perLabel map[string]tally
	moved    map[string]tally
}

// tally is a number of messages and their bytes.
type tally struct {
	n     int
	bytes int64
}

func (t *tally) add(size int64) { t.n++; t.bytes += size }

// labelKey is a label as hasLabel compares it: system labels in any case.
func labelKey(l string) string {
	if gmaillabels.IsSystem(l) {
		return strings.ToLower(l)
	}
	return l
}

// planCount is, for a planned folder, the label copies it receives and
// the messages it leaves to label folders (folders mode; zero otherwise).
func (s *labeled) planCount(f Folder) (copies, moved tally) {
	if !s.copies() || s.byLabel == nil {
		return tally{}, tally{}
	}
	if f.label != "" {
		return s.perLabel[labelKey(f.label)], tally{}
	}
	if labelsFrom(f) {
		return tally{}, s.moved[f.Name]
	}
	return tally{}, tally{}
}

// wrapLabels returns the Source a restore onto a Gmail (gmail) or other
// server reads in mode.
func wrapLabels(src Source, mode string, gmail bool) *labeled {
	if mode == "" {
		mode = LabelsFolders
	}
	return &labeled{src: src, mode: mode, gmail: gmail}
}

// copies reports whether label folders are made.
func (s *labeled) copies() bool { return !s.gmail && s.mode == LabelsFolders }

func (s *labeled) Folders(ctx context.Context) ([]Folder, error) {
	real, err := s.src.Folders(ctx)
	if err != nil || !s.copies() {
		return real, err
	}
	s.real = real
	if lc, ok := s.src.(LabelChecker); ok {
		has, err := lc.HasLabels(ctx)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		if !has {
			return real, nil
		}
	}
	seen := map[string]bool{}
	s.perLabel, s.moved = map[string]tally{}, map[string]tally{}
	for _, f := range real {
		if !labelsFrom(f) {
			continue
		}
		err := s.where(ctx, f, func(m Message) bool {
			var keys []string
			for _, l := range m.Labels {
				if k := labelKey(l); !slices.Contains(keys, k) {
					keys = append(keys, k)
					t := s.perLabel[k]
					t.add(m.Size)
					s.perLabel[k] = t
				}
				seen[l] = true
			}
			if hasUserLabel(m.Labels) {
				t := s.moved[f.Name]
				t.add(m.Size)
				s.moved[f.Name] = t
			}
			return false
		}, func(Message) error { return nil })
		if err != nil {
			return nil, fmt.Errorf("folder %q: reading labels: %w", f.Name, err)
		}
	}
	if len(seen) == 0 {
		return real, nil
	}
	views := map[string]Folder{}
	if lv, ok := s.src.(LabelViewer); ok {
		if views, err = lv.LabelViews(ctx); err != nil {
			return nil, fmt.Errorf("label folders: %w", err)
		}
	}
	var labels []string
	for l := range seen {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	s.byLabel, s.ofName = map[string]Folder{}, map[string]string{}
	out := append([]Folder(nil), real...)
	for _, l := range labels {
		f, ok := labelFolder(l)
		if !ok {
			continue
		}
		if v, ok := views[l]; ok && !strings.EqualFold(l, labelInbox) {
			f.Name, f.Delim = v.Name, v.Delim
			if v.SpecialUse != "" {
				f.SpecialUse = v.SpecialUse
			}
		}
		if _, dup := s.ofName[f.Name]; dup {
			continue // two labels one name (INBOX): the first one
		}
		f.label = l
		s.byLabel[l], s.ofName[f.Name] = f, l
		out = append(out, f)
	}
	return out, nil
}

// labelFolder is the source folder a label is restored as (folders
// mode); false for the labels that have none (\Starred, \Important).
func labelFolder(l string) (Folder, bool) {
	name, su, ok := gmaillabels.Folder(l)
	return Folder{Name: name, Delim: '/', SpecialUse: su}, ok
}

// where is MessagesWhere of the source, or Messages filtered.
func (s *labeled) where(ctx context.Context, f Folder, keep func(Message) bool, fn func(Message) error) error {
	if fl, ok := s.src.(Filterer); ok {
		return fl.MessagesWhere(ctx, f, keep, fn)
	}
	return s.src.Messages(ctx, f, func(m Message) error {
		open := m.Open
		m.Open = nil
		if !keep(m) {
			return nil
		}
		m.Open = open
		return fn(m)
	})
}

func (s *labeled) Messages(ctx context.Context, f Folder, fn func(Message) error) error {
	if f.label != "" && s.copies() {
		return s.labelMessages(ctx, f.label, fn)
	}
	switch {
	case s.gmail:
		// Labels stay on the message for the STORE after its APPEND. The
		// flags are Gmail's own as archived; \Draft is stored as a label.
		return s.src.Messages(ctx, f, func(m Message) error {
			if hasLabel(m.Labels, labelStarred) {
				m.Flags = labelFlags(m.Flags, []string{labelStarred})
			}
			return fn(m)
		})
	case s.mode == LabelsNone:
		return s.src.Messages(ctx, f, fn)
	case s.mode == LabelsKeywords:
		return s.src.Messages(ctx, f, func(m Message) error {
			if m.Labels != nil {
				m.Flags = gmaillabels.WithKeywords(m.Flags, m.Labels)
			}
			return fn(m)
		})
	}
	// Folders: a folder labels are drawn from keeps the messages without
	// a user label; those with one are in their labels' folders.
	if s.byLabel == nil || !labelsFrom(f) {
		return s.src.Messages(ctx, f, func(m Message) error {
			m.Flags = labelFlags(m.Flags, m.Labels)
			return fn(m)
		})
	}
	return s.where(ctx, f, func(m Message) bool { return !hasUserLabel(m.Labels) }, func(m Message) error {
		m.Flags = labelFlags(m.Flags, m.Labels)
		return fn(m)
	})
}

// labelMessages calls fn with a copy of each message labelled l, from
// every real folder labels are drawn from.
func (s *labeled) labelMessages(ctx context.Context, l string, fn func(Message) error) error {
	for _, rf := range s.real {
		if !labelsFrom(rf) {
			continue
		}
		err := s.where(ctx, rf, func(m Message) bool { return hasLabel(m.Labels, l) }, func(m Message) error {
			key := m.Key + " label:" + l
			s.origin.Store(key, [2]string{rf.Name, m.Key})
			m.Key = key
			m.Flags = labelFlags(m.Flags, m.Labels)
			return fn(m)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// MessageName implements Namer: a label folder's copy is named as its
// message in the folder it was archived in.
func (s *labeled) MessageName(ctx context.Context, folder, key string) string {
	if o, ok := s.origin.Load(key); ok {
		folder, key = o.([2]string)[0], o.([2]string)[1]
	}
	if n, ok := s.src.(Namer); ok {
		return n.MessageName(ctx, folder, key)
	}
	return key
}

// SourceNamespace implements Namespacer for a source that does.
func (s *labeled) SourceNamespace(ctx context.Context) (string, rune, error) {
	if ns, ok := s.src.(Namespacer); ok {
		return ns.SourceNamespace(ctx)
	}
	return "", 0, nil
}
