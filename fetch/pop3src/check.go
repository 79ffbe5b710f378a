package pop3src

import (
	"context"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
)

// Check logs in and says what a backup would fetch: the messages whose
// UIDL the archive lacks. cat may be nil (no archive yet); nothing is
// written and nothing is deleted (QUIT without DELE).
func Check(ctx context.Context, cat *catalog.Catalog, opt Options) (fetch.Check, error) {
	var out fetch.Check
	s, err := open(ctx, opt)
	if err != nil {
		return out, err
	}
	defer s.c.Close()
	list, ids := s.list, s.ids
	fc := fetch.FolderCheck{Folder: Folder, Server: len(list)}
	known := map[string]bool{}
	if cat != nil {
		if f, err := cat.Folder(ctx, Folder); err == nil {
			all, err := cat.All(ctx, f.ID)
			if err != nil {
				return out, err
			}
			deleted, err := cat.Deleted(ctx, f.ID) // deleted by mailkeep: still archived
			if err != nil {
				return out, err
			}
			for _, m := range all {
				known[m.UIDL] = true
				if deleted.ExpungedRun(m) == 0 {
					fc.Archived++
				}
			}
		}
	}
	if len(known) == 0 {
		fc.Note = "new archive"
	}
	for _, mi := range list {
		if !known[ids[mi.ID]] {
			fc.New++
			fc.NewBytes += mi.Size
		}
	}
	out.Folders = append(out.Folders, fc)
	return out, s.quit(ctx)
}
