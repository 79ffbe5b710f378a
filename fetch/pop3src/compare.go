package pop3src

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Diff is a POP3 mailbox compared with its archive, by UIDL.
type Diff struct {
	ServerMessages int
	New            []string // UIDLs on the server that the archive lacks
	Gone           []string // UIDLs of live catalogued messages the server no longer has
}

// Compare logs in, lists the mailbox's UIDLs (or header checksums with
// opt.NoUIDL) and compares them with the catalog's INBOX. It only reads:
// no RETR, no DELE, and QUIT ends the session.
func Compare(ctx context.Context, cat *catalog.Catalog, opt Options) (Diff, error) {
	var d Diff
	s, err := open(ctx, opt)
	if err != nil {
		return d, err
	}
	defer s.c.Close()
	list, ids := s.list, s.ids
	d.ServerMessages = len(list)
	known := map[string]bool{} // UIDL -> live
	f, err := cat.Folder(ctx, Folder)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
	case err != nil:
		return d, err
	default:
		deleted, err := cat.Deleted(ctx, f.ID)
		if err != nil {
			return d, fmt.Errorf("folder %s: %w", Folder, err)
		}
		// Messages mailkeep deleted from the server are not "gone".
		err = cat.Each(ctx, f.ID, func(m *catalog.Message) error {
			known[m.UIDL] = known[m.UIDL] || (m.ExpungedRun == 0 && deleted[m.ID] == 0)
			return nil
		})
		if err != nil {
			return d, fmt.Errorf("folder %s: %w", Folder, err)
		}
	}
	onServer := map[string]bool{}
	for _, mi := range list {
		u := ids[mi.ID]
		onServer[u] = true
		if _, ok := known[u]; !ok {
			d.New = append(d.New, u)
		}
	}
	for u, live := range known {
		if live && !onServer[u] {
			d.Gone = append(d.Gone, u)
		}
	}
	slices.Sort(d.New)
	slices.Sort(d.Gone)
	return d, s.quit(ctx)
}
