package verify

import (
	"context"
	"fmt"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// msg is what verification needs of a catalogued message.
type msg struct {
	id          int64
	uidValidity uint32
	uid         uint32
	uidl        string
	size        int64
	sha         string
	file        string
	frameOffset int64
	framePos    int64
	expunged    bool
	date        string
}

// finding starts a finding about m in folder f.
func (m *msg) finding(f *catalog.Folder, kind Kind, detail string) Finding {
	fd := Finding{Folder: f.Name, UIDL: m.uidl, File: m.file, Kind: kind, Detail: detail, Expunged: m.expunged}
	if m.uidl == "" {
		fd.UID, fd.UIDValidity = m.uid, m.uidValidity
	}
	return fd
}

// after reports whether m is stored after p in the same file.
func (m *msg) after(p *msg) bool {
	if p == nil || m.file != p.file {
		return false
	}
	return m.frameOffset > p.frameOffset || m.frameOffset == p.frameOffset && m.framePos > p.framePos
}

// eachMsgQuery reads a folder's messages for eachMsg. An empty
// messages.file (schema 3, mbox formats) is the folder's own file.
const eachMsgQuery = `SELECT m.id, m.uidvalidity, m.uid, COALESCE(m.uidl,''), m.size, m.sha256, COALESCE(NULLIF(m.file,''), fo.path),
		m.frame_offset, m.frame_pos, m.expunged_run IS NOT NULL, m.internal_date, fo.committed_size
		FROM messages m JOIN folders fo ON fo.id = m.folder_id
		WHERE m.folder_id = ? ORDER BY m.file, m.frame_offset, m.frame_pos, m.id`

// eachMsg streams a folder's messages, expunged ones included, in storage
// order (file, frame, position), with the folder's committed size as of the
// same snapshot (one statement, one read transaction). Nothing is held
// beyond the current row.
func eachMsg(ctx context.Context, c *catalog.Catalog, f *catalog.Folder, fn func(m *msg, committed int64) error) error {
	rows, err := c.DB().QueryContext(ctx, eachMsgQuery, f.ID)
	if err != nil {
		return fmt.Errorf("folder %q: reading the catalog: %w", f.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m msg
		var committed int64
		if err := rows.Scan(&m.id, &m.uidValidity, &m.uid, &m.uidl, &m.size, &m.sha, &m.file,
			&m.frameOffset, &m.framePos, &m.expunged, &m.date, &committed); err != nil {
			return fmt.Errorf("folder %q: reading the catalog: %w", f.Name, err)
		}
		if err := fn(&m, committed); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("folder %q: reading the catalog: %w", f.Name, err)
	}
	return nil
}

// currentFile re-reads a message's file name (a backup running beside
// verify may have renamed it since the row was read).
func currentFile(ctx context.Context, c *catalog.Catalog, id int64) (string, error) {
	var file string
	err := c.DB().QueryRowContext(ctx, `SELECT COALESCE(NULLIF(file,''),(SELECT path FROM folders WHERE folders.id=folder_id)) FROM messages WHERE id=?`, id).Scan(&file)
	return file, err
}
