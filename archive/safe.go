package archive

import (
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// ErrUnsafePath is matched (errors.Is) by the error of any step that met a
// symlink or a special file (FIFO, device, socket) inside the archive
// directory: mailkeep never follows or opens one there. errors.As with a
// *safefs.UnsafeError gives the path and what it is.
var ErrUnsafePath = safefs.ErrUnsafe

// ErrReadOnly ("cannot write here") is matched by the error of a writing
// Open (backup, restore's record) on an archive that cannot be written: a
// read-only mount, a snapshot, a backup disk, another user's directory. It
// wraps the errno (EROFS, EACCES, EPERM). Reading commands open such an
// archive with Options.ReadOnly and work.
var ErrReadOnly = safefs.ErrReadOnly

// ErrNotCatalog is catalog.ErrNotCatalog: the catalog file is not a
// mailkeep catalog.
var ErrNotCatalog = catalog.ErrNotCatalog
