package archivesrc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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

// MessageName implements restore.Namer: "UID 4711" (with its UIDVALIDITY
// when the folder's is another now), or "UIDL ..." for a POP3 archive, as
// `mailkeep cat FOLDER UID` takes them; the key when the catalog does not
// know it.
func (s *Source) MessageName(folder, key string) string {
	id, err := strconv.ParseInt(strings.TrimPrefix(key, "msg:"), 10, 64)
	if err != nil || !strings.HasPrefix(key, "msg:") {
		return key
	}
	m, err := s.a.Cat.MessageByID(id)
	if err != nil {
		return key
	}
	if m.UIDL != "" {
		return "UIDL " + m.UIDL
	}
	name := "UID " + strconv.FormatUint(uint64(m.UID), 10)
	if f, err := s.a.Cat.Folder(folder); err == nil && f.UIDValidity != m.UIDValidity {
		name += " (UIDVALIDITY " + strconv.FormatUint(uint64(m.UIDValidity), 10) + ")"
	}
	return name
}

var (
	_ restore.Namer      = (*Source)(nil)
	_ restore.Namespacer = (*Source)(nil)
)

// SourceNamespace implements restore.Namespacer: the personal namespace
// the backup recorded (catalog meta source_namespace), else, for archives
// from before it was recorded, inferred from the folder names: "INBOX"
// and the delimiter when every folder but INBOX is below INBOX (Cyrus,
// Courier), "" otherwise.
func (s *Source) SourceNamespace(ctx context.Context) (string, rune, error) {
	return s.a.SourceNamespace()
}
