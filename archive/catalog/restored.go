package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Restored is the record of one message restored to a destination.
type Restored struct {
	Key              string // message key (see restore.Message.Key)
	Folder           string // destination folder
	UIDValidity, UID uint32 // from APPENDUID; 0 when the server gave none
}

// IsRestored reports whether key was restored to server/user.
func (c *Catalog) IsRestored(ctx context.Context, server, user, key string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM restored WHERE server=? AND user=? AND key=?`, server, user, key).Scan(&n)
	return n > 0, err
}

// RestoredIn returns what was recorded as restored to server/user into
// the destination folder, one query for the whole folder.
func (c *Catalog) RestoredIn(ctx context.Context, server, user, folder string) ([]Restored, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key, folder, uidvalidity, uid FROM restored WHERE server=? AND user=? AND folder=?`, server, user, folder)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Restored
	for rows.Next() {
		var r Restored
		if err := rows.Scan(&r.Key, &r.Folder, &r.UIDValidity, &r.UID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkRestored records that key was restored to server/user. A catalog
// that cannot be written fails with an error wrapping ErrReadOnly.
func (c *Catalog) MarkRestored(ctx context.Context, server, user, key, folder string, uidValidity, uid uint32, run int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.db.ExecContext(ctx, `INSERT OR REPLACE INTO restored(server,user,key,folder,uidvalidity,uid,run) VALUES(?,?,?,?,?,?,?)`, server, user, key, folder, uidValidity, uid, run)
	return readOnlyErr(err)
}

// readOnlyErr wraps ErrReadOnly around SQLite's errors for a database
// that cannot be written (SQLITE_READONLY and its extended codes, and the
// query_only refusal of OpenReadOnly).
func readOnlyErr(err error) error {
	var se *sqlite.Error
	if err != nil && errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY {
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// MessageByID returns the message with catalog row id (restore names a
// message it reports by its folder and UID or UIDL, found so).
func (c *Catalog) MessageByID(ctx context.Context, id int64) (*Message, error) {
	ms, err := c.query(ctx, `SELECT `+c.msgCols()+byIDFrom, id)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return ms[0], nil
}

// metaSourceNamespace is the meta key of the source's personal namespace:
// JSON {"prefix": "INBOX.", "delim": "."} as the server's NAMESPACE
// command gave it at the last backup (absent: never recorded).
const metaSourceNamespace = "source_namespace"

type namespaceJSON struct {
	Prefix string `json:"prefix"`
	Delim  string `json:"delim"` // "" for a flat server
}

// SetSourceNamespace records the source's personal namespace (backup, at
// each session's start); restore maps folder names relative to it.
func (c *Catalog) SetSourceNamespace(ctx context.Context, prefix string, delim rune) error {
	ns := namespaceJSON{Prefix: prefix}
	if delim != 0 {
		ns.Delim = string(delim)
	}
	b, err := json.Marshal(ns)
	if err != nil {
		return err
	}
	if have, err := c.Meta(ctx, metaSourceNamespace); err == nil && have == string(b) {
		return nil
	}
	return readOnlyErr(c.SetMeta(ctx, metaSourceNamespace, string(b)))
}

// SourceNamespace returns the recorded personal namespace of the source;
// ok is false when none was recorded (archives from before it was).
func (c *Catalog) SourceNamespace(ctx context.Context) (prefix string, delim rune, ok bool, err error) {
	v, err := c.Meta(ctx, metaSourceNamespace)
	if err != nil || v == "" {
		return "", 0, false, err
	}
	var ns namespaceJSON
	if err := json.Unmarshal([]byte(v), &ns); err != nil {
		return "", 0, false, fmt.Errorf("meta %s: %w", metaSourceNamespace, err)
	}
	for _, r := range ns.Delim {
		delim = r
		break
	}
	return ns.Prefix, delim, true, nil
}
