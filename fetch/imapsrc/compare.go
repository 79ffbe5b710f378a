package imapsrc

import (
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// FolderDiff is one folder's catalog compared with the server.
type FolderDiff struct {
	Folder string
	// OnServer and InArchive say where the folder exists (InArchive: a
	// catalogued folder not recorded as gone from the server).
	OnServer, InArchive bool
	// ServerValidity and ArchiveValidity are the folders' UIDVALIDITY.
	// When they differ the UIDs are not compared.
	ServerValidity, ArchiveValidity uint32
	// ServerMessages is the folder's message count on the server.
	ServerMessages uint32
	// New holds the UIDs on the server that the archive lacks; Gone the
	// UIDs of live catalogued messages that the server no longer has.
	New, Gone []uint32
	// Err is set when the folder could not be compared.
	Err error
}

// Differs reports whether the folder differs between archive and server.
func (d *FolderDiff) Differs() bool {
	return d.Err != nil || d.OnServer != d.InArchive || len(d.New) > 0 || len(d.Gone) > 0 ||
		d.OnServer && d.InArchive && d.ServerValidity != d.ArchiveValidity
}

// Compare lists the server's folders (those opt.Folders and opt.Exclude
// select) and compares each with the catalog: UIDVALIDITY, the UIDs the
// archive lacks, and the live catalogued messages the server no longer
// has. It only reads: folders are EXAMINEd, never SELECTed, and nothing is
// stored. Per folder it costs the LIST's STATUS, an EXAMINE and one UID
// SEARCH. A folder that cannot be compared has Err set; an error return
// means nothing could be compared (connection, login, LIST).
func Compare(ctx context.Context, cat *catalog.Catalog, opt Options) ([]*FolderDiff, error) {
	s, err := open(ctx, nil, 0, opt, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	b, c, jobs, sel := s.b, s.c, s.jobs, s.sel
	known, err := cat.Folders(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*catalog.Folder{}
	for _, f := range known {
		byName[f.Name] = f
	}
	var out []*FolderDiff
	for _, fe := range b.stats.Failures { // STATUS failures
		d := &FolderDiff{OnServer: true, Err: fe}
		if me, ok := fe.(*archive.MessageError); ok {
			d.Folder, d.Err = me.Folder, me.Err
		}
		out = append(out, d)
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		name := normInbox(j.list.Mailbox, j.list.Delim)
		seen[name] = true
		if f := byName[name]; f != nil && f.IsView() {
			continue // a Gmail label: its messages are All Mail's, compared there
		}
		d, err := compareFolder(ctx, c, cat, j, byName[name])
		if err != nil {
			return out, err
		}
		d.Folder = name
		out = append(out, d)
	}
	for _, f := range known {
		if !seen[f.Name] && f.GoneRun == 0 && !f.IsFrozen() && sel.Match(folderPath(f)) {
			d := &FolderDiff{Folder: f.Name, InArchive: true, ArchiveValidity: f.UIDValidity}
			if d.Gone, err = liveUIDs(ctx, cat, f, f.UIDValidity); err != nil {
				return out, err
			}
			out = append(out, d)
		}
	}
	if c.State() != imap.ConnStateLogout {
		_ = c.Logout().Wait()
	}
	slices.SortFunc(out, func(x, y *FolderDiff) int {
		switch {
		case x.Folder < y.Folder:
			return -1
		case x.Folder > y.Folder:
			return 1
		}
		return 0
	})
	return out, nil
}

// compareFolder compares one server folder with its catalog entry (nil:
// never archived). A returned error is the connection's or the catalog's;
// a folder the server refuses to EXAMINE gets Err.
func compareFolder(ctx context.Context, c *imapclient.Client, cat *catalog.Catalog, j *folderJob, f *catalog.Folder) (*FolderDiff, error) {
	d := &FolderDiff{OnServer: true}
	if f != nil && f.GoneRun == 0 {
		d.InArchive, d.ArchiveValidity = true, f.UIDValidity
	}
	sel, err := c.Select(j.list.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if ctx.Err() != nil || isClosed(c) {
			return d, fmt.Errorf("folder %q: EXAMINE: %w", j.list.Mailbox, err)
		}
		d.Err = fmt.Errorf("EXAMINE: %w", err)
		return d, nil
	}
	d.ServerValidity, d.ServerMessages = sel.UIDValidity, sel.NumMessages
	var server []uint32
	if sel.NumMessages > 0 {
		res, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return d, fmt.Errorf("folder %q: UID SEARCH: %w", j.list.Mailbox, err)
		}
		for _, u := range res.AllUIDs() {
			server = append(server, uint32(u))
		}
	}
	var archived []uint32
	if f != nil {
		// Messages of a folder once gone and now back, or stored under an
		// older UIDVALIDITY, do not count: a backup fetches them again.
		if archived, err = liveUIDs(ctx, cat, f, sel.UIDValidity); err != nil {
			return d, err
		}
	}
	if d.InArchive && d.ServerValidity != d.ArchiveValidity {
		return d, nil
	}
	d.New, d.Gone = diffSorted(server, archived)
	return d, nil
}

// liveUIDs returns the UIDs of a folder's live messages stored under
// uidValidity, sorted.
func liveUIDs(ctx context.Context, cat *catalog.Catalog, f *catalog.Folder, uidValidity uint32) ([]uint32, error) {
	var out []uint32
	err := cat.Each(ctx, f.ID, func(m *catalog.Message) error {
		if m.ExpungedRun == 0 && m.UID != 0 && m.UIDValidity == uidValidity {
			out = append(out, m.UID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("folder %q: %w", f.Name, err)
	}
	slices.Sort(out)
	return out, nil
}

// diffSorted returns what only a has and what only b has.
func diffSorted(a, b []uint32) (onlyA, onlyB []uint32) {
	slices.Sort(a)
	slices.Sort(b)
	i, k := 0, 0
	for i < len(a) || k < len(b) {
		switch {
		case k == len(b) || i < len(a) && a[i] < b[k]:
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[k] < a[i]:
			onlyB = append(onlyB, b[k])
			k++
		default:
			i++
			k++
		}
	}
	return onlyA, onlyB
}

// UIDRanges writes UIDs compactly, IMAP style: "3:7,9,12:13".
func UIDRanges(uids []uint32) string {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set.String()
}
