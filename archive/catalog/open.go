package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// ErrNotCatalog is returned (wrapped) by Open and OpenReadOnly when the file
// is not a mailkeep catalog: not an SQLite database, or one without
// mailkeep's schema.
var ErrNotCatalog = errors.New("not a mailkeep catalog")

// ErrReadOnly is returned (wrapped) when the catalog's directory or file
// cannot be written (a read-only mount, a snapshot, another user's
// archive) and the caller wanted to write. It is safefs.ErrReadOnly, so
// errors.Is matches the same "cannot write here" everywhere.
var ErrReadOnly = safefs.ErrReadOnly

// sidecars are the files SQLite keeps beside the database.
var sidecars = []string{"-wal", "-shm", "-journal"}

// checkFiles refuses a catalog, -wal, -shm or -journal that is a symlink or
// a special file (SQLite opens them by name and would follow a link). It
// returns the lstat of the database (nil when absent) and of the -wal and
// -shm files.
func checkFiles(path string) (db, wal, shm fs.FileInfo, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	stat := func(name string) (fs.FileInfo, error) {
		fi, err := safefs.StatRegular(dir, name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return fi, err
	}
	if db, err = stat(base); err != nil {
		return nil, nil, nil, err
	}
	for _, s := range sidecars {
		fi, err := stat(base + s)
		if err != nil {
			return nil, nil, nil, err
		}
		switch s {
		case "-wal":
			wal = fi
		case "-shm":
			shm = fi
		}
	}
	return db, wal, shm, nil
}

// classify turns an SQLite error from the first query into the typed
// errors callers tell apart. reading: the query was the read of the
// schema version, so SQLITE_ERROR ("no such table: meta") means an SQLite
// file of another program.
func classify(err error, ro error, reading bool) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code() & 0xff; {
		case code == sqlite3.SQLITE_NOTADB, code == sqlite3.SQLITE_CORRUPT, code == sqlite3.SQLITE_ERROR && reading:
			return fmt.Errorf("%w: %w", ErrNotCatalog, err)
		case code == sqlite3.SQLITE_READONLY, code == sqlite3.SQLITE_CANTOPEN, code == sqlite3.SQLITE_PERM, code == sqlite3.SQLITE_AUTH:
			if ro != nil {
				return fmt.Errorf("%w: %w", ro, err)
			}
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no schema version", ErrNotCatalog)
	}
	return err
}

// Open opens or creates the catalog at path for writing. The database file
// is created 0600 (O_CREATE|O_EXCL|O_NOFOLLOW) before SQLite opens it, so
// that SQLite gives its -wal and -shm the same mode whatever the umask; an
// existing catalog (and -wal, -shm) readable by others, left by an older
// mailkeep, is made 0600. A symlink or special file as the catalog or one
// of its sidecar files is refused (*safefs.UnsafeError). A directory that
// cannot be written gives an error wrapping ErrReadOnly, a file that is
// not a catalog one wrapping ErrNotCatalog.
func Open(path string) (*Catalog, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	db, _, _, err := checkFiles(path)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	if db == nil {
		f, err := safefs.OpenFile(dir, base, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", path, err)
		}
		f.Close()
	} else if err := writable(dir, path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	for _, name := range []string{base, base + "-wal", base + "-shm"} {
		if err := fixMode(dir, name); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL: every write transaction is made durable by the journal
	// (fsynced before the commit, see journal.go), which is replayed when
	// a crash cost the WAL its last commits; the WAL itself stays
	// consistent. So a journaled commit is durable when it returns (POP3
	// deletion relies on it) at the cost of one fsync, not two.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	c := &Catalog{db: sdb, path: path}
	if err := c.init(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, classify(err, nil, false))
	}
	return c, nil
}

// fixMode makes an existing file dir/name 0600 (a catalog from before
// mailkeep forced the mode). A missing file is fine.
func fixMode(dir, name string) error {
	f, err := safefs.OpenFile(dir, name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm() == 0o600 {
		return nil
	}
	if err := f.Chmod(0o600); err != nil {
		if safefs.IsReadOnlyErrno(err) {
			return &safefs.ReadOnlyError{Op: "chmod", Path: filepath.Join(dir, name), Err: err}
		}
		return err
	}
	return nil
}

// OpenReadOnly opens an existing catalog for reading only (ls, cat, check,
// verify, export, metrics). It starts no write transaction, so it never
// waits for a backup that is committing in another process: WAL readers
// see the last commit. Writes through it fail (query_only).
//
// On a medium it cannot write (a read-only mount, a snapshot, a backup
// disk, another user's archive) SQLite cannot create the -shm file a WAL
// reader needs, so:
//   - with no -wal file or an empty one (the last writer closed cleanly,
//     everything is in the database file) it opens the file immutable;
//   - with a -wal holding commits and its -shm beside it (a copy or
//     snapshot of a live or killed run), SQLite reads both read-only;
//   - with a -wal holding commits and no -shm it refuses, wrapping
//     ErrReadOnly, rather than open the database without those commits.
//
// A missing file is an error wrapping fs.ErrNotExist, a file that is not a
// catalog one wrapping ErrNotCatalog; symlinks and special files are
// refused (*safefs.UnsafeError). It never creates the catalog.
func OpenReadOnly(path string) (*Catalog, error) {
	dir := filepath.Dir(path)
	db, wal, shm, err := checkFiles(path)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	if db == nil {
		return nil, fmt.Errorf("catalog %s: %w", path, fs.ErrNotExist)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	ro := writable(dir, path)
	if ro != nil {
		switch {
		case wal == nil || wal.Size() == 0:
			// Nothing committed outside the database file: no lock or
			// -shm needed, and none can be made.
			q.Set("immutable", "1")
			q.Set("mode", "ro")
		case shm != nil:
			q.Set("mode", "ro")
		default:
			return nil, fmt.Errorf("catalog %s: %w: its -wal holds %d bytes of commits and there is no -shm beside it, which SQLite needs to read them; copy the archive to writable storage and read it there", path, ro, wal.Size())
		}
	}
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	c := &Catalog{db: sdb, path: path}
	var v string
	if err := sdb.QueryRow(`SELECT value FROM meta WHERE key='schema_version'`).Scan(&v); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, classify(err, ro, true))
	}
	if n, _ := strconv.Atoi(v); n > schemaVersion {
		sdb.Close()
		return nil, fmt.Errorf("catalog %s: schema version %d is newer than this mailkeep understands (%d)", path, n, schemaVersion)
	}
	if err := c.detectSchema(context.Background()); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, classify(err, ro, false))
	}
	return c, nil
}
