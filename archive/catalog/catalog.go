// Package catalog is mailkeep's record of what an archive holds: every
// folder, every message (where it lives, its checksum, flags and dates) and
// every run. It is a SQLite database (pure Go, modernc.org/sqlite) that users
// can also open with sqlite3; see README.md for the schema.
//
// The catalog is only ever told about data that is already durable on disk,
// so a crash leaves the catalog behind the data, never ahead of it.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailkeep/mailkeep/archive/journal"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a folder or message is not in the catalog.
var ErrNotFound = errors.New("not in the catalog")

// Catalog is an open catalog database. Its methods are safe for concurrent
// use; writes are serialised.
type Catalog struct {
	db   *sql.DB
	path string
	mu   sync.Mutex // serialises write transactions

	jw       *journal.Writer // the redo log, when attached (writing opens)
	poisoned error           // set when a journaled transaction failed to commit

	// stmts caches the prepared read statements of the per-folder queries
	// (query text -> *sql.Stmt): parsing the SQL cost more than running
	// it, 2,000 times over for ls, verify or a no-op backup of 2,000
	// folders.
	stmts sync.Map
	// deletedRun caches hasDeletedRun: 0 unknown, 1 yes, 2 no.
	deletedRun atomic.Int32
	// v4 is set when messages has schema 4's columns (sender_id,
	// date_zone): always after Open, which migrates; OpenReadOnly reads
	// older catalogs as they are.
	v4 bool
	// v5 is set when messages and folders have schema 5's Gmail columns.
	v5 bool
	// runStarts caches runStarted.
	runStarts sync.Map

	// gen counts the write transactions ended (committed or not); folders
	// caches the Folders list read at generation foldersGen, so that the
	// open's repair and the backup's plan read the table once (a no-op
	// backup of 2,000 folders). Only a writing open (journal attached,
	// archive locked) caches: a reader may share the file with a writer
	// in another process.
	cacheFolders atomic.Bool
	gen          atomic.Uint64
	foldersMu    sync.Mutex
	folders      []Folder
	foldersGen   uint64
	foldersOK    bool

	// views caches the label folders of a writing open (views.go).
	viewsMu  sync.Mutex
	views    map[int64]viewInfo
	viewsGen uint64
	viewsOK  bool
}

// detectSchema sets c.v4 from the messages table's columns.
func (c *Catalog) detectSchema(ctx context.Context) error {
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='sender_id'`).Scan(&n); err != nil {
		return err
	}
	c.v4 = n > 0
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='gm_msgid'`).Scan(&n); err != nil {
		return err
	}
	c.v5 = n > 0
	return nil
}

// prepared returns the cached prepared statement of the read query q.
func (c *Catalog) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := c.stmts.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.stmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// queryRow is db.QueryRow through the statement cache.
func (c *Catalog) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := c.prepared(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, q, args...) // the same error, as a Row
	}
	return s.QueryRowContext(ctx, args...)
}

func (c *Catalog) init() error {
	// One connection with foreign keys off for the migrations (migrate4
	// drops the old messages table under flag_history's references);
	// foreign_key_check proves the result before the commit.
	ctx := context.Background()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys=OFF`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `PRAGMA foreign_keys=ON`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(schema); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	var v string
	err = tx.QueryRow(`SELECT value FROM meta WHERE key='schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES('schema_version',?)`, strconv.Itoa(schemaVersion)); err != nil {
			return err
		}
		if _, err := tx.Exec(postMigration); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		n, _ := strconv.Atoi(v)
		if n > schemaVersion {
			return fmt.Errorf("schema version %d is newer than this mailkeep understands (%d)", n, schemaVersion)
		}
		if err := migrate(tx, n); err != nil {
			return err
		}
		if n < schemaVersion {
			if _, err := tx.Exec(postMigration); err != nil {
				return fmt.Errorf("migrating to schema %d: %w", schemaVersion, err)
			}
			var table string
			err := tx.QueryRow(`SELECT "table" FROM pragma_foreign_key_check LIMIT 1`).Scan(&table)
			if err == nil {
				return fmt.Errorf("migrating to schema %d: a row of %s refers to a missing row", schemaVersion, table)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("migrating to schema %d: %w", schemaVersion, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return c.detectSchema(ctx)
}

// Path returns the database file's path.
func (c *Catalog) Path() string { return c.path }

// Close closes the database.
func (c *Catalog) Close() error {
	c.mu.Lock()
	if c.jw != nil {
		c.jw.Close()
		c.jw = nil
	}
	c.mu.Unlock()
	c.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		c.stmts.Delete(k)
		return true
	})
	return c.db.Close()
}

// DB gives read access for ad-hoc queries (tests, verify).
func (c *Catalog) DB() *sql.DB { return c.db }

// Meta returns a meta value, "" when unset.
func (c *Catalog) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetMeta sets a meta value.
func (c *Catalog) SetMeta(ctx context.Context, key, value string) error {
	return c.write(ctx, func(tx *wtx) error {
		_, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, key, value)
		tx.touchMeta(key)
		return err
	})
}

// Run is one run's record.
type Run struct {
	ID          int64
	Kind        string
	Source      string
	Started     time.Time
	Ended       time.Time // zero while running or after a crash
	Outcome     string
	Fetched     int
	Bytes       int64
	FlagChanges int
	Expunged    int
	Rekeyed     int
	Deleted     int
	Failed      int
	Error       string
}

// BeginRun records the start of a run and returns its id.
func (c *Catalog) BeginRun(ctx context.Context, kind, source string, now time.Time) (int64, error) {
	var id int64
	err := c.write(ctx, func(tx *wtx) error {
		res, err := tx.Exec(`INSERT INTO runs(kind,source,started) VALUES(?,?,?)`, kind, source, fmtTime(now.UTC()))
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		tx.touch("runs", id)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: begin run: %w", err)
	}
	return id, nil
}

// EndRun records a run's end, outcome and counts.
func (c *Catalog) EndRun(ctx context.Context, r Run) error {
	err := c.write(ctx, func(tx *wtx) error {
		_, err := tx.Exec(`UPDATE runs SET ended=?, outcome=?, fetched=?, bytes=?, flag_changes=?, expunged=?, rekeyed=?, deleted=?, failed=?, error=? WHERE id=?`,
			fmtTime(r.Ended.UTC()), r.Outcome, r.Fetched, r.Bytes, r.FlagChanges, r.Expunged, r.Rekeyed, r.Deleted, r.Failed, nullStr(r.Error), r.ID)
		tx.touch("runs", r.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("catalog: end run %d: %w", r.ID, err)
	}
	return nil
}

// CloseKilledRuns records runs that never ended (the process was killed) as
// "killed" and returns how many there were. Call it only while holding the
// archive lock.
func (c *Catalog) CloseKilledRuns(ctx context.Context) (int, error) {
	var n int
	err := c.write(ctx, func(tx *wtx) error {
		ids, err := tx.selectIDs(`SELECT id FROM runs WHERE ended IS NULL AND (outcome IS NULL OR outcome<>'killed')`)
		if err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.Exec(`UPDATE runs SET outcome='killed' WHERE ended IS NULL AND (outcome IS NULL OR outcome<>'killed')`); err != nil {
			return err
		}
		tx.touch("runs", ids...)
		n = len(ids)
		return nil
	})
	return n, err
}

// UnfinishedSince returns the start of the earliest run that neither ended
// nor was yet recorded as killed (a run killed since the archive was last
// opened for writing), or the zero time when there is none.
func (c *Catalog) UnfinishedSince(ctx context.Context) (time.Time, error) {
	var s sql.NullString
	if err := c.db.QueryRowContext(ctx, `SELECT MIN(started) FROM runs WHERE ended IS NULL AND (outcome IS NULL OR outcome<>'killed')`).Scan(&s); err != nil {
		return time.Time{}, c.classify(err)
	}
	return parseTime(s.String), nil
}

// Runs lists runs, oldest first.
func (c *Catalog) Runs(ctx context.Context) ([]Run, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id,kind,source,started,COALESCE(ended,''),COALESCE(outcome,''),fetched,bytes,flag_changes,expunged,rekeyed,deleted,failed,COALESCE(error,'') FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var st, en string
		if err := rows.Scan(&r.ID, &r.Kind, &r.Source, &st, &en, &r.Outcome, &r.Fetched, &r.Bytes, &r.FlagChanges, &r.Expunged, &r.Rekeyed, &r.Deleted, &r.Failed, &r.Error); err != nil {
			return nil, err
		}
		r.Started = parseTime(st)
		r.Ended = parseTime(en)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Folder is a catalogued folder.
type Folder struct {
	ID            int64
	Name          string
	Delim         rune
	SpecialUse    string
	Path          string
	UIDValidity   uint32
	UIDNext       uint32
	Messages      uint32
	HighestModSeq uint64
	LastUID       uint32
	CommittedSize int64
	GoneRun       int64
	// Label and ViewOf (schema 5): a Gmail label shown as a folder. Such
	// a folder has no messages rows or file of its own: it shows the
	// messages of folder ViewOf (All Mail) whose labels hold Label.
	Label  string
	ViewOf int64
}

// IsView reports whether f is a Gmail label shown over another folder's
// messages rather than a folder with messages of its own.
func (f *Folder) IsView() bool { return f.ViewOf != 0 }

// folderCols are the columns scanFolder reads; before schema 5 (a
// read-only open of an older catalog) the Gmail ones read as none.
const (
	folderCols5 = `id,name,delim,special_use,path,uidvalidity,uidnext,messages,highestmodseq,last_uid,committed_size,COALESCE(gone_run,0),COALESCE(label,''),COALESCE(view_of,0)`
	folderCols4 = `id,name,delim,special_use,path,uidvalidity,uidnext,messages,highestmodseq,last_uid,committed_size,COALESCE(gone_run,0),'',0`
)

func (c *Catalog) folderCols() string {
	if c.v5 {
		return folderCols5
	}
	return folderCols4
}

func scanFolder(s interface{ Scan(...any) error }) (*Folder, error) {
	var f Folder
	var delim string
	var n [8]any // integers as the driver gives them (see i64)
	err := s.Scan(&f.ID, &f.Name, &delim, &f.SpecialUse, &f.Path, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &f.Label, &n[7])
	if err != nil {
		return nil, err
	}
	f.UIDValidity, f.UIDNext, f.Messages = uint32(i64(n[0])), uint32(i64(n[1])), uint32(i64(n[2]))
	f.HighestModSeq, f.LastUID, f.CommittedSize, f.GoneRun = uint64(i64(n[3])), uint32(i64(n[4])), i64(n[5]), i64(n[6])
	f.ViewOf = i64(n[7])
	for _, r := range delim {
		f.Delim = r
		break
	}
	return &f, nil
}

// Folders lists all catalogued folders by name. Each call returns its own
// copies; the list is read from the table again only after a write.
func (c *Catalog) Folders(ctx context.Context) ([]*Folder, error) {
	if !c.cacheFolders.Load() {
		list, err := c.readFolders(ctx)
		if err != nil {
			return nil, err
		}
		return copyFolders(list), nil
	}
	g := c.gen.Load()
	c.foldersMu.Lock()
	if c.foldersOK && c.foldersGen == g {
		out := copyFolders(c.folders)
		c.foldersMu.Unlock()
		return out, nil
	}
	c.foldersMu.Unlock()
	list, err := c.readFolders(ctx)
	if err != nil {
		return nil, err
	}
	c.foldersMu.Lock()
	c.folders, c.foldersGen, c.foldersOK = list, g, true
	c.foldersMu.Unlock()
	return copyFolders(list), nil
}

// copyFolders returns pointers to a copy of list, in one allocation.
func copyFolders(list []Folder) []*Folder {
	if len(list) == 0 {
		return nil
	}
	cp := slices.Clone(list)
	out := make([]*Folder, len(cp))
	for i := range cp {
		out[i] = &cp[i]
	}
	return out
}

// readFolders reads the folders table, ordered by name. The table is
// read in row order and sorted here: ORDER BY name walked the name index
// and looked each row up, the most of the cost for thousands of folders.
// Go compares strings byte by byte, as SQLite's BINARY collation of the
// (UTF-8, unique) name column does.
func (c *Catalog) readFolders(ctx context.Context) ([]Folder, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+c.folderCols()+` FROM folders`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Folder
	for rows.Next() {
		f, err := scanFolder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Folder) int { return strings.Compare(a.Name, b.Name) })
	resolveViews(out)
	return out, nil
}

// Folder returns the folder with the given name, or ErrNotFound.
func (c *Catalog) Folder(ctx context.Context, name string) (*Folder, error) {
	f, err := scanFolder(c.queryRow(ctx, `SELECT `+c.folderCols()+` FROM folders WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("folder %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return f, c.resolveView(ctx, f)
}

// Unchanged reports whether EnsureFolder would return f as it is for the
// server's folder of f's name with this delimiter and special use: it has
// them, and it is not marked gone. A caller holding a fresh Folders list
// can skip EnsureFolder for such folders (a no-op backup of thousands of
// folders).
func (f *Folder) Unchanged(delim rune, specialUse string) bool {
	return f.Delim == delim && f.SpecialUse == specialUse && f.GoneRun == 0
}

// EnsureFolder returns the folder named name, creating it with the given
// delimiter, special use and archive path when new. A known folder keeps its
// path; its delimiter and special use are updated.
func (c *Catalog) EnsureFolder(ctx context.Context, name string, delim rune, specialUse, path string) (*Folder, error) {
	d := ""
	if delim != 0 {
		d = string(delim)
	}
	// The common case, a known folder that did not change, reads only.
	if f, err := c.Folder(ctx, name); err == nil && f.Unchanged(delim, specialUse) {
		return f, nil
	}
	err := c.write(ctx, func(tx *wtx) error {
		var old Folder
		var od string
		var gone sql.NullInt64
		err := tx.QueryRow(`SELECT id, delim, special_use, gone_run FROM folders WHERE name=?`, name).Scan(&old.ID, &od, &old.SpecialUse, &gone)
		if err == nil && od == d && old.SpecialUse == specialUse && !gone.Valid {
			return nil // unchanged: nothing to write or journal
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if errors.Is(err, sql.ErrNoRows) {
			// A folder that reindex found only in the files (its name
			// guessed from the path, never synced) takes the server's
			// name when the server's folder maps to the same path.
			var id int64
			err := tx.QueryRow(`SELECT id FROM folders WHERE path=? AND uidvalidity=0 AND last_uid=0`, path).Scan(&id)
			if err == nil {
				if _, err := tx.Exec(`UPDATE folders SET name=?, delim=?, special_use=?, gone_run=NULL WHERE id=?`, name, d, specialUse, id); err != nil {
					return err
				}
				tx.touch("folders", id)
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := tx.Exec(`INSERT INTO folders(name,delim,special_use,path) VALUES(?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET delim=excluded.delim, special_use=excluded.special_use, gone_run=NULL`, name, d, specialUse, path); err != nil {
			return err
		}
		ids, err := tx.selectIDs(`SELECT id FROM folders WHERE name=?`, name)
		tx.touch("folders", ids...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: folder %q: %w", name, err)
	}
	return c.Folder(ctx, name)
}

// SetFolderStatus records the server's view of a folder after a successful
// sync: UIDVALIDITY, UIDNEXT, MESSAGES and HIGHESTMODSEQ.
func (c *Catalog) SetFolderStatus(ctx context.Context, id int64, uidValidity, uidNext, messages uint32, highestModSeq uint64) error {
	return c.write(ctx, func(tx *wtx) error {
		res, err := tx.Exec(`UPDATE folders SET uidvalidity=?, uidnext=?, messages=?, highestmodseq=? WHERE id=? AND (uidvalidity<>? OR uidnext<>? OR messages<>? OR highestmodseq<>?)`,
			uidValidity, uidNext, messages, highestModSeq, id, uidValidity, uidNext, messages, highestModSeq)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			tx.touch("folders", id)
		}
		return nil
	})
}

// ResetValidity moves a folder to a new UIDVALIDITY in one transaction:
// the recognised messages are re-keyed, the other live ones are marked
// expunged by run, and the folder's per-UID state is cleared.
func (c *Catalog) ResetValidity(ctx context.Context, folderID, run int64, uidValidity uint32, rk []Rekey) error {
	return c.write(ctx, func(tx *wtx) error {
		ids, err := tx.selectIDs(`SELECT id FROM messages WHERE folder_id=? AND expunged_run IS NULL AND uidvalidity<>?`, folderID, uidValidity)
		if err != nil {
			return err
		}
		tx.touch("messages", ids...)
		tx.touch("folders", folderID)
		return c.resetValidity(ctx, tx, folderID, run, uidValidity, rk)
	})
}

func (c *Catalog) resetValidity(ctx context.Context, tx *wtx, folderID, run int64, uidValidity uint32, rk []Rekey) error {
	if _, err := tx.Exec(`UPDATE messages SET expunged_run=? WHERE folder_id=? AND expunged_run IS NULL AND uidvalidity<>?`, run, folderID, uidValidity); err != nil {
		return fmt.Errorf("catalog: reset uidvalidity: %w", err)
	}
	for _, r := range rk {
		tx.touch("messages", r.ID)
		tx.touchHist(r.ID, run)
		fl := JoinFlags(r.Flags)
		if err := historyBase(tx, r.ID); err != nil {
			return fmt.Errorf("catalog: rekey uid %d: %w", r.UID, err)
		}
		if _, err := tx.Exec(`UPDATE messages SET uidvalidity=?, uid=?, flags=?, modseq=?, expunged_run=NULL WHERE id=?`, uidValidity, r.UID, fl, r.ModSeq, r.ID); err != nil {
			return fmt.Errorf("catalog: rekey uid %d: %w", r.UID, err)
		}
		if _, err := tx.Exec(`INSERT OR REPLACE INTO flag_history(message,run,flags) VALUES(?,?,?)`, r.ID, run, fl); err != nil {
			return err
		}
	}
	_, err := tx.Exec(`UPDATE folders SET uidvalidity=?, uidnext=0, messages=0, highestmodseq=0, last_uid=0 WHERE id=?`, uidValidity, folderID)
	return err
}

// MarkFolderGone records that a folder no longer exists on the server and
// marks its live messages expunged by run. It returns how many it marked.
func (c *Catalog) MarkFolderGone(ctx context.Context, id, run int64) (int, error) {
	var n int
	err := c.write(ctx, func(tx *wtx) error {
		if _, err := tx.Exec(`UPDATE folders SET gone_run=? WHERE id=? AND gone_run IS NULL`, run, id); err != nil {
			return err
		}
		tx.touch("folders", id)
		ids, err := tx.selectIDs(`SELECT id FROM messages WHERE folder_id=? AND expunged_run IS NULL`, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE messages SET expunged_run=? WHERE folder_id=? AND expunged_run IS NULL`, run, id); err != nil {
			return err
		}
		tx.touch("messages", ids...)
		n = len(ids)
		return nil
	})
	return n, err
}

// Message is a catalogued message.
type Message struct {
	ID           int64
	FolderID     int64
	UIDValidity  uint32
	UID          uint32
	UIDL         string
	ModSeq       uint64
	InternalDate time.Time
	ReceivedDate time.Time
	Flags        []string
	Size         int64
	SHA256       string
	MessageID    string
	Sender       string
	Subject      string
	File         string
	FrameOffset  int64
	FramePos     int64
	StoredRun    int64
	StoredAt     time.Time
	ExpungedRun  int64
	// Gmail (schema 5): X-GM-MSGID, X-GM-THRID and X-GM-LABELS. GmailMsgID
	// is 0 for a message not from Gmail (or backed up without Gmail mode);
	// Labels then is nil.
	GmailMsgID uint64
	GmailThrID uint64
	Labels     []string
}

// msgCols are the columns scanMessage reads, in schema 4 (msgCols4) and
// before it (msgCols3, read-only opens of older catalogs).
const (
	msgCols5 = `id,folder_id,uidvalidity,uid,COALESCE(uidl,''),modseq,internal_date,date_zone,COALESCE(received_date,''),flags,size,sha256,message_id,` +
		`COALESCE((SELECT sender FROM senders WHERE senders.id=sender_id),''),subject,` + fileCol + `,frame_offset,frame_pos,stored_run,stored_at,COALESCE(expunged_run,0),` +
		`COALESCE(gm_msgid,0),COALESCE(gm_thrid,0),labels,` +
		`COALESCE((SELECT started FROM runs WHERE runs.id=stored_run),'')`
	msgCols4 = `id,folder_id,uidvalidity,uid,COALESCE(uidl,''),modseq,internal_date,date_zone,COALESCE(received_date,''),flags,size,sha256,message_id,` +
		`COALESCE((SELECT sender FROM senders WHERE senders.id=sender_id),''),subject,` + fileCol + `,frame_offset,frame_pos,stored_run,stored_at,COALESCE(expunged_run,0),` +
		`0,0,NULL,COALESCE((SELECT started FROM runs WHERE runs.id=stored_run),'')`
	msgCols3 = `id,folder_id,uidvalidity,uid,COALESCE(uidl,''),modseq,internal_date,0,COALESCE(received_date,''),flags,size,sha256,message_id,` +
		`sender,subject,` + fileCol + `,frame_offset,frame_pos,stored_run,stored_at,COALESCE(expunged_run,0),0,0,NULL,''`
)

// msgCols returns the message columns of this catalog's schema.
func (c *Catalog) msgCols() string {
	switch {
	case c.v5:
		return msgCols5
	case c.v4:
		return msgCols4
	}
	return msgCols3
}

// fileCol is a message's file: messages.file, or its folder's path where
// that is empty (mbox messages since schema 3). The folder is found by its
// primary key.
const fileCol = `COALESCE(NULLIF(file,''),(SELECT path FROM folders WHERE folders.id=folder_id))`

func (c *Catalog) scanMessage(ctx context.Context, s interface{ Scan(...any) error }, extra ...any) (*Message, error) {
	var m Message
	var rdate, flags, started string
	var idate, sha, sat any
	var labels sql.NullString
	var n [11]any // integers as the driver gives them (see i64)
	err := s.Scan(append([]any{&m.ID, &m.FolderID, &n[0], &n[1], &m.UIDL, &n[2], &idate, &n[3], &rdate, &flags, &n[4], &sha,
		&m.MessageID, &m.Sender, &m.Subject, &m.File, &n[5], &n[6], &n[7], &sat, &n[8], &n[9], &n[10], &labels, &started}, extra...)...)
	if err != nil {
		return nil, err
	}
	m.UIDValidity, m.UID, m.ModSeq, m.Size = uint32(i64(n[0])), uint32(i64(n[1])), uint64(i64(n[2])), i64(n[4])
	m.FrameOffset, m.FramePos, m.StoredRun, m.ExpungedRun = i64(n[5]), i64(n[6]), i64(n[7]), i64(n[8])
	zone := i64(n[3])
	m.InternalDate = decodeDate(idate, zone)
	m.ReceivedDate = parseTime(rdate)
	m.StoredAt = decodeStamp(sat, func() time.Time { return c.runStarted(ctx, m.StoredRun, started) })
	m.SHA256 = decodeSHA(sha)
	m.Flags = SplitFlags(flags)
	m.GmailMsgID, m.GmailThrID = uint64(i64(n[9])), uint64(i64(n[10]))
	if labels.Valid {
		m.Labels = SplitLabels(labels.String)
	}
	return &m, nil
}

// Commit records newly stored messages of one folder in one transaction,
// together with the folder's new committed file size (mbox formats) and last
// UID. The messages' data must already be durable.
func (c *Catalog) Commit(ctx context.Context, folderID int64, committedSize int64, lastUID uint32, run int64, msgs []*Message) error {
	err := c.write(ctx, func(tx *wtx) error {
		return commitTx(tx, folderID, committedSize, lastUID, run, msgs)
	})
	if err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	return nil
}

func commitTx(tx *wtx, folderID int64, committedSize int64, lastUID uint32, run int64, msgs []*Message) error {
	ins, err := tx.PrepareContext(tx.ctx, `INSERT INTO messages(folder_id,uidvalidity,uid,uidl,modseq,internal_date,date_zone,received_date,flags,size,sha256,message_id,sender_id,subject,file,frame_offset,frame_pos,stored_run,stored_at,gm_msgid,gm_thrid,labels)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	var started string
	if err := tx.QueryRow(`SELECT started FROM runs WHERE id=?`, run).Scan(&started); err != nil {
		return fmt.Errorf("catalog: run %d: %w", run, err)
	}
	now := encodeStamp(time.Now(), parseTime(started))
	senders := newSenderIDs(tx)
	var folderPath string
	if err := tx.QueryRow(`SELECT path FROM folders WHERE id=?`, folderID).Scan(&folderPath); err != nil {
		return fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	for _, m := range msgs {
		file := m.File
		if file == folderPath {
			file = "" // the folder's own file (mbox): read back through fileCol
		}
		m.FolderID = folderID
		m.StoredRun = run
		flags := JoinFlags(m.Flags)
		sender, err := senders.id(m.Sender)
		if err != nil {
			return fmt.Errorf("catalog: store uid %d: %w", m.UID, err)
		}
		idate, zone := encodeDate(m.InternalDate)
		res, err := ins.ExecContext(tx.ctx, folderID, m.UIDValidity, m.UID, nullStr(m.UIDL), m.ModSeq, idate, zone, nullStr(fmtCompact(m.ReceivedDate)),
			flags, m.Size, encodeSHA(m.SHA256), m.MessageID, sender, m.Subject, file, m.FrameOffset, m.FramePos, run, now,
			gmailID(m.GmailMsgID), gmailID(m.GmailThrID), labelsValue(m.GmailMsgID, m.Labels))
		if err != nil {
			return fmt.Errorf("catalog: store uid %d: %w", m.UID, err)
		}
		if m.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		tx.touch("messages", m.ID) // its flags as stored are its history until they change (historyBase)
	}
	if _, err := tx.Exec(`UPDATE folders SET committed_size=?, last_uid=MAX(last_uid,?) WHERE id=?`, committedSize, lastUID, folderID); err != nil {
		return err
	}
	tx.touch("folders", folderID)
	return nil
}

// The message queries after their columns (msgCols); TestHotQueriesUseIndex
// checks their plans.
const (
	liveFrom = ` FROM messages WHERE folder_id=? AND expunged_run IS NULL ORDER BY uidvalidity, uid, id`
	allFrom  = ` FROM messages WHERE folder_id=? ORDER BY id`
	// byUIDFrom is the message under the folder's UIDVALIDITY: one key of
	// messages_uid (uid>0 lets SQLite use that partial index);
	// byUIDAnyFrom, the rare fallback, the newest under any UIDVALIDITY.
	byUIDFrom    = ` FROM messages WHERE folder_id=? AND uidvalidity=? AND uid=? AND uid>0`
	byUIDAnyFrom = ` FROM messages WHERE folder_id=? AND uid=? AND uid>0 ORDER BY id DESC LIMIT 1`
	byUIDLFrom   = ` FROM messages WHERE folder_id=? AND uidl=?`
	byIDFrom     = ` FROM messages WHERE id=?`
)

// Live returns the messages of a folder that are not marked expunged, in UID order.
func (c *Catalog) Live(ctx context.Context, folderID int64) ([]*Message, error) {
	q, args, err := c.forFolder(ctx, `SELECT `+c.msgCols()+liveFrom, folderID)
	if err != nil {
		return nil, err
	}
	return c.query(ctx, q, args...)
}

// All returns every message of a folder, expunged ones included, in storage order.
func (c *Catalog) All(ctx context.Context, folderID int64) ([]*Message, error) {
	q, args, err := c.forFolder(ctx, `SELECT `+c.msgCols()+allFrom, folderID)
	if err != nil {
		return nil, err
	}
	return c.query(ctx, q, args...)
}

// Each calls fn for every message of a folder in storage order without
// holding them all in memory.
func (c *Catalog) Each(ctx context.Context, folderID int64, fn func(*Message) error) error {
	q, args, err := c.forFolder(ctx, `SELECT `+c.msgCols()+allFrom, folderID)
	if err != nil {
		return err
	}
	st, err := c.prepared(ctx, q)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := c.scanMessage(ctx, rows)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ByUID returns the message of a folder with the given UID, preferring the
// folder's current UIDVALIDITY.
func (c *Catalog) ByUID(ctx context.Context, f *Folder, uid uint32) (*Message, error) {
	q, args, err := c.forFolder(ctx, `SELECT `+c.msgCols()+byUIDFrom, f.ID, f.UIDValidity, uid)
	if err != nil {
		return nil, err
	}
	ms, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		if q, args, err = c.forFolder(ctx, `SELECT `+c.msgCols()+byUIDAnyFrom, f.ID, uid); err != nil {
			return nil, err
		}
		if ms, err = c.query(ctx, q, args...); err != nil {
			return nil, err
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("folder %q uid %d: %w", f.Name, uid, ErrNotFound)
	}
	return ms[0], nil
}

// ByUIDL returns the POP3 message with the given UIDL in a folder.
func (c *Catalog) ByUIDL(ctx context.Context, folderID int64, uidl string) (*Message, error) {
	ms, err := c.query(ctx, `SELECT `+c.msgCols()+byUIDLFrom, folderID, uidl)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("uidl %q: %w", uidl, ErrNotFound)
	}
	return ms[0], nil
}

func (c *Catalog) query(ctx context.Context, q string, args ...any) ([]*Message, error) {
	st, err := c.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := c.scanMessage(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// FlagChange is a message's new flag state.
type FlagChange struct {
	ID     int64
	Flags  []string
	ModSeq uint64
}

// SetFlags records flag changes seen by a run.
func (c *Catalog) SetFlags(ctx context.Context, run int64, changes []FlagChange) error {
	if len(changes) == 0 {
		return nil
	}
	return c.write(ctx, func(tx *wtx) error {
		for _, ch := range changes {
			tx.touch("messages", ch.ID)
			tx.touchHist(ch.ID, run)
			fl := JoinFlags(ch.Flags)
			if err := historyBase(tx, ch.ID); err != nil {
				return fmt.Errorf("catalog: flag history: %w", err)
			}
			if _, err := tx.Exec(`UPDATE messages SET flags=?, modseq=? WHERE id=?`, fl, ch.ModSeq, ch.ID); err != nil {
				return fmt.Errorf("catalog: set flags: %w", err)
			}
			if _, err := tx.Exec(`INSERT OR REPLACE INTO flag_history(message,run,flags) VALUES(?,?,?)`, ch.ID, run, fl); err != nil {
				return fmt.Errorf("catalog: flag history: %w", err)
			}
		}
		return nil
	})
}

// SetFile records a message's new file name (Maildir flag renames).
func (c *Catalog) SetFile(ctx context.Context, id int64, file string) error {
	return c.write(ctx, func(tx *wtx) error {
		tx.touch("messages", id)
		_, err := tx.Exec(`UPDATE messages SET file=? WHERE id=?`, file, id)
		return err
	})
}

// MarkExpunged records that a run found these messages gone from the server.
func (c *Catalog) MarkExpunged(ctx context.Context, run int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return c.write(ctx, func(tx *wtx) error {
		tx.touch("messages", ids...)
		for _, id := range ids {
			if _, err := tx.Exec(`UPDATE messages SET expunged_run=? WHERE id=? AND expunged_run IS NULL`, run, id); err != nil {
				return fmt.Errorf("catalog: mark expunged: %w", err)
			}
		}
		return nil
	})
}

// Rekey is a message recognised under a new UIDVALIDITY.
type Rekey struct {
	ID     int64
	UID    uint32
	Flags  []string
	ModSeq uint64
}

// historyBase gives a message whose flags are about to change its first
// flag_history row: its flags as stored, by the run that stored it. Since
// schema 4 a message has no history rows until its flags first change
// (messages.flags and stored_run say the same, for a fraction of the
// bytes); FlagsAsOf reads both.
func historyBase(tx *wtx, id int64) error {
	var run int64
	err := tx.QueryRow(`SELECT stored_run FROM messages WHERE id=? AND NOT EXISTS (SELECT 1 FROM flag_history WHERE message=?)`, id, id).Scan(&run)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // it has a history, or no row (the update finds none either)
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO flag_history(message,run,flags) SELECT id, stored_run, flags FROM messages WHERE id=?`, id); err != nil {
		return err
	}
	tx.touchHist(id, run)
	return nil
}

// flagsAsOfQuery reads a message's flag history, or, when it has none (its
// flags never changed), its flags as stored.
const flagsAsOfQuery = `SELECT flags FROM (
	SELECT h.flags, h.run FROM flag_history h CROSS JOIN runs r ON r.id=h.run WHERE h.message=?1 AND r.started < ?2
	UNION ALL
	SELECT m.flags, m.stored_run FROM messages m CROSS JOIN runs r ON r.id=m.stored_run
		WHERE m.id=?1 AND r.started < ?2 AND NOT EXISTS (SELECT 1 FROM flag_history WHERE message=?1)
) ORDER BY run DESC LIMIT 1`

// FlagsAsOf returns a message's flags as recorded by the last run that
// started before t, and false when no run before t had seen it.
func (c *Catalog) FlagsAsOf(ctx context.Context, id int64, t time.Time) ([]string, bool, error) {
	var fl string
	err := c.queryRow(ctx, flagsAsOfQuery, id, fmtTime(t.UTC())).Scan(&fl)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return SplitFlags(fl), true, nil
}

// runStarted is when run started (its runs.started text, read with the
// message), parsed once per run (a run's start never changes): every
// message's stored_at counts from it.
func (c *Catalog) runStarted(ctx context.Context, run int64, started string) time.Time {
	if t, ok := c.runStarts.Load(run); ok {
		return t.(time.Time)
	}
	t := parseTime(started)
	c.runStarts.Store(run, t)
	return t
}

// RunStarted returns when a run started.
func (c *Catalog) RunStarted(ctx context.Context, id int64) (time.Time, error) {
	var s string
	if err := c.db.QueryRowContext(ctx, `SELECT started FROM runs WHERE id=?`, id).Scan(&s); err != nil {
		return time.Time{}, err
	}
	return parseTime(s), nil
}

// Counts returns the number of messages of a folder, and of those marked expunged.
func (c *Catalog) Counts(ctx context.Context, folderID int64) (total, expunged int, bytes int64, err error) {
	q, args, err := c.forFolder(ctx, `SELECT COUNT(*), COUNT(expunged_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`, folderID)
	if err != nil {
		return 0, 0, 0, err
	}
	err = c.queryRow(ctx, q, args...).Scan(&total, &expunged, &bytes)
	return
}

// JoinFlags is the catalog's text form of a flag list: sorted, space-separated.
func JoinFlags(flags []string) string {
	f := append([]string(nil), flags...)
	sort.Strings(f)
	return strings.Join(f, " ")
}

// SplitFlags parses JoinFlags' form.
func SplitFlags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// timeLayout has a fixed width so that times of one zone compare as text.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(timeLayout)
}

// fmtCompact formats a time stored but never compared in SQL (message
// dates, stored_at) without a fraction of zero (7 bytes a message date
// less) and without trailing zeros of one.
func fmtCompact(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// i64 is an integer column scanned into an any: database/sql converts an
// integer into a uint32 or uint64 destination through its decimal text,
// which cost more than the rest of reading a row (ls, verify, export of
// every row). Anything else (NULL, text) is 0.
func i64(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// senderIDs finds or adds the senders rows of one transaction.
type senderIDs struct {
	tx  *wtx
	ids map[string]int64
}

func newSenderIDs(tx *wtx) *senderIDs { return &senderIDs{tx: tx, ids: map[string]int64{}} }

// id returns the senders row id of s (adding and journaling a new one),
// nil for "".
func (s *senderIDs) id(sender string) (any, error) {
	if sender == "" {
		return nil, nil
	}
	if id, ok := s.ids[sender]; ok {
		return id, nil
	}
	var id int64
	err := s.tx.QueryRow(`SELECT id FROM senders WHERE sender=?`, sender).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		res, err := s.tx.Exec(`INSERT INTO senders(sender) VALUES(?)`, sender)
		if err != nil {
			return nil, err
		}
		if id, err = res.LastInsertId(); err != nil {
			return nil, err
		}
		s.tx.touch("senders", id)
	} else if err != nil {
		return nil, err
	}
	s.ids[sender] = id
	return id, nil
}
