package catalog

import (
	"context"
	"fmt"
)

// A POP3 message that mailkeep itself deleted from the server after
// archiving it (--delete, --keep-days) is not "expunged": the archive is
// then its only copy, which is the point of the archive. The catalog
// records it in messages.deleted_run (schema 2) and leaves expunged_run,
// "someone else removed it from the server", NULL. So Live, Counts and
// every reader that hides expunged mail by default show it.
//
// A schema-1 catalog opened read-only is not migrated: there, such
// messages still carry expunged_run, and Deleted derives them from the
// runs that recorded deletions (the same rule as the migration). Readers
// that hide expunged mail ask Deleted.ExpungedRun instead of reading
// Message.ExpungedRun, so they show the same thing on both schemas.

// MarkDeleted records that run deleted these messages from the server
// after archiving them. A message already marked expunged or deleted keeps
// its mark.
func (c *Catalog) MarkDeleted(ctx context.Context, run int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return c.write(ctx, func(tx *wtx) error {
		tx.touch("messages", ids...)
		for _, id := range ids {
			if _, err := tx.Exec(`UPDATE messages SET deleted_run=? WHERE id=? AND deleted_run IS NULL AND expunged_run IS NULL`, run, id); err != nil {
				return fmt.Errorf("catalog: mark deleted from the server: %w", err)
			}
		}
		return nil
	})
}

// Deleted maps the row id of each message mailkeep deleted from the server
// after archiving it to the run that deleted it.
type Deleted map[int64]int64

// ExpungedRun is the run that found m expunged from the server by someone
// else, 0 when it was not (it is live, or mailkeep deleted it).
func (d Deleted) ExpungedRun(m *Message) int64 {
	if d[m.ID] != 0 {
		return 0
	}
	return m.ExpungedRun
}

// Deleted returns the messages of a folder that mailkeep deleted from the
// server after archiving them.
func (c *Catalog) Deleted(ctx context.Context, folderID int64) (Deleted, error) {
	q := `SELECT id, deleted_run FROM messages WHERE folder_id=? AND deleted_run IS NOT NULL`
	v2, err := c.hasDeletedRun(ctx)
	if err != nil {
		return nil, err
	}
	if !v2 {
		q = `SELECT id, expunged_run FROM messages WHERE folder_id=? AND expunged_run IN (` + deletingRuns + `)`
	}
	q, args, err := c.forFolder(ctx, q, folderID)
	if err != nil {
		return nil, err
	}
	st, err := c.prepared(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("catalog: deleted messages: %w", err)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: deleted messages: %w", err)
	}
	defer rows.Close()
	d := Deleted{}
	for rows.Next() {
		var id, run int64
		if err := rows.Scan(&id, &run); err != nil {
			return nil, err
		}
		d[id] = run
	}
	return d, rows.Err()
}

// FolderCounts counts a folder's messages by state.
type FolderCounts struct {
	Total    int   // every catalogued message
	Expunged int   // expunged from the server by someone else
	Deleted  int   // deleted from the server by mailkeep after archiving
	Bytes    int64 // size of all of them
}

// Visible is how many messages ls, export and restore show by default:
// all but the expunged ones.
func (n FolderCounts) Visible() int { return n.Total - n.Expunged }

// CountStates counts a folder's messages by state, on either schema.
func (c *Catalog) CountStates(ctx context.Context, folderID int64) (FolderCounts, error) {
	var n FolderCounts
	v2, err := c.hasDeletedRun(ctx)
	if err != nil {
		return n, err
	}
	q := `SELECT COUNT(*), COUNT(expunged_run), COUNT(deleted_run), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`
	if !v2 {
		q = `SELECT COUNT(*), COUNT(expunged_run) - COALESCE(SUM(expunged_run IN (` + deletingRuns + `)),0),
			COALESCE(SUM(expunged_run IN (` + deletingRuns + `)),0), COALESCE(SUM(size),0) FROM messages WHERE folder_id=?`
	}
	q, args, err := c.forFolder(ctx, q, folderID)
	if err != nil {
		return n, err
	}
	err = c.queryRow(ctx, q, args...).Scan(&n.Total, &n.Expunged, &n.Deleted, &n.Bytes)
	return n, err
}

// hasDeletedRun reports whether the catalog has schema 2's
// messages.deleted_run (a schema-1 catalog opened read-only has not).
// The answer is kept: a catalog's columns do not change while it is open
// (Open migrates before anything is read), and asking cost more than the
// per-folder query it chooses (ls of 2,000 folders).
func (c *Catalog) hasDeletedRun(ctx context.Context) (bool, error) {
	switch c.deletedRun.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='deleted_run'`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("catalog: schema: %w", err)
	}
	if n > 0 {
		c.deletedRun.Store(1)
	} else {
		c.deletedRun.Store(2)
	}
	return n > 0, nil
}
