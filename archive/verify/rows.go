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

// eachMsg streams a folder's messages, expunged ones included, in storage
// order (file, frame, position), with the folder's committed size as of the
// same snapshot (one statement, one read transaction). Nothing is held
// beyond the current row.
func eachMsg(ctx context.Context, c *catalog.Catalog, f *catalog.Folder, fn func(m *msg, committed int64) error) error {
	var inner error
	err := c.EachInFileOrder(ctx, f.ID, func(cm *catalog.Message, committed int64) error {
		m := msg{id: cm.ID, uidValidity: cm.UIDValidity, uid: cm.UID, uidl: cm.UIDL, size: cm.Size, sha: cm.SHA256, file: cm.File,
			frameOffset: cm.FrameOffset, framePos: cm.FramePos, expunged: cm.ExpungedRun != 0}
		inner = fn(&m, committed)
		return inner
	})
	if err != nil && inner == nil {
		return fmt.Errorf("folder %q: reading the catalog: %w", f.Name, err)
	}
	return err
}

// currentFile re-reads a message's file name (a backup running beside
// verify may have renamed it since the row was read).
func currentFile(ctx context.Context, c *catalog.Catalog, id int64) (string, error) {
	return c.MessageFile(ctx, id)
}
