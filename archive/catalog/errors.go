package catalog

import (
	"errors"
	"fmt"
)

// ErrDamaged is wrapped by errors that SQLite gives for a damaged database
// file ("database disk image is malformed", "file is not a database").
// mailkeep reindex rebuilds such a catalog from the journal and the files.
var ErrDamaged = errors.New("the catalog is damaged")

// SQLite's primary result codes for a damaged file.
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// Classify wraps err with ErrDamaged when SQLite says the file is damaged.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrDamaged) {
		return err
	}
	var se interface{ Code() int }
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteCorrupt, sqliteNotADB:
			return fmt.Errorf("%w: %w", ErrDamaged, err)
		}
	}
	return err
}

func (c *Catalog) classify(err error) error { return Classify(err) }
