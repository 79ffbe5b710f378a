package catalog

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive/journal"
	"github.com/mailkeep/mailkeep/internal/durable"
)

// The journal (package journal) is the catalog's redo log. Every write
// transaction appends the complete rows it wrote to the journal and fsyncs
// it before it commits, and records the journal's size in meta
// "journal_offset" inside the same transaction. So:
//
//   - a catalog that lost commits (a lost -wal after a crash, a catalog
//     restored from an older copy) is brought forward by replaying the
//     journal past its journal_offset when it is next opened for writing;
//   - a lost or damaged catalog is rebuilt by replaying the whole journal
//     into a new one (mailkeep reindex), then reconciling with the files;
//   - a lost journal is written anew from the catalog (a snapshot).
//
// The restore progress table is not journaled: it is a hint that restore
// checks against the destination.

// metaJournalOffset is the meta key holding the journal size at the last
// commit. It is bookkeeping, never journaled itself.
const metaJournalOffset = "journal_offset"

// metaJournalSchema is the schema version the journal's rows were written
// with; a migration starts a new journal (a snapshot).
const metaJournalSchema = "journal_schema"

// journaled lists the journaled tables in the order a transaction's rows
// are applied, and each one's conflict target.
var journaled = []struct{ table, key string }{
	{"runs", "id"},
	{"folders", "id"},
	{"senders", "id"},
	{"messages", "id"},
	{"flag_history", "message,run"},
}

// rowsPerLine bounds the rows of one journal line.
const rowsPerLine = 500

// ErrPoisoned is returned by every write after a transaction reached the
// journal but could not commit: the catalog is behind its journal until it
// is opened again, which replays it.
var ErrPoisoned = errors.New("catalog: a transaction is in the journal but did not commit; reopen the archive to replay it")

// record is one line of a transaction in the journal.
type record struct {
	More bool              `json:"more,omitempty"`
	Time string            `json:"time,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
	// Rows by table name: each row maps column names to values.
	Rows map[string][]map[string]any `json:"rows,omitempty"`
}

// wtx is a write transaction that remembers what it touched, so that the
// rows can be journaled before it commits.
type wtx struct {
	*sql.Tx
	ctx  context.Context           // the write's: Exec, Query and QueryRow run under it
	ids  map[string]map[int64]bool // table -> ids (runs, folders, messages)
	hist [][2]int64                // flag_history (message, run)
	meta map[string]bool
}

func (w *wtx) touch(table string, ids ...int64) {
	if w.ids == nil {
		w.ids = map[string]map[int64]bool{}
	}
	m := w.ids[table]
	if m == nil {
		m = map[int64]bool{}
		w.ids[table] = m
	}
	for _, id := range ids {
		m[id] = true
	}
}

// Exec, Query and QueryRow are the transaction's, under the write's ctx.
func (w *wtx) Exec(q string, args ...any) (sql.Result, error) {
	return w.Tx.ExecContext(w.ctx, q, args...)
}
func (w *wtx) Query(q string, args ...any) (*sql.Rows, error) {
	return w.Tx.QueryContext(w.ctx, q, args...)
}
func (w *wtx) QueryRow(q string, args ...any) *sql.Row {
	return w.Tx.QueryRowContext(w.ctx, q, args...)
}

func (w *wtx) touchHist(msg, run int64) { w.hist = append(w.hist, [2]int64{msg, run}) }

func (w *wtx) touchMeta(key string) {
	if w.meta == nil {
		w.meta = map[string]bool{}
	}
	w.meta[key] = true
}

// ids returns the ids of rows matching a query, to be touched.
func (w *wtx) selectIDs(q string, args ...any) ([]int64, error) {
	rows, err := w.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// write runs fn in one write transaction, serialised with other writers,
// and journals what it touched before committing.
func (c *Catalog) write(ctx context.Context, fn func(tx *wtx) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// After the commit or rollback, Folders reads the table again when
	// the transaction wrote folders rows (each such write touches them,
	// for the journal) or did not commit cleanly.
	var w *wtx
	clean := false
	defer func() {
		if !clean || len(w.ids["folders"]) > 0 {
			c.gen.Add(1)
		}
	}()
	if c.poisoned != nil {
		return c.poisoned
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return c.classify(err)
	}
	defer tx.Rollback()
	w = &wtx{Tx: tx, ctx: ctx}
	if err := fn(w); err != nil {
		return c.classify(err)
	}
	journaled := false
	if c.jw != nil && (len(w.ids) > 0 || len(w.hist) > 0 || len(w.meta) > 0) {
		payloads, err := w.payloads()
		if err != nil {
			return fmt.Errorf("catalog: journal: %w", c.classify(err))
		}
		end, err := c.jw.Append(payloads)
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		journaled = true
		if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, metaJournalOffset, strconv.FormatInt(end, 10)); err != nil {
			c.poisoned = fmt.Errorf("%w: %v", ErrPoisoned, err)
			return c.poisoned
		}
	}
	if err := tx.Commit(); err != nil {
		if journaled {
			c.poisoned = fmt.Errorf("%w: %v", ErrPoisoned, err)
			return c.poisoned
		}
		return c.classify(err)
	}
	clean = true
	return nil
}

// payloads reads back the rows the transaction touched and encodes them as
// journal lines.
func (w *wtx) payloads() ([][]byte, error) {
	var recs []*record
	cur := &record{Time: time.Now().UTC().Format(time.RFC3339Nano), Rows: map[string][]map[string]any{}}
	n := 0
	flush := func() {
		recs = append(recs, cur)
		cur = &record{Rows: map[string][]map[string]any{}}
		n = 0
	}
	if len(w.meta) > 0 {
		cur.Meta = map[string]string{}
		for k := range w.meta {
			var v string
			err := w.QueryRow(`SELECT value FROM meta WHERE key=?`, k).Scan(&v)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			cur.Meta[k] = v
		}
	}
	for _, t := range journaled {
		var rows []map[string]any
		var err error
		if t.table == "flag_history" {
			rows, err = w.histRows()
		} else {
			rows, err = w.tableRows(t.table)
		}
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			cur.Rows[t.table] = append(cur.Rows[t.table], r)
			if n++; n >= rowsPerLine {
				flush()
			}
		}
	}
	if n > 0 || len(recs) == 0 || cur.Meta != nil {
		flush()
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		r.More = i < len(recs)-1
		if len(r.Rows) == 0 {
			r.Rows = nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (w *wtx) tableRows(table string) ([]map[string]any, error) {
	set := w.ids[table]
	if len(set) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []map[string]any
	for len(ids) > 0 {
		k := min(len(ids), rowsPerLine)
		args := make([]any, k)
		for i := range k {
			args[i] = ids[i]
		}
		ids = ids[k:]
		got, err := w.queryMaps(`SELECT * FROM `+table+` WHERE id IN (`+placeholders(k)+`) ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

func (w *wtx) histRows() ([]map[string]any, error) {
	var out []map[string]any
	seen := map[[2]int64]bool{}
	for _, h := range w.hist {
		if seen[h] {
			continue
		}
		seen[h] = true
		got, err := w.queryMaps(`SELECT * FROM flag_history WHERE message=? AND run=?`, h[0], h[1])
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// queryMaps runs a query in the transaction and reads every row as a map.
func (w *wtx) queryMaps(q string, args ...any) ([]map[string]any, error) {
	rows, err := w.Query(q, args...)
	if err != nil {
		return nil, err
	}
	return scanMaps(rows)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// scanMaps reads every row as a column -> value map and closes rows.
func scanMaps(rows *sql.Rows) ([]map[string]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			v := vals[i]
			if b, ok := v.([]byte); ok {
				if c == "sha256" {
					v = decodeSHA(b) // hex in the journal (JSON text), 32 bytes again on replay
				} else {
					v = string(b)
				}
			}
			m[c] = v
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// JournalState says what AttachJournal found.
type JournalState struct {
	// Replayed is the number of transactions applied from the journal
	// because the catalog had not got them (a lost -wal, a crash between
	// the journal and the commit).
	Replayed int
	// Snapshot is set when the journal was missing or shorter than the
	// catalog knew and was written anew from the catalog.
	Snapshot bool
	// MovedAside names a journal that was damaged and kept under a new name.
	MovedAside string
	// Damaged counts journal lines skipped because their checksum failed.
	Damaged int
}

// AttachJournal opens the journal at path for this catalog's writes. A
// journal longer than the catalog knows is replayed first; a missing one is
// written anew from the catalog (archives from before the journal, or a
// lost journal); one shorter than the catalog knows is moved aside and
// written anew. Call it only while holding the archive lock.
func (c *Catalog) AttachJournal(ctx context.Context, path string) (JournalState, error) {
	var st JournalState
	off, err := c.journalOffset(ctx)
	if err != nil {
		return st, err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := c.snapshot(ctx, path); err != nil {
			return st, err
		}
		st.Snapshot = true
	case err != nil:
		return st, fmt.Errorf("journal %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return st, fmt.Errorf("journal %s: not a regular file (%s)", path, fi.Mode().Type())
	case fi.Size() < off:
		aside := path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path, aside); err != nil {
			return st, fmt.Errorf("journal %s: %w", path, err)
		}
		st.MovedAside = aside
		if err := c.snapshot(ctx, path); err != nil {
			return st, err
		}
		st.Snapshot = true
	case fi.Size() > off:
		n, js, err := c.Replay(ctx, path, off)
		if err != nil {
			return st, err
		}
		st.Replayed, st.Damaged = n, js.Damaged
	}
	// A schema migration changed rows without journaling them: start the
	// journal anew from the migrated catalog, keeping the old one aside.
	if v, err := c.Meta(ctx, metaJournalSchema); err != nil {
		return st, err
	} else if v != strconv.Itoa(schemaVersion) && !st.Snapshot {
		aside := path + ".old-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path, aside); err != nil {
			return st, fmt.Errorf("journal %s: %w", path, err)
		}
		st.MovedAside = aside
		if err := c.snapshot(ctx, path); err != nil {
			return st, err
		}
		st.Snapshot = true
	}
	w, err := journal.OpenWriter(path)
	if err != nil {
		return st, err
	}
	c.mu.Lock()
	c.jw = w
	c.mu.Unlock()
	c.cacheFolders.Store(true) // a writing open: the archive lock keeps other writers out
	return st, nil
}

func (c *Catalog) journalOffset(ctx context.Context) (int64, error) {
	v, err := c.Meta(ctx, metaJournalOffset)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// snapshot writes a new journal at path holding the whole catalog as one
// transaction (temporary file, fsync, rename, directory fsync) and records
// its size. Rows are read and written a page at a time, so memory stays
// bounded whatever the catalog's size.
func (c *Catalog) snapshot(ctx context.Context, path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return c.classify(err)
	}
	defer tx.Rollback()
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var size int64
	emit := func(r *record) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		line := journal.Encode([][]byte{b})
		size += int64(len(line))
		_, err = bw.Write(line)
		return err
	}
	meta := map[string]string{}
	mrows, err := tx.Query(`SELECT key, value FROM meta WHERE key<>?`, metaJournalOffset)
	if err != nil {
		return c.classify(err)
	}
	for mrows.Next() {
		var k, v string
		if err := mrows.Scan(&k, &v); err != nil {
			mrows.Close()
			return err
		}
		meta[k] = v
	}
	mrows.Close()
	meta[metaJournalSchema] = strconv.Itoa(schemaVersion)
	if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, metaJournalSchema, meta[metaJournalSchema]); err != nil {
		return c.classify(err)
	}
	if err := emit(&record{More: true, Time: time.Now().UTC().Format(time.RFC3339Nano), Meta: meta}); err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	for _, t := range journaled {
		var last int64 = -1
		var lastMsg, lastRun int64 = -1, -1
		for {
			q, args := `SELECT rowid AS _rowid, * FROM `+t.table+` WHERE rowid > ? ORDER BY rowid LIMIT ?`, []any{last, rowsPerLine}
			if t.table == "flag_history" { // WITHOUT ROWID since schema 3: paged by its key
				q, args = `SELECT * FROM flag_history WHERE (message, run) > (?, ?) ORDER BY message, run LIMIT ?`, []any{lastMsg, lastRun, rowsPerLine}
			}
			rows, err := tx.Query(q, args...)
			if err != nil {
				return c.classify(err)
			}
			page, err := scanMaps(rows)
			if err != nil {
				return c.classify(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if t.table == "flag_history" {
					lastMsg, lastRun = r["message"].(int64), r["run"].(int64)
					continue
				}
				last = r["_rowid"].(int64)
				delete(r, "_rowid")
			}
			if err := emit(&record{More: true, Rows: map[string][]map[string]any{t.table: page}}); err != nil {
				return fmt.Errorf("catalog: journal snapshot: %w", err)
			}
		}
	}
	if err := emit(&record{}); err != nil { // the transaction's last line
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("catalog: journal snapshot: %w", err)
	}
	if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, metaJournalOffset, strconv.FormatInt(size, 10)); err != nil {
		return c.classify(err)
	}
	return c.classify(tx.Commit())
}

// Replay applies the journal's transactions from offset on to the catalog
// (which must not have a journal attached) and returns how many it
// applied. A transaction whose last line is missing is not applied.
func (c *Catalog) Replay(ctx context.Context, path string, from int64) (int, journal.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.gen.Add(1)
	cols := map[string]map[string]bool{}
	for _, t := range journaled {
		m, err := c.columns(ctx, t.table)
		if err != nil {
			return 0, journal.Stats{}, err
		}
		cols[t.table] = m
	}
	var tx *sql.Tx
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	applied := 0
	st, err := journal.Read(path, from, func(l journal.Line) error {
		var r record
		d := json.NewDecoder(bytes.NewReader(l.Payload))
		d.UseNumber()
		if err := d.Decode(&r); err != nil {
			return fmt.Errorf("journal %s at %d: %w: %v", path, l.Offset, journal.ErrDamaged, err)
		}
		if tx == nil {
			var err error
			if tx, err = c.db.BeginTx(ctx, nil); err != nil {
				return c.classify(err)
			}
			if _, err := tx.Exec(`PRAGMA defer_foreign_keys=ON`); err != nil {
				return err
			}
		}
		if err := applyRecord(tx, &r, cols); err != nil {
			return fmt.Errorf("journal %s at %d: %w", path, l.Offset, err)
		}
		if r.More {
			return nil
		}
		if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, metaJournalOffset, strconv.FormatInt(l.End, 10)); err != nil {
			return err
		}
		err := tx.Commit()
		tx = nil
		if err != nil {
			return c.classify(err)
		}
		applied++
		return nil
	})
	return applied, st, err
}

func (c *Catalog) columns(ctx context.Context, table string) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, c.classify(err)
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		m[n] = true
	}
	return m, rows.Err()
}

func applyRecord(tx *sql.Tx, r *record, cols map[string]map[string]bool) error {
	for k, v := range r.Meta {
		if k == metaJournalOffset {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value`, k, v); err != nil {
			return err
		}
	}
	for _, t := range journaled {
		for _, row := range r.Rows[t.table] {
			if t.table == "messages" {
				if err := upgradeRow(tx, row, cols[t.table]); err != nil {
					return fmt.Errorf("%s row: %w", t.table, err)
				}
			}
			var names []string
			for n := range row {
				if cols[t.table][n] {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			args := make([]any, len(names))
			set := make([]string, 0, len(names))
			for i, n := range names {
				args[i] = jsonValue(row[n])
				set = append(set, n+"=excluded."+n)
			}
			q := `INSERT INTO ` + t.table + `(` + strings.Join(names, ",") + `) VALUES(` + placeholders(len(names)) + `) ON CONFLICT(` + t.key + `) DO UPDATE SET ` + strings.Join(set, ",")
			if _, err := tx.Exec(q, args...); err != nil {
				return fmt.Errorf("%s row: %w", t.table, err)
			}
		}
	}
	return nil
}

func jsonValue(v any) any {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return f
		}
		return n.String()
	}
	return v
}

// JournalPath is where an archive keeps the journal of its catalog at
// catalogPath.
func JournalPath(catalogPath string) string {
	return filepath.Join(filepath.Dir(catalogPath), "catalog.journal")
}

// upgradeRow brings a messages row of the journal to this catalog's
// schema 4 form: the checksum (hex in every journal) as 32 bytes, and the
// text forms of journals written before schema 4 (RFC 3339 dates, the
// sender's text) converted as migrate4 converts them; stored_at keeps its
// text, as migrate4 keeps it.
func upgradeRow(tx *sql.Tx, row map[string]any, cols map[string]bool) error {
	if !cols["sender_id"] {
		return nil
	}
	if s, ok := row["sha256"].(string); ok {
		row["sha256"] = encodeSHA(s)
	}
	if t, ok := textDate(row["internal_date"]); ok {
		_, off := t.Zone()
		row["internal_date"], row["date_zone"] = t.Unix(), int64(off/60)
	}
	if s, ok := row["sender"].(string); ok {
		delete(row, "sender")
		if s == "" {
			row["sender_id"] = nil
			return nil
		}
		if _, err := tx.Exec(`INSERT INTO senders(sender) VALUES(?) ON CONFLICT(sender) DO NOTHING`, s); err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(`SELECT id FROM senders WHERE sender=?`, s).Scan(&id); err != nil {
			return err
		}
		row["sender_id"] = id
	}
	return nil
}
