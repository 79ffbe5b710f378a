package archivesrc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/restore"
)

// RestoredIn implements restore.Lister: the catalog's record of what was
// restored to dest's folder, which the engine checks on the destination.
func (s *Source) RestoredIn(ctx context.Context, dest restore.Destination, folder string) (map[string]restore.Restored, error) {
	recs, err := s.a.Cat.RestoredIn(ctx, dest.Server, dest.User, folder)
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

// MessageName implements restore.Namer: the message's archive.Ref name,
// "UID 4711" (with its UIDVALIDITY when the folder's is another now), or
// "UIDL ..." for a POP3 archive, as `mailkeep show FOLDER UID` takes them.
// Never the key (a catalog row id the user cannot find a message by):
// when the catalog cannot say, the name says that.
func (s *Source) MessageName(ctx context.Context, folder, key string) string {
	id, err := strconv.ParseInt(strings.TrimPrefix(key, "msg:"), 10, 64)
	if err != nil || !strings.HasPrefix(key, "msg:") {
		return "(not an archive message key)"
	}
	m, err := s.a.Cat.MessageByID(ctx, id)
	if err != nil {
		return fmt.Sprintf("(not found in the catalog: %v)", err)
	}
	ref := archive.RefTo("", folder, m)
	f, err := s.a.Cat.Folder(ctx, folder)
	if err == nil && f.ID != m.FolderID {
		// A frozen folder's message read through All Mail (frozen.go):
		// named in its own folder, where `mailkeep show` finds it.
		return s.frozenName(ctx, m)
	}
	if err == nil && f.UIDValidity == m.UIDValidity {
		ref.UIDValidity = 0 // the folder's own: not worth saying
	}
	return ref.Message()
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
	return s.a.SourceNamespace(ctx)
}
