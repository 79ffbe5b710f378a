package archivesrc

import (
	"fmt"

	"github.com/mailkeep/mailkeep/restore"
)

// RestoredIn implements restore.Lister: the catalog's record of what was
// restored to dest's folder, which the engine checks on the destination.
func (s *Source) RestoredIn(dest restore.Destination, folder string) (map[string]restore.Restored, error) {
	recs, err := s.a.Cat.RestoredIn(dest.Server, dest.User, folder)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	out := make(map[string]restore.Restored, len(recs))
	for _, r := range recs {
		out[r.Key] = restore.Restored{Folder: r.Folder, UIDValidity: r.UIDValidity, UID: r.UID}
	}
	return out, nil
}

var _ restore.Lister = (*Source)(nil)
