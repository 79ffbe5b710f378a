// Package textindex is mailkeep's full-text index of an archive: the
// decoded headers, text and attachment names of every archived message in
// an SQLite FTS5 table, and the Gmail-like query language that searches it
// (see ParseQuery). It has no network code.
//
// The index lives in its own file, index.db, beside the catalog:
//
//	catalog.db   the catalog (package catalog): the truth about what is stored
//	index.db     this index: derived data, rebuilt from the mail files at
//	             any time (delete it and run "mailkeep index")
//
// It is kept out of catalog.db on purpose: it needs no journal (a lost
// index costs a re-index, never mail), it cannot endanger the catalog, and
// the catalog's schema can change without it. An index row is keyed by the
// message's stable identity, which survives a catalog rebuild (reindex):
// (folder name, UIDVALIDITY, UID, UIDL, SHA-256). The catalog row id is
// kept beside it only as a hint for joining the catalog at search time;
// Update re-links rows whose hint went stale. Search reads the catalog
// (attached read-only) for what changes after a message is stored: its
// flags and whether it is still in the catalog.
//
// Row ids order by the messages' dates (the INTERNALDATE, else the Date
// header), so a search reads its matches newest first, through FTS5 when it
// has words, and stops at its limit without collecting and sorting them.
//
// Text is folded by FTS5's unicode61 tokenizer with remove_diacritics 2:
// case and diacritics do not matter ("grösse" finds "Grösse" and
// "Grosse"), but letters that are not a letter plus a diacritic stay
// themselves: "ß" is not "ss", so "grosse" does not find "Größe".
package textindex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/mailkeep/mailkeep/internal/flock"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the index's file in an archive directory.
const FileName = "index.db"

// ErrNoIndex is returned by OpenReadOnly when an archive has no index.
var ErrNoIndex = errors.New("no search index (run mailkeep index)")

// ErrBusy is returned by Open when another run is updating the index.
var ErrBusy = errors.New("the search index is being updated by another run")

// ErrUnsafe is returned when the index's file (or a file SQLite keeps
// beside it) is a symlink or not a regular file.
var ErrUnsafe = errors.New("not a regular file")

const schemaVersion = "2"

// ftsAutomerge is FTS5's automerge setting for the index (see Open).
const ftsAutomerge = 8

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
	id          INTEGER PRIMARY KEY, -- orders by date: see ids
	folder      TEXT NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	uidl        TEXT NOT NULL,
	sha256      TEXT NOT NULL,
	cat_id      INTEGER NOT NULL,
	date        INTEGER NOT NULL,
	size        INTEGER NOT NULL,
	sender      TEXT NOT NULL,
	subject     TEXT NOT NULL,
	attachments INTEGER NOT NULL,
	problems    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS docs_key ON docs(folder, uidvalidity, uid, uidl, sha256);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
	from_, to_, cc, subject, body, filename,
	content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 2'
);
`

// Index is an open index.db.
type Index struct {
	db    *sql.DB
	dir   string
	lock  *os.File // held (flock) by a writing open
	idgen *ids     // loaded by the first update, kept while the lock is held
}

// checkFile refuses a symlink or special file at p; a missing file is fine.
func checkFile(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", p, ErrUnsafe)
	}
	return nil
}

func checkFiles(dir string) error {
	p := filepath.Join(dir, FileName)
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		if err := checkFile(p + s); err != nil {
			return err
		}
	}
	return nil
}

func dsn(p string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + p + "?" + q.Encode()
}

// Open opens the index of the archive in dir for updating, creating it
// (0600, never through a symlink). Only one writer at a time: a second one
// gets ErrBusy.
func Open(dir string) (*Index, error) {
	if err := checkFiles(dir); err != nil {
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	p := filepath.Join(dir, FileName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|openNoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("index of %s: %s: %w", dir, p, ErrUnsafe)
	}
	if err := flock.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, flock.ErrWouldBlock) {
			return nil, fmt.Errorf("index of %s: %w", dir, ErrBusy)
		}
		return nil, fmt.Errorf("index of %s: lock: %w", dir, err)
	}
	db, err := sql.Open("sqlite", dsn(p, false))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	db.SetMaxOpenConns(1)
	ix := &Index{db: db, dir: dir, lock: f}
	if _, err := db.Exec(schema); err != nil {
		ix.Close()
		return nil, fmt.Errorf("index of %s: creating schema: %w", dir, err)
	}
	var v string
	err = db.QueryRow(`SELECT value FROM meta WHERE key='schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = db.Exec(`INSERT INTO meta(key,value) VALUES('schema_version',?)`, schemaVersion)
	case err == nil && v != schemaVersion:
		err = fmt.Errorf("schema version %s, this mailkeep writes %s: delete %s and run mailkeep index", v, schemaVersion, p)
	}
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	// FTS5 merges its segments 8 at a time instead of 4: indexing (a
	// backup --index, mailkeep index) rewrites each entry fewer times,
	// about 15% less CPU, for the same size and query times (measured
	// with bench/ and BenchmarkSearch). The setting is stored in the
	// index; setting it on every writing open upgrades older indexes.
	if _, err := db.Exec(`INSERT INTO fts(fts, rank) VALUES('automerge', ?)`, ftsAutomerge); err != nil {
		ix.Close()
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	// The files SQLite made beside the index must be regular files too.
	if err := checkFiles(dir); err != nil {
		ix.Close()
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	return ix, nil
}

// Exists says whether the archive in dir has an index.
func Exists(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, FileName))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// OpenReadOnly opens an existing index for searching. It takes no lock: an
// update running meanwhile is seen as of its last commit.
func OpenReadOnly(dir string) (*Index, error) {
	if err := checkFiles(dir); err != nil {
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	if !Exists(dir) {
		return nil, fmt.Errorf("archive %s: %w", dir, ErrNoIndex)
	}
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), true))
	if err != nil {
		return nil, fmt.Errorf("index of %s: %w", dir, err)
	}
	db.SetMaxOpenConns(1)
	return &Index{db: db, dir: dir}, nil
}

// Close closes the index and releases its lock. A writer folds the WAL
// back into index.db first, so that the index's size on disk is its size.
func (ix *Index) Close() error {
	if ix.lock != nil {
		ix.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	err := ix.db.Close()
	if ix.lock != nil {
		ix.lock.Close()
		ix.lock = nil
	}
	return err
}

// DB gives read access for tests and ad-hoc queries.
func (ix *Index) DB() *sql.DB { return ix.db }

// Stats counts what Update did.
type Stats struct {
	Indexed   int   // messages read and indexed
	Relinked  int   // index rows whose catalog hint was brought up to date
	Problems  int   // indexed messages with a part that did not parse
	Truncated int   // indexed messages with more text than the bound
	Bytes     int64 // message bytes read
}

// maxBatchText bounds the decoded text an update holds before it writes.
const maxBatchText = 32 << 20

// key is a message's stable identity.
type key struct {
	folder      string
	uidValidity uint32
	uid         uint32
	uidl        string
	sha         string
}

// UpdateOptions tune Update.
type UpdateOptions struct {
	MaxText  int                          // per message; default DefaultMaxText
	BatchMsg int                          // messages per commit; default 500
	Progress func(folder string, s Stats) // called after each commit
	// Nice, when above 0, is the nice value (Linux) of the OS thread that
	// writes the index (FTS5 tokenizing, most of an update's CPU time):
	// a backup indexing while it fetches leaves the CPU to the fetch and
	// indexes with what the fetch leaves.
	Nice int
}

// Update indexes every message of the archive that the index does not
// hold yet, folder by folder, reading each folder's file once front to
// back. It commits every few hundred messages, so an update that is killed
// keeps what it committed and the next one goes on from there. A message
// that does not parse is indexed as far as it parses; only reading the
// archive fails an update.
func (ix *Index) Update(ctx context.Context, a *archive.Archive, opt UpdateOptions) (Stats, error) {
	var st Stats
	if opt.BatchMsg <= 0 {
		opt.BatchMsg = 500
	}
	folders, err := a.Cat.Folders(ctx)
	if err != nil {
		return st, err
	}
	ids, err := ix.ids(ctx)
	if err != nil {
		return st, err
	}
	// A folder that cannot be read (a damaged file) does not keep the
	// others from being indexed; its error is returned at the end.
	var errs []error
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if f.IsView() { // a Gmail label: its messages are indexed once, in All Mail
			continue
		}
		if err := ix.updateFolder(ctx, a, f, opt, ids, &st); err != nil {
			if ctx.Err() != nil {
				return st, err
			}
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

// ids hands out row ids that order by date: a message dated unix time t
// gets id t, or the next free id after it when t is taken (messages of
// the same second). A search then reads the full-text matches in rowid
// order, newest first, and stops at its limit: a word found in every
// message costs no more than a rare one. Ids this close together keep
// FTS5's delta-encoded doclists small.
//
// Its memory is one set entry per indexed message (an 8-byte slot: ~10 MB
// for a million messages, where a map of bools and a map of every date's
// next id took ~40 MB, twice that with the garbage collector's headroom);
// next holds only the dates that collided.
type ids struct {
	mu    sync.Mutex // get runs in the reader, release in the writer
	taken map[int64]struct{}
	next  map[int64]int64 // t -> where to look for t's next free id, for a t found taken
}

// ids returns the index's id generator, loading it once: this open holds
// the writer's lock, so nobody else adds rows meanwhile.
func (ix *Index) ids(ctx context.Context) (*ids, error) {
	if ix.idgen != nil {
		return ix.idgen, nil
	}
	r, err := ix.loadIDs(ctx)
	if err != nil {
		return nil, err
	}
	ix.idgen = r
	return r, nil
}

func (ix *Index) loadIDs(ctx context.Context) (*ids, error) {
	r := &ids{taken: map[int64]struct{}{}, next: map[int64]int64{}}
	rows, err := ix.db.QueryContext(ctx, `SELECT id FROM docs`)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		r.taken[id] = struct{}{}
	}
	return r, rows.Err()
}

func (r *ids) get(t int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := t
	if n, ok := r.next[t]; ok {
		id = n
	}
	for r.has(id) {
		id++
	}
	r.taken[id] = struct{}{}
	if id != t {
		r.next[t] = id + 1
	}
	return id
}

func (r *ids) has(id int64) bool {
	_, ok := r.taken[id]
	return ok
}

// release gives back ids of a transaction that did not commit.
func (r *ids) release(list []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range list {
		delete(r.taken, id)
	}
	r.next = map[int64]int64{}
}

func (ix *Index) updateFolder(ctx context.Context, a *archive.Archive, f *catalog.Folder, opt UpdateOptions, idgen *ids, st *Stats) error {
	msgs, err := a.Cat.All(ctx, f.ID)
	if err != nil {
		return fmt.Errorf("folder %q: %w", f.Name, err)
	}
	have := map[key][2]int64{} // identity -> (doc id, catalog hint)
	rows, err := ix.db.QueryContext(ctx, `SELECT id, uidvalidity, uid, uidl, sha256, cat_id FROM docs WHERE folder=?`, f.Name)
	if err != nil {
		return fmt.Errorf("index: folder %q: %w", f.Name, err)
	}
	for rows.Next() {
		var k key
		var id, hint int64
		if err := rows.Scan(&id, &k.uidValidity, &k.uid, &k.uidl, &k.sha, &hint); err != nil {
			rows.Close()
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		k.folder = f.Name
		have[k] = [2]int64{id, hint}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: folder %q: %w", f.Name, err)
	}
	var missing []*catalog.Message
	var relink [][2]int64
	for _, m := range msgs {
		k := key{f.Name, m.UIDValidity, m.UID, m.UIDL, m.SHA256}
		d, ok := have[k]
		switch {
		case !ok:
			missing = append(missing, m)
			have[k] = [2]int64{-1, m.ID} // a duplicate identity is indexed once
		case d[0] >= 0 && d[1] != m.ID:
			relink = append(relink, [2]int64{d[0], m.ID})
		}
	}
	if len(relink) > 0 {
		tx, err := ix.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		for _, r := range relink {
			if _, err := tx.Exec(`UPDATE docs SET cat_id=? WHERE id=?`, r[1], r[0]); err != nil {
				tx.Rollback()
				return fmt.Errorf("index: folder %q: %w", f.Name, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		st.Relinked += len(relink)
	}
	return ix.indexMessages(ctx, a, f, missing, nil, opt, idgen, st)
}

// Add indexes msgs, messages of folder f that the catalog has committed
// (a backup hands them over as it commits them: see archive.Options.
// OnCommit), except those the index holds already. parsed, when not nil,
// holds what Parse made of each message's bytes as they were stored
// (archive.Options.Extract; nil where it has nothing); the other messages
// are read back from the archive. Messages the catalog did not commit
// must never be given: the index would name them.
func (ix *Index) Add(ctx context.Context, a *archive.Archive, f *catalog.Folder, msgs []*catalog.Message, parsed []*Message, opt UpdateOptions) (Stats, error) {
	var st Stats
	if opt.BatchMsg <= 0 {
		opt.BatchMsg = 500
	}
	idgen, err := ix.ids(ctx)
	if err != nil {
		return st, err
	}
	var missing []*catalog.Message
	var pre []*Message
	seen := map[key]bool{}
	has, err := ix.db.PrepareContext(ctx, `SELECT id FROM docs WHERE folder=? AND uidvalidity=? AND uid=? AND uidl=? AND sha256=?`)
	if err != nil {
		return st, fmt.Errorf("index: folder %q: %w", f.Name, err)
	}
	defer has.Close()
	for i, m := range msgs {
		k := key{f.Name, m.UIDValidity, m.UID, m.UIDL, m.SHA256}
		if seen[k] {
			continue
		}
		seen[k] = true
		var id int64
		err := has.QueryRowContext(ctx, k.folder, k.uidValidity, k.uid, k.uidl, k.sha).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			missing = append(missing, m)
			var p *Message
			if i < len(parsed) {
				p = parsed[i]
			}
			pre = append(pre, p)
		case err != nil:
			return st, fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
	}
	err = ix.indexMessages(ctx, a, f, missing, pre, opt, idgen, &st)
	return st, err
}

// indexMessages reads msgs (of folder f, none of them in the index) from
// the archive and indexes them.
func (ix *Index) indexMessages(ctx context.Context, a *archive.Archive, f *catalog.Folder, missing []*catalog.Message, parsed []*Message, opt UpdateOptions, idgen *ids, st *Stats) error {
	if len(missing) == 0 {
		return nil
	}
	// Messages are parsed into a batch (at most BatchMsg messages and
	// maxBatchText bytes of text), then written in one transaction in
	// row id order: FTS5 flushes its pending terms whenever a row id is
	// lower than the one before, and mail stored in UID order is not
	// always in date order.
	type doc struct {
		id  int64
		m   *catalog.Message
		msg *Message
	}
	// A writer goroutine stores batches while the next one is read and
	// parsed (at most two batches are held).
	write := func(batch []doc) error {
		sort.Slice(batch, func(i, j int) bool { return batch[i].id < batch[j].id })
		tx, err := ix.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		defer tx.Rollback()
		insDoc, err := tx.Prepare(insertDoc)
		if err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		defer insDoc.Close()
		insText, err := tx.Prepare(insertText)
		if err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		defer insText.Close()
		for _, d := range batch {
			if err := insert(insDoc, insText, d.id, f.Name, d.m, d.msg); err != nil {
				return fmt.Errorf("index: folder %q uid %d%s: %w", f.Name, d.m.UID, uidlText(d.m), err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("index: folder %q: %w", f.Name, err)
		}
		return nil
	}
	batches := make(chan []doc)
	written := make(chan error, 1)
	go func() {
		lowerPriority(opt.Nice)
		var werr error
		for batch := range batches {
			if werr != nil {
				continue // drain
			}
			if werr = write(batch); werr != nil {
				ids := make([]int64, len(batch))
				for i, d := range batch {
					ids[i] = d.id
				}
				idgen.release(ids)
				continue
			}
			for _, d := range batch {
				st.Indexed++
				st.Bytes += d.m.Size
				if len(d.msg.Problems) > 0 {
					st.Problems++
				}
				if d.msg.Truncated {
					st.Truncated++
				}
			}
			if opt.Progress != nil {
				opt.Progress(f.Name, *st)
			}
		}
		written <- werr
	}()
	var batch []doc
	text := 0
	add := func(m *catalog.Message, msg *Message) {
		batch = append(batch, doc{idgen.get(msgDate(m, msg).Unix()), m, msg})
		text += len(msg.Plain) + len(msg.HTML)
		if len(batch) >= opt.BatchMsg || text >= maxBatchText {
			batches <- batch
			batch, text = nil, 0
		}
	}
	// Messages parsed already (as they were stored) are not read again.
	var read []*catalog.Message
	for i, m := range missing {
		if i < len(parsed) && parsed[i] != nil {
			add(m, parsed[i])
		} else {
			read = append(read, m)
		}
	}
	var err error
	if ctx.Err() == nil {
		err = a.Walk(ctx, f, read, func(m *catalog.Message, r io.Reader) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			msg, err := Parse(r, ParseOptions{MaxText: opt.MaxText})
			if err != nil {
				return fmt.Errorf("folder %q uid %d%s: %w", f.Name, m.UID, uidlText(m), err)
			}
			add(m, msg)
			return nil
		})
	}
	// What was read before an error (a damaged message) is kept.
	if len(batch) > 0 && ctx.Err() == nil {
		batches <- batch
	}
	close(batches)
	werr := <-written
	return errors.Join(err, werr)
}

func uidlText(m *catalog.Message) string {
	if m.UIDL != "" {
		return " (uidl " + m.UIDL + ")"
	}
	return ""
}

func msgDate(m *catalog.Message, msg *Message) time.Time {
	switch {
	case !m.InternalDate.IsZero():
		return m.InternalDate
	case !msg.Date.IsZero():
		return msg.Date
	case !m.ReceivedDate.IsZero():
		return m.ReceivedDate
	}
	return m.StoredAt
}

const (
	insertDoc = `INSERT INTO docs(id,folder,uidvalidity,uid,uidl,sha256,cat_id,date,size,sender,subject,attachments,problems)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)`
	insertText = `INSERT INTO fts(rowid,from_,to_,cc,subject,body,filename) VALUES(?,?,?,?,?,?,?)`
)

func insert(insDoc, insText *sql.Stmt, id int64, folder string, m *catalog.Message, msg *Message) error {
	names := make([]string, 0, len(msg.Attachments))
	for _, a := range msg.Attachments {
		if a.Name != "" {
			names = append(names, a.Name)
		}
	}
	_, err := insDoc.Exec(id, folder, m.UIDValidity, m.UID, m.UIDL, m.SHA256, m.ID, msgDate(m, msg).Unix(), m.Size,
		msg.From, msg.Subject, len(msg.Attachments), len(msg.Problems))
	if err != nil {
		return err
	}
	from := msg.From
	if msg.ReplyTo != "" {
		from += "\n" + msg.ReplyTo
	}
	_, err = insText.Exec(id, from, msg.To, msg.Cc, msg.Subject, msg.Text(), strings.Join(names, "\n"))
	return err
}

// Hit is one message a search found.
type Hit struct {
	Folder      string    `json:"folder"`
	UIDValidity uint32    `json:"uidvalidity"`
	UID         uint32    `json:"uid"`
	UIDL        string    `json:"uidl,omitempty"`
	Date        time.Time `json:"date"`
	From        string    `json:"from"`
	Subject     string    `json:"subject"`
	Size        int64     `json:"size"`
	Flags       []string  `json:"flags"`
	Attachments int       `json:"attachments"`
	Expunged    bool      `json:"expunged,omitempty"` // expunged on the server; still archived
}

// ID is what show and cat take after the folder: the UID, or the UIDL in
// a POP3 archive.
func (h Hit) ID() string {
	if h.UIDL != "" {
		return h.UIDL
	}
	return fmt.Sprint(h.UID)
}

// Search returns the messages matching q, newest first, at most limit
// (0: no limit). catalogPath is the archive's catalog.db, attached
// read-only for flags.
func (ix *Index) Search(ctx context.Context, catalogPath string, q Node, limit int) ([]Hit, error) {
	conn, err := ix.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := checkFile(catalogPath); err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: catalogPath, RawQuery: "mode=ro"}
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS cat`, u.String()); err != nil {
		return nil, fmt.Errorf("attaching the catalog: %w", err)
	}
	defer conn.ExecContext(context.Background(), `DETACH DATABASE cat`)
	var c compiler
	// Gmail labels (catalog schema 5) for folder: and label:.
	var gm int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('messages','cat') WHERE name='labels'`).Scan(&gm); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	c.gmail = gm > 0
	var where string
	// Row ids order by date (see ids): read newest first and stop at the
	// limit. A query with a full-text part is driven by FTS5, which hands
	// out its matches in rowid order without collecting them first.
	from := "docs d"
	order := "d.id DESC"
	if e, rest, ok := c.driver(q); ok {
		from = "fts JOIN docs d ON d.id = fts.rowid"
		order = "fts.rowid DESC"
		where = "fts MATCH " + c.arg(e)
		if rest != nil {
			where += " AND " + c.node(rest)
		}
	} else {
		where = c.node(q)
	}
	sqlq := `SELECT d.folder, d.uidvalidity, d.uid, d.uidl, d.date, d.sender, d.subject, d.size, m.flags, m.expunged_run IS NOT NULL, d.attachments
		FROM ` + from + ` JOIN cat.messages m ON m.id = d.cat_id AND m.sha256 IN (d.sha256, unhex(d.sha256))
		WHERE ` + where + ` ORDER BY ` + order
	if limit > 0 {
		sqlq += fmt.Sprintf(" LIMIT %d", limit)
	}
	if planHook != nil {
		planHook(ctx, conn, sqlq, c.args)
	}
	rows, err := conn.QueryContext(ctx, sqlq, c.args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var hits []Hit
	for rows.Next() {
		var h Hit
		var date int64
		var flags string
		if err := rows.Scan(&h.Folder, &h.UIDValidity, &h.UID, &h.UIDL, &date, &h.From, &h.Subject, &h.Size, &flags, &h.Expunged, &h.Attachments); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		h.Date = time.Unix(date, 0)
		h.Flags = catalog.SplitFlags(flags)
		if h.Flags == nil {
			h.Flags = []string{}
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return hits, nil
}

// planHook lets tests see the query plans of searches.
var planHook func(ctx context.Context, conn *sql.Conn, q string, args []any)

// Hashes is the catalog's lookup of a message's checksum by row id
// (*catalog.Catalog's MessageSHA256), which Stale checks the hints with.
type Hashes interface {
	MessageSHA256(ctx context.Context, id int64) (string, error)
}

// Stale says whether the index's row id hints no longer point into the
// catalog (catalog is the archive's catalog): the catalog was
// rebuilt with other row ids, and searches miss messages until "mailkeep
// index" re-links the index (without reading mail again). It checks the
// newest few index rows.
func (ix *Index) Stale(ctx context.Context, catalog Hashes) bool {
	rows, err := ix.db.QueryContext(ctx, `SELECT cat_id, sha256 FROM docs ORDER BY id DESC LIMIT 20`)
	if err != nil {
		return false
	}
	type hint struct {
		id  int64
		sha string
	}
	var hints []hint
	for rows.Next() {
		var h hint
		if rows.Scan(&h.id, &h.sha) == nil {
			hints = append(hints, h)
		}
	}
	rows.Close()
	for _, h := range hints {
		if sha, err := catalog.MessageSHA256(ctx, h.id); err != nil || sha != h.sha {
			return true
		}
	}
	return false
}

// Count returns how many messages the index holds.
func (ix *Index) Count(ctx context.Context) (int, error) {
	var n int
	err := ix.db.QueryRowContext(ctx, `SELECT count(*) FROM docs`).Scan(&n)
	return n, err
}

// compiler turns a query into an SQL condition over docs d and the
// catalog's messages m.
type compiler struct {
	args  []any
	gmail bool // the catalog has Gmail labels (schema 5)
}

// driver splits a query for an FTS5-driven search: the full-text
// expression (the query itself, or the text terms of a top-level AND,
// negated ones with FTS5's NOT) and what is left for SQL (nil: nothing).
// ok is false when the query has no full-text part to drive it.
func (c *compiler) driver(q Node) (expr string, rest Node, ok bool) {
	if e, isText := ftsExpr(q); isText {
		return e, nil, e != ""
	}
	a, isAnd := q.(And)
	if !isAnd {
		return "", nil, false
	}
	var text, neg []Node
	var other And
	for _, k := range a {
		if _, isText := ftsExpr(k); isText {
			text = append(text, k)
		} else if x, isNot := k.(Not); isNot {
			if _, isText := ftsExpr(x.N); isText {
				neg = append(neg, x.N)
			} else {
				other = append(other, k)
			}
		} else {
			other = append(other, k)
		}
	}
	if len(text) == 0 {
		return "", nil, false
	}
	e, _ := ftsExpr(And(text))
	if e == "" {
		return "", nil, false
	}
	e = "(" + e + ")"
	for _, k := range neg {
		if ne, _ := ftsExpr(k); ne != "" {
			e += " NOT (" + ne + ")"
		}
	}
	switch len(other) {
	case 0:
		return e, nil, true
	case 1:
		return e, other[0], true
	}
	return e, other, true
}

func (c *compiler) arg(v any) string {
	c.args = append(c.args, v)
	return "?"
}

func (c *compiler) node(n Node) string {
	switch n := n.(type) {
	case And:
		// The text terms become one FTS5 query (negated ones with FTS5's
		// NOT when there is a positive one); the rest are SQL.
		var parts []string
		var text, neg, other []Node
		for _, k := range n {
			if _, ok := ftsExpr(k); ok {
				text = append(text, k)
			} else if x, ok := k.(Not); ok {
				if _, ok := ftsExpr(x.N); ok {
					neg = append(neg, x.N)
				} else {
					other = append(other, k)
				}
			} else {
				other = append(other, k)
			}
		}
		if len(text) == 0 {
			for _, k := range neg {
				other = append(other, Not{k})
			}
			neg = nil
		}
		if len(text) > 0 {
			e, _ := ftsExpr(And(text))
			if e != "" {
				e = "(" + e + ")"
				for _, k := range neg {
					if ne, _ := ftsExpr(k); ne != "" {
						e += " NOT (" + ne + ")"
					}
				}
			}
			parts = append(parts, c.match(e))
		}
		for _, k := range other {
			parts = append(parts, c.node(k))
		}
		return "(" + strings.Join(parts, " AND ") + ")"
	case Or:
		if e, ok := ftsExpr(n); ok {
			return c.match(e)
		}
		parts := make([]string, len(n))
		for i, k := range n {
			parts[i] = c.node(k)
		}
		return "(" + strings.Join(parts, " OR ") + ")"
	case Not:
		return "NOT " + c.node(n.N)
	case Term:
		if e, ok := ftsExpr(n); ok {
			return c.match(e)
		}
		return c.term(n)
	}
	return "0"
}

func (c *compiler) match(e string) string {
	if e == "" {
		return "0"
	}
	return "d.id IN (SELECT rowid FROM fts WHERE fts MATCH " + c.arg(e) + ")"
}

// hasGmailLabel is the SQL test that the message's Gmail labels (one per
// line, matched without case) hold the label expression.
func hasGmailLabel(label string) string {
	return "instr(char(10) || lower(COALESCE(m.labels, '')) || char(10), char(10) || lower(" + label + ") || char(10)) > 0"
}

func hasFlag(flag string) string {
	return "instr(lower(' ' || m.flags || ' '), ' " + flag + " ') > 0"
}

func (c *compiler) term(t Term) string {
	switch t.Field {
	case "folder":
		if !c.gmail {
			return "d.folder = " + c.arg(t.Value) + " COLLATE NOCASE"
		}
		// Or a Gmail label folder (a view): the messages of the folder it
		// shows that carry its label.
		return "(d.folder = " + c.arg(t.Value) + " COLLATE NOCASE OR EXISTS (SELECT 1 FROM cat.folders vf WHERE vf.name = " + c.arg(t.Value) +
			" COLLATE NOCASE AND vf.view_of = m.folder_id AND " + hasGmailLabel("vf.label") + "))"
	case "label":
		// An IMAP keyword, or a Gmail label (label:work, label:inbox for \Inbox).
		v := strings.ToLower(t.Value)
		if !c.gmail {
			return "instr(lower(' ' || m.flags || ' '), " + c.arg(" "+v+" ") + ") > 0"
		}
		return "(instr(lower(' ' || m.flags || ' '), " + c.arg(" "+v+" ") + ") > 0 OR " + hasGmailLabel(c.arg(v)) +
			" OR " + hasGmailLabel(c.arg(`\`+v)) + ")"
	case "has":
		return "d.attachments > 0"
	case "is":
		switch t.Value {
		case "flagged":
			return hasFlag(`\flagged`)
		case "unread":
			return "NOT " + hasFlag(`\seen`)
		case "read":
			return hasFlag(`\seen`)
		case "answered":
			return hasFlag(`\answered`)
		}
	case "before":
		return "d.date < " + c.arg(t.Time.Unix())
	case "after": // ids are never below their dates: the id bound cuts the scan short
		return "(d.date >= " + c.arg(t.Time.Unix()) + " AND d.id >= " + c.arg(t.Time.Unix()) + ")"
	case "larger":
		return "d.size > " + c.arg(t.Size)
	case "smaller":
		return "d.size < " + c.arg(t.Size)
	}
	return "0"
}

// ftsExpr returns the FTS5 expression of a node made only of text terms
// (free words, phrases and text fields, with AND and OR); ok is false for
// anything else. An expression that is "" matches nothing (a term with no
// letters or digits).
func ftsExpr(n Node) (string, bool) {
	switch n := n.(type) {
	case Term:
		col := ""
		if n.Field != "" {
			c, ok := textFields[n.Field]
			if !ok {
				return "", false
			}
			col = c + " : "
		}
		if strings.IndexFunc(n.Value, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
			return "", true
		}
		return col + `"` + strings.ReplaceAll(n.Value, `"`, `""`) + `"`, true
	case And, Or:
		var ks []Node
		op := " AND "
		if o, ok := n.(Or); ok {
			ks, op = o, " OR "
		} else {
			ks = n.(And)
		}
		parts := make([]string, 0, len(ks))
		for _, k := range ks {
			e, ok := ftsExpr(k)
			if !ok {
				return "", false
			}
			if e == "" {
				if op == " AND " {
					return "", true
				}
				continue
			}
			parts = append(parts, "("+e+")")
		}
		if len(parts) == 0 {
			return "", true
		}
		return strings.Join(parts, op), true
	}
	return "", false
}

// Size returns the index's size on disk (the database and its WAL).
func Size(dir string) int64 {
	var n int64
	for _, s := range []string{"", "-wal"} {
		if fi, err := os.Lstat(filepath.Join(dir, FileName+s)); err == nil {
			n += fi.Size()
		}
	}
	return n
}
