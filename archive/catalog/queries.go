package catalog

import (
	"context"
	"fmt"
)

// The catalog's own queries for verify and metrics, which used to run
// their SQL on DB() (issue 15: the catalog owns its SQL).

// fileOrderQuery is EachInFileOrder's statement (its plan is tested).
func (c *Catalog) fileOrderQuery() string {
	return `SELECT ` + c.msgCols() + `, (SELECT committed_size FROM folders WHERE folders.id=messages.folder_id)
		FROM messages WHERE folder_id=? ORDER BY file, frame_offset, frame_pos, id`
}

// EachInFileOrder calls fn for every message of a folder, expunged ones
// included, in storage order (file, frame, position in the frame), with
// the folder's committed file size as of the same snapshot (one
// statement, one read transaction). Nothing is held beyond the current
// row. It is verify's reading of a folder.
func (c *Catalog) EachInFileOrder(ctx context.Context, folderID int64, fn func(m *Message, committedSize int64) error) error {
	q, args, err := c.forFolder(ctx, c.fileOrderQuery(), folderID)
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
		var committed int64
		m, err := c.scanMessage(ctx, rows, &committed)
		if err != nil {
			return err
		}
		if err := fn(m, committed); err != nil {
			return err
		}
	}
	return rows.Err()
}

// messageFileQuery is MessageFile's statement.
const messageFileQuery = `SELECT ` + fileCol + ` FROM messages WHERE id=?`

// MessageFile re-reads the file of the message with row id (a backup
// running beside verify may have renamed it since its row was read).
func (c *Catalog) MessageFile(ctx context.Context, id int64) (string, error) {
	st, err := c.prepared(ctx, messageFileQuery)
	if err != nil {
		return "", err
	}
	var file string
	if err := st.QueryRowContext(ctx, id).Scan(&file); err != nil {
		return "", fmt.Errorf("catalog: message file: %w", err)
	}
	return file, nil
}

// backupPendingQuery is BackupPending's statement.
const backupPendingQuery = `SELECT EXISTS (SELECT 1 FROM runs WHERE kind='backup' AND ended IS NULL AND outcome IS NULL)`

// BackupPending reports whether a backup run has not ended: it is running
// now, or it was killed and no later run has recorded it as killed.
func (c *Catalog) BackupPending(ctx context.Context) (bool, error) {
	var pending bool
	if err := c.db.QueryRowContext(ctx, backupPendingQuery).Scan(&pending); err != nil {
		return false, fmt.Errorf("catalog: runs: %w", err)
	}
	return pending, nil
}

// MessageCount returns how many messages the catalog holds, expunged
// ones included (metrics).
func (c *Catalog) MessageCount(ctx context.Context) (int64, error) {
	var n int64
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: messages: %w", err)
	}
	return n, nil
}

// messageSHA256Query is MessageSHA256's statement.
const messageSHA256Query = `SELECT sha256 FROM messages WHERE id=?`

// MessageSHA256 returns the checksum (lower-case hex) of the message with
// row id: the text index's check that its row id hints still point at the
// same messages (search).
func (c *Catalog) MessageSHA256(ctx context.Context, id int64) (string, error) {
	var sha any
	if err := c.queryRow(ctx, messageSHA256Query, id).Scan(&sha); err != nil {
		return "", fmt.Errorf("catalog: message sha256: %w", err)
	}
	return decodeSHA(sha), nil
}
