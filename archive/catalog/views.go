package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Gmail label folders as views (schema 5). In Gmail mode a backup stores
// each message once, in the All Mail folder (special use \All), with its
// labels; every other Gmail folder that shows a label (INBOX, [Gmail]/Sent
// Mail, "Work/2014") is a folders row with label and view_of set and no
// messages or file of its own. The message queries (Live, All, Each,
// ByUID, Counts, CountStates, Deleted, EachInFileOrder), given a view,
// answer with the messages of the view_of folder whose labels hold the
// view's label, with their All Mail UIDs, UIDVALIDITY and file; Folders
// and Folder give a view the UIDVALIDITY, UIDNEXT and last UID of the
// folder it shows. So ls, cat, show, search and serve show every label as
// a folder while each message is stored once. Readers that walk the files
// (verify, repair, reindex) skip views.
//
// A folder that held messages of its own before it became a view (an
// archive backed up folder by folder before Gmail mode) keeps them: its
// row is renamed to FrozenName(name), keeps its id, path, file and rows,
// and carries the label it showed (label set, view_of NULL) so that the
// backup never marks it gone; a new view row takes the name.

// FrozenPrefix starts the name of a folder backed up folder by folder
// that Gmail mode replaced by a view (see FrozenName).
const FrozenPrefix = "[before Gmail mode]"

// FrozenName is the name a folder with messages of its own takes when
// Gmail mode makes its name a view: "[before Gmail mode]/INBOX".
func FrozenName(name string, delim rune) string {
	if delim == 0 {
		delim = '/'
	}
	return FrozenPrefix + string(delim) + name
}

// IsFrozen reports whether f is a folder of messages backed up folder by
// folder before Gmail mode made its name a view: it is kept as it is and
// never synchronised again.
func (f *Folder) IsFrozen() bool { return f.ViewOf == 0 && f.Label != "" }

// View is a Gmail label folder to show over the All Mail folder.
type View struct {
	Name       string // the server's folder name: INBOX, [Gmail]/Sent Mail, Work/2014
	Delim      rune
	SpecialUse string
	Label      string // the label as X-GM-LABELS names it: \Inbox, \Sent, Work/2014
}

// viewPath is the folders.path of a view: unique (the column is), and
// never a file (archive paths start with mbox/ or maildir/).
func viewPath(name string) string { return "gmail-label:" + name }

// EnsureViews makes each of views a view of folder of (All Mail), in one
// transaction, journaled: a new name gets a view row; a view gets its
// label, delimiter and special use updated; a folder of that name without
// messages becomes the view in place; a folder with messages of its own
// is renamed to FrozenName and a new view row takes the name. It returns
// the view rows in the order of views.
func (c *Catalog) EnsureViews(ctx context.Context, of int64, views []View) ([]*Folder, error) {
	if len(views) == 0 {
		return nil, nil
	}
	if !c.v5 {
		return nil, fmt.Errorf("catalog: label folders need schema 5")
	}
	known, err := c.Folders(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*Folder, len(known))
	for _, f := range known {
		byName[f.Name] = f
	}
	// The common case, every view known and unchanged, reads only.
	same := true
	for _, v := range views {
		f := byName[v.Name]
		if f == nil || f.ViewOf != of || f.Label != v.Label || f.Delim != v.Delim || f.SpecialUse != v.SpecialUse || f.GoneRun != 0 {
			same = false
			break
		}
	}
	if !same {
		err = c.write(ctx, func(tx *wtx) error {
			for _, v := range views {
				if err := ensureView(tx, of, v); err != nil {
					return fmt.Errorf("folder %q: %w", v.Name, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: label folders: %w", err)
		}
	}
	out := make([]*Folder, len(views))
	for i, v := range views {
		if out[i], err = c.Folder(ctx, v.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func ensureView(tx *wtx, of int64, v View) error {
	d := ""
	if v.Delim != 0 {
		d = string(v.Delim)
	}
	var id, viewOf int64
	var own int
	err := tx.QueryRow(`SELECT id, COALESCE(view_of,0), (SELECT COUNT(*) FROM messages WHERE folder_id=folders.id) FROM folders WHERE name=?`, v.Name).Scan(&id, &viewOf, &own)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return insertView(tx, of, v, d)
	case err != nil:
		return err
	case viewOf != 0 || own == 0:
		// A view already, or a folder that holds nothing: it becomes (or
		// stays) the view in place. An empty folder's path names no file.
		if _, err := tx.Exec(`UPDATE folders SET delim=?, special_use=?, label=?, view_of=?, gone_run=NULL WHERE id=?`, d, v.SpecialUse, v.Label, of, id); err != nil {
			return err
		}
		tx.touch("folders", id)
		return nil
	}
	// Messages of its own: the folder keeps them under a name that says
	// what it is, and the name becomes the view.
	frozen := FrozenName(v.Name, v.Delim)
	for n := 2; ; n++ {
		var x int
		err := tx.QueryRow(`SELECT 1 FROM folders WHERE name=?`, frozen).Scan(&x)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return err
		}
		frozen = fmt.Sprintf("%s (%d)", FrozenName(v.Name, v.Delim), n)
	}
	if _, err := tx.Exec(`UPDATE folders SET name=?, label=?, view_of=NULL WHERE id=?`, frozen, v.Label, id); err != nil {
		return err
	}
	tx.touch("folders", id)
	return insertView(tx, of, v, d)
}

func insertView(tx *wtx, of int64, v View, d string) error {
	res, err := tx.Exec(`INSERT INTO folders(name,delim,special_use,path,label,view_of) VALUES(?,?,?,?,?,?)`, v.Name, d, v.SpecialUse, viewPath(v.Name), v.Label, of)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	tx.touch("folders", id)
	return nil
}

// viewInfo is what the message queries need of a view.
type viewInfo struct {
	of    int64
	label string
}

// viewsOf returns the views of the catalog by folder id, read once per
// write generation (a reading open reads them once).
func (c *Catalog) viewsOf(ctx context.Context) (map[int64]viewInfo, error) {
	if !c.v5 {
		return nil, nil
	}
	g := c.gen.Load()
	c.viewsMu.Lock()
	defer c.viewsMu.Unlock()
	if c.viewsOK && c.viewsGen == g {
		return c.views, nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT id, view_of, COALESCE(label,'') FROM folders WHERE view_of IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("catalog: label folders: %w", err)
	}
	defer rows.Close()
	m := map[int64]viewInfo{}
	for rows.Next() {
		var id int64
		var v viewInfo
		if err := rows.Scan(&id, &v.of, &v.label); err != nil {
			return nil, err
		}
		m[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.views, c.viewsGen, c.viewsOK = m, g, true
	return m, nil
}

// view reports whether folderID is a view, and what it shows. A writing
// open keeps the views between writes; a reading one (which may share
// the file with a backup in another process) looks the folder up.
func (c *Catalog) view(ctx context.Context, folderID int64) (viewInfo, bool, error) {
	if !c.v5 {
		return viewInfo{}, false, nil
	}
	if !c.cacheFolders.Load() {
		var v viewInfo
		err := c.queryRow(ctx, `SELECT COALESCE(view_of,0), COALESCE(label,'') FROM folders WHERE id=?`, folderID).Scan(&v.of, &v.label)
		if errors.Is(err, sql.ErrNoRows) {
			return v, false, nil
		}
		if err != nil {
			return v, false, fmt.Errorf("catalog: folder %d: %w", folderID, err)
		}
		return v, v.of != 0, nil
	}
	m, err := c.viewsOf(ctx)
	if err != nil {
		return viewInfo{}, false, err
	}
	v, ok := m[folderID]
	return v, ok, nil
}

// hasLabel is the SQL test that messages.labels (one per line) holds the
// label bound to the next parameter.
const hasLabel = ` AND instr(char(10)||labels||char(10), char(10)||?||char(10))>0`

// viewQuery turns a per-folder message query (its first parameter the
// folder id, its WHERE clause starting "WHERE folder_id=?") into the
// view's: the viewed folder's messages that carry the label. args are the
// query's parameters; the label goes right after the folder id.
func viewQuery(q string, v viewInfo, args []any) (string, []any) {
	const w = "WHERE folder_id=?"
	i := strings.Index(q, w)
	if i < 0 {
		panic("catalog: viewQuery: no folder clause in " + q)
	}
	q = q[:i+len(w)] + hasLabel + q[i+len(w):]
	out := make([]any, 0, len(args)+1)
	out = append(out, v.of, v.label)
	out = append(out, args[1:]...)
	return q, out
}

// forFolder returns q and args as they are, or the view's form of them
// when args[0], the folder id, is a view.
func (c *Catalog) forFolder(ctx context.Context, q string, args ...any) (string, []any, error) {
	id, _ := args[0].(int64)
	v, ok, err := c.view(ctx, id)
	if err != nil || !ok {
		return q, args, err
	}
	q, args = viewQuery(q, v, args)
	return q, args, nil
}

// resolveViews gives each view of list the UIDVALIDITY, UIDNEXT and last
// UID of the folder it shows (its messages are that folder's).
func resolveViews(list []Folder) {
	byID := make(map[int64]int, len(list))
	for i := range list {
		byID[list[i].ID] = i
	}
	for i := range list {
		f := &list[i]
		if !f.IsView() {
			continue
		}
		if j, ok := byID[f.ViewOf]; ok {
			b := &list[j]
			f.UIDValidity, f.UIDNext, f.LastUID = b.UIDValidity, b.UIDNext, b.LastUID
		}
	}
}

// resolveView is resolveViews for one folder read alone.
func (c *Catalog) resolveView(ctx context.Context, f *Folder) error {
	if !f.IsView() {
		return nil
	}
	var n [3]any
	err := c.queryRow(ctx, `SELECT uidvalidity, uidnext, last_uid FROM folders WHERE id=?`, f.ViewOf).Scan(&n[0], &n[1], &n[2])
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	f.UIDValidity, f.UIDNext, f.LastUID = uint32(i64(n[0])), uint32(i64(n[1])), uint32(i64(n[2]))
	return nil
}

// ByGmailMsgIDs returns the messages of a folder with these X-GM-MSGIDs
// (expunged ones included; the newest row of each id), by X-GM-MSGID: a
// message that left All Mail for Trash or Spam and came back is found by
// its id (index messages_gm). At most MaxUIDBatch ids.
func (c *Catalog) ByGmailMsgIDs(ctx context.Context, folderID int64, ids []uint64) (map[uint64]*Message, error) {
	out := make(map[uint64]*Message, len(ids))
	if len(ids) == 0 || !c.v5 {
		return out, nil
	}
	if len(ids) > MaxUIDBatch {
		return nil, fmt.Errorf("catalog: %d ids in one lookup (at most %d)", len(ids), MaxUIDBatch)
	}
	args := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		args = append(args, int64(id))
	}
	args = append(args, folderID)
	q := `SELECT ` + c.msgCols() + ` FROM messages WHERE gm_msgid IN (?` + strings.Repeat(",?", len(ids)-1) + `) AND folder_id=? ORDER BY id`
	if err := c.eachUnprepared(ctx, q, args, func(m *Message) { out[m.GmailMsgID] = m }); err != nil {
		return nil, fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	return out, nil
}

// GmailMissing reports whether a folder has live messages under
// uidValidity with a UID above after without an X-GM-MSGID (backed up
// before Gmail mode, or stored while Gmail did not answer for them): the
// next Gmail-mode run reads the ids and labels of the whole folder once.
// It walks the UID key from after on: 0 looks at the whole folder.
func (c *Catalog) GmailMissing(ctx context.Context, folderID int64, uidValidity, after uint32) (bool, error) {
	if !c.v5 {
		return false, nil
	}
	var n int
	err := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_uid WHERE folder_id=? AND uidvalidity=? AND uid>0 AND uid>? AND expunged_run IS NULL AND gm_msgid IS NULL)`, folderID, uidValidity, after).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("catalog: folder %d: %w", folderID, err)
	}
	return n != 0, nil
}

// Revive is a message of All Mail found again under a new UID (it left
// for Trash or Spam and came back): its row is live again, under the
// new UID, with the server's flags, instead of a second copy.
type Revive struct {
	ID          int64
	UIDValidity uint32
	UID         uint32
	Flags       []string
	ModSeq      uint64
	ThrID       uint64
	Labels      []string
}

// ReviveMessages records revived messages in one transaction (journaled;
// the flag history notes the run).
func (c *Catalog) ReviveMessages(ctx context.Context, run int64, rv []Revive) error {
	if len(rv) == 0 {
		return nil
	}
	err := c.write(ctx, func(tx *wtx) error {
		for _, r := range rv {
			tx.touch("messages", r.ID)
			tx.touchHist(r.ID, run)
			if err := historyBase(tx, r.ID); err != nil {
				return err
			}
			fl := JoinFlags(r.Flags)
			if _, err := tx.Exec(`UPDATE messages SET uidvalidity=?, uid=?, flags=?, modseq=?, gm_thrid=?, labels=?, expunged_run=NULL WHERE id=?`,
				r.UIDValidity, r.UID, fl, r.ModSeq, gmailID(r.ThrID), JoinLabels(r.Labels), r.ID); err != nil {
				return fmt.Errorf("uid %d: %w", r.UID, err)
			}
			if _, err := tx.Exec(`INSERT OR REPLACE INTO flag_history(message,run,flags) VALUES(?,?,?)`, r.ID, run, fl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: revive: %w", err)
	}
	return nil
}
