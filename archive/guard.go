package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// ErrNeedsReindex is wrapped by Open's error when the directory holds mail
// files but its catalog is missing, empty or damaged. Nothing was changed:
// "mailkeep reindex" rebuilds the catalog from the journal and the files.
var ErrNeedsReindex = errors.New("the catalog must be rebuilt")

// CatalogError says what is wrong with an archive's catalog and what to run.
type CatalogError struct {
	Dir     string
	Problem string // "missing", "empty", "damaged", "new beside existing mail"
	Err     error  // the underlying error, if any
}

func (e *CatalogError) Error() string {
	s := fmt.Sprintf("archive %s holds mail but its catalog is %s", e.Dir, e.Problem)
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s + fmt.Sprintf(`: nothing was changed; run "mailkeep reindex --archive %s" to rebuild the catalog from the journal and the mail files`, e.Dir)
}

func (e *CatalogError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNeedsReindex, e.Err}
	}
	return []error{ErrNeedsReindex}
}

// JournalName is the catalog's journal in an archive directory.
const JournalName = "catalog.journal"

// hasMail reports whether dir holds anything an archive run wrote besides
// the catalog: a journal with content, or anything under mbox/ or maildir/.
func hasMail(dir string) (bool, error) {
	if fi, err := os.Lstat(filepath.Join(dir, JournalName)); err == nil && fi.Size() > 0 {
		return true, nil
	}
	for _, sub := range []string{"mbox", "maildir"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return true, fmt.Errorf("archive %s: %w", dir, err)
		}
		if len(ents) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// checkCatalogFile refuses to go on when the catalog file is missing or
// empty while the directory holds mail: a new catalog would not know the
// mail, and a run would cut off or re-fetch what only the archive holds.
func checkCatalogFile(dir, dbPath string) error {
	fi, err := os.Lstat(dbPath)
	problem := ""
	switch {
	case errors.Is(err, os.ErrNotExist):
		problem = "missing"
	case err != nil:
		return fmt.Errorf("archive %s: %w", dir, err)
	case fi.Mode().IsRegular() && fi.Size() == 0:
		problem = "empty"
	default:
		return nil
	}
	mail, err := hasMail(dir)
	if err != nil {
		return err
	}
	if mail {
		return &CatalogError{Dir: dir, Problem: problem}
	}
	return nil
}

// catalogFailure turns an error from opening or reading the catalog into a
// CatalogError when SQLite says the file is damaged.
func catalogFailure(dir string, err error) error {
	if errors.Is(catalog.Classify(err), catalog.ErrDamaged) {
		return &CatalogError{Dir: dir, Problem: "damaged", Err: err}
	}
	return fmt.Errorf("archive %s: %w", dir, err)
}
