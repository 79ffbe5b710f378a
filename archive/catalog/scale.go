package catalog

import (
	"context"
	"fmt"
	"strings"
)

// Queries whose cost follows what changed in a folder, not the folder's
// size: an incremental backup looks messages up by UID in batches and
// walks a folder's UIDs page by page instead of loading the folder.

// SyncState is what a backup needs to know of a folder's catalogued
// messages before it synchronises the folder.
type SyncState struct {
	// Live counts the messages under the given UIDVALIDITY not marked
	// expunged.
	Live int
	// Stale reports live messages stored under another UIDVALIDITY, or
	// without UID and UIDL (rows reindex rebuilt from the files alone):
	// the folder must be re-keyed before it is synchronised.
	Stale bool
}

// SyncState returns the state of a folder's live messages relative to the
// server's UIDVALIDITY from indexes alone, without reading a row of the
// folder: Live is the folder's entries in messages_uid under uidValidity
// less those in messages_gone (the expunged rows), Stale compares the
// same two counts under the other UIDVALIDITYs and looks in
// messages_nokey (a folder of 200,000 messages: a few tens of
// milliseconds instead of reading every row, 0.24 s).
func (c *Catalog) SyncState(ctx context.Context, folderID int64, uidValidity uint32) (SyncState, error) {
	var st SyncState
	err := c.queryRow(ctx, syncStateQuery, folderID, uidValidity).Scan(&st.Live, &st.Stale)
	if err != nil {
		return st, fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	return st, nil
}

const syncStateQuery = `SELECT
	(SELECT COUNT(*) FROM messages INDEXED BY messages_uid WHERE folder_id=?1 AND uidvalidity=?2 AND uid>0)
	- (SELECT COUNT(*) FROM messages INDEXED BY messages_gone WHERE folder_id=?1 AND uidvalidity=?2 AND uid>0 AND expunged_run IS NOT NULL),
	(SELECT COUNT(*) FROM messages INDEXED BY messages_uid WHERE folder_id=?1 AND uidvalidity<?2 AND uid>0)
	- (SELECT COUNT(*) FROM messages INDEXED BY messages_gone WHERE folder_id=?1 AND uidvalidity<?2 AND uid>0 AND expunged_run IS NOT NULL) > 0
	OR (SELECT COUNT(*) FROM messages INDEXED BY messages_uid WHERE folder_id=?1 AND uidvalidity>?2 AND uid>0)
	- (SELECT COUNT(*) FROM messages INDEXED BY messages_gone WHERE folder_id=?1 AND uidvalidity>?2 AND uid>0 AND expunged_run IS NOT NULL) > 0
	OR EXISTS(SELECT 1 FROM messages INDEXED BY messages_nokey WHERE folder_id=?1 AND uid=0 AND uidl IS NULL AND expunged_run IS NULL)`

// MaxUIDBatch is the most UIDs ByUIDs takes at once.
const MaxUIDBatch = 500

// ByUIDs returns the messages of a folder stored under uidValidity with the
// given UIDs (expunged ones included), by UID. At most MaxUIDBatch UIDs.
func (c *Catalog) ByUIDs(ctx context.Context, folderID int64, uidValidity uint32, uids []uint32) (map[uint32]*Message, error) {
	out := make(map[uint32]*Message, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	if len(uids) > MaxUIDBatch {
		return nil, fmt.Errorf("catalog: %d UIDs in one lookup (at most %d)", len(uids), MaxUIDBatch)
	}
	args := make([]any, 0, len(uids)+2)
	for _, u := range uids {
		args = append(args, u)
	}
	args = append(args, folderID, uidValidity)
	// One statement per batch length would fill the statement cache:
	// batches are short, parsing is cheap next to the lookups. The UIDs
	// drive the join, one lookup of messages_uid each: "uid IN (...)"
	// cannot use that partial index (uid IN does not imply uid>0), and
	// with "AND uid>0" SQLite walks the index from UID 1, so that either
	// read the whole folder for each batch (200,000 messages: 0.1 s a
	// batch of 500 where the join takes 4 ms).
	q := byUIDsQuery(c.msgCols(), len(uids))
	err := c.eachUnprepared(ctx, q, args, func(m *Message) { out[m.UID] = m })
	if err != nil {
		return nil, fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	return out, nil
}

func byUIDsQuery(cols string, n int) string {
	return `WITH u(v) AS (VALUES (?)` + strings.Repeat(",(?)", n-1) + `) SELECT ` + cols + ` FROM u CROSS JOIN messages WHERE messages.folder_id=? AND messages.uidvalidity=? AND messages.uid=u.v AND messages.uid>0`
}

// eachUnprepared runs a one-off message query (not kept in the statement
// cache: batch lookups vary in length) and calls fn for every row.
func (c *Catalog) eachUnprepared(ctx context.Context, q string, args []any, fn func(*Message)) error {
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := c.scanMessage(ctx, rows)
		if err != nil {
			return err
		}
		fn(m)
	}
	return rows.Err()
}

// UIDRef is a message's catalog id and UID.
type UIDRef struct {
	ID  int64
	UID uint32
}

// LiveUIDs returns up to limit live messages of a folder stored under
// uidValidity with a UID above after, in UID order: a cursor that holds no
// read transaction between pages.
func (c *Catalog) LiveUIDs(ctx context.Context, folderID int64, uidValidity uint32, after uint32, limit int) ([]UIDRef, error) {
	st, err := c.prepared(ctx, liveUIDsQuery)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, folderID, uidValidity, after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	defer rows.Close()
	out := make([]UIDRef, 0, limit)
	for rows.Next() {
		var r UIDRef
		if err := rows.Scan(&r.ID, &r.UID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const liveUIDsQuery = `SELECT id, uid FROM messages INDEXED BY messages_uid WHERE folder_id=? AND uidvalidity=? AND uid>0 AND uid>? AND expunged_run IS NULL ORDER BY uid LIMIT ?`

// FolderStatus is the server's view of a folder after a sync (see
// SetFolderStatus).
type FolderStatus struct {
	ID                   int64
	UIDValidity, UIDNext uint32
	Messages             uint32
	HighestModSeq        uint64
}

// folderChunk is how many folders one transaction of EnsureFolders or
// SetFolderStatuses writes: the journal entry of a transaction is built in
// memory, so 100,000 folders go in many transactions of a bounded size.
const folderChunk = 1000

// SetFolderStatuses is SetFolderStatus for many folders, a chunk of
// folders per transaction.
func (c *Catalog) SetFolderStatuses(ctx context.Context, sts []FolderStatus) error {
	for len(sts) > 0 {
		n := min(len(sts), folderChunk)
		if err := c.setFolderStatuses(ctx, sts[:n]); err != nil {
			return err
		}
		sts = sts[n:]
	}
	return nil
}

func (c *Catalog) setFolderStatuses(ctx context.Context, sts []FolderStatus) error {
	return c.write(ctx, func(tx *wtx) error {
		up, err := tx.PrepareContext(ctx, `UPDATE folders SET uidvalidity=?, uidnext=?, messages=?, highestmodseq=? WHERE id=? AND (uidvalidity<>? OR uidnext<>? OR messages<>? OR highestmodseq<>?)`)
		if err != nil {
			return err
		}
		defer up.Close()
		for _, s := range sts {
			res, err := up.ExecContext(ctx, s.UIDValidity, s.UIDNext, s.Messages, s.HighestModSeq, s.ID, s.UIDValidity, s.UIDNext, s.Messages, s.HighestModSeq)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				tx.touch("folders", s.ID)
			}
		}
		return nil
	})
}

// NewFolder is a folder for EnsureFolders.
type NewFolder struct {
	Name       string
	Delim      rune
	SpecialUse string
	Path       string
}

// EnsureFolders is EnsureFolder for many folders: brand-new ones are
// inserted folderChunk per transaction; one whose name or path the
// catalog holds (a changed folder, a reindexed one to rename, one the
// caller did not know was unchanged) takes EnsureFolder's careful way,
// one at a time. It returns the catalog entries in the order of fs. It
// reads no folder list of its own: a caller holding a fresh Folders list
// passes only the folders new or changed in it.
func (c *Catalog) EnsureFolders(ctx context.Context, fs []NewFolder) ([]*Folder, error) {
	out := make([]*Folder, len(fs))
	for i := 0; i < len(fs); i += folderChunk {
		if err := c.insertFolders(ctx, fs[i:min(i+folderChunk, len(fs))], out[i:]); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	for i, nf := range fs {
		if out[i] != nil {
			continue
		}
		var err error
		if out[i], err = c.EnsureFolder(ctx, nf.Name, nf.Delim, nf.SpecialUse, nf.Path); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertFolders adds the folders fs in one transaction, setting out[i]
// for each one added; a folder whose name or path is taken is left for
// EnsureFolder.
func (c *Catalog) insertFolders(ctx context.Context, fs []NewFolder, out []*Folder) error {
	return c.write(ctx, func(tx *wtx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO folders(name,delim,special_use,path) VALUES(?,?,?,?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, nf := range fs {
			d := ""
			if nf.Delim != 0 {
				d = string(nf.Delim)
			}
			res, err := ins.ExecContext(ctx, nf.Name, d, nf.SpecialUse, nf.Path)
			if err != nil {
				return fmt.Errorf("folder %q: %w", nf.Name, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue // known, or its path taken: EnsureFolder
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			tx.touch("folders", id)
			out[i] = &Folder{ID: id, Name: nf.Name, Delim: nf.Delim, SpecialUse: nf.SpecialUse, Path: nf.Path}
		}
		return nil
	})
}
