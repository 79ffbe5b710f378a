package catalog

import (
	"database/sql"
	"fmt"
	"strings"
)

// schemaVersion is stored in meta.schema_version; Open refuses a newer one
// and migrates an older one (see migrate). OpenReadOnly reads older ones
// as they are.
//
//	1: the first schema
//	2: messages.deleted_run (POP3 messages mailkeep deleted after archiving)
//	3: a leaner catalog: no messages_sha index (no query used it),
//	   messages.file '' where it is the folder's path (every mbox message),
//	   flag_history WITHOUT ROWID, message dates without a zero fraction
//	4: under 200 bytes a message: sha256 as 32 bytes, internal_date as
//	   unix seconds with its zone in date_zone, stored_at as
//	   milliseconds into the storing run, senders stored once (senders table, sender_id), no
//	   flag_history row until a message's flags change
//	5: Gmail: messages.gm_msgid, gm_thrid and labels (X-GM-MSGID,
//	   X-GM-THRID, X-GM-LABELS); folders.label and view_of (a Gmail
//	   label shown as a folder over the messages of its view_of folder)
const schemaVersion = 5

// schema is the catalog's SQL schema. README.md documents it for users who
// open the catalog with sqlite3.
const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- One row per run of mailkeep against this archive.
CREATE TABLE IF NOT EXISTS runs (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,            -- backup | restore | verify
	source       TEXT NOT NULL,            -- URL without password
	started      TEXT NOT NULL,            -- RFC 3339, UTC
	ended        TEXT,                     -- NULL while running or after a crash
	outcome      TEXT,                     -- ok | partial | failed | interrupted
	fetched      INTEGER NOT NULL DEFAULT 0,
	bytes        INTEGER NOT NULL DEFAULT 0,
	flag_changes INTEGER NOT NULL DEFAULT 0,
	expunged     INTEGER NOT NULL DEFAULT 0,
	rekeyed      INTEGER NOT NULL DEFAULT 0,
	deleted      INTEGER NOT NULL DEFAULT 0, -- POP3 messages deleted from the server
	failed       INTEGER NOT NULL DEFAULT 0,
	error        TEXT
);

-- One row per source folder ever seen.
CREATE TABLE IF NOT EXISTS folders (
	id             INTEGER PRIMARY KEY,
	name           TEXT NOT NULL UNIQUE,   -- UTF-8 IMAP name
	delim          TEXT NOT NULL,          -- hierarchy delimiter ('' for none)
	special_use    TEXT NOT NULL DEFAULT '',
	path           TEXT NOT NULL UNIQUE,   -- archive path relative to the archive dir
	uidvalidity    INTEGER NOT NULL DEFAULT 0,
	uidnext        INTEGER NOT NULL DEFAULT 0,
	messages       INTEGER NOT NULL DEFAULT 0,
	highestmodseq  INTEGER NOT NULL DEFAULT 0,
	last_uid       INTEGER NOT NULL DEFAULT 0, -- highest UID stored under uidvalidity
	committed_size INTEGER NOT NULL DEFAULT 0, -- mbox formats: file size at the last commit
	gone_run       INTEGER,                    -- run that found the folder deleted on the server
	label          TEXT,                       -- Gmail: the label this folder shows (schema 5); NULL for a folder of its own
	view_of        INTEGER REFERENCES folders(id) -- Gmail: the folder (All Mail) whose messages carrying label this folder shows (schema 5)
);

-- One row per archived message.
CREATE TABLE IF NOT EXISTS messages (
	id            INTEGER PRIMARY KEY,
	folder_id     INTEGER NOT NULL REFERENCES folders(id),
	uidvalidity   INTEGER NOT NULL DEFAULT 0,
	uid           INTEGER NOT NULL DEFAULT 0,   -- 0 for POP3
	uidl          TEXT,                         -- POP3 UIDL
	modseq        INTEGER NOT NULL DEFAULT 0,
	internal_date INTEGER NOT NULL,             -- unix seconds (schema 4; RFC 3339 text for a date with a fraction of a second)
	received_date TEXT,                         -- POP3: newest Received: header date, RFC 3339
	flags         TEXT NOT NULL DEFAULT '',     -- space-separated flags and keywords
	size          INTEGER NOT NULL,             -- exact byte count (RFC822.SIZE)
	sha256        BLOB NOT NULL,                -- SHA-256 of the exact bytes, 32 bytes (schema 4; hex text before)
	message_id    TEXT NOT NULL DEFAULT '',
	subject       TEXT NOT NULL DEFAULT '',
	file          TEXT NOT NULL,                -- Maildir file relative to the archive dir; '' for the folder's own file (mbox formats, schema 3)
	frame_offset  INTEGER NOT NULL DEFAULT 0,   -- mbox: file offset of the frame holding the From line
	frame_pos     INTEGER NOT NULL DEFAULT 0,   -- mbox: offset of the From line inside the decompressed frame
	stored_run    INTEGER NOT NULL REFERENCES runs(id),
	stored_at     INTEGER NOT NULL,             -- when it became durable: milliseconds since runs.started of stored_run, rounded up (schema 4; RFC 3339 text in rows from before)
	expunged_run  INTEGER REFERENCES runs(id),  -- first run that saw it gone from the server
	deleted_run   INTEGER REFERENCES runs(id),  -- POP3: run that deleted it from the server after archiving it (schema 2)
	date_zone     INTEGER NOT NULL DEFAULT 0,   -- internal_date's zone offset, minutes east of UTC (schema 4)
	sender_id     INTEGER REFERENCES senders(id), -- the From: address shown by ls, NULL for none (schema 4)
	gm_msgid      INTEGER,                      -- Gmail X-GM-MSGID (schema 5), NULL elsewhere
	gm_thrid      INTEGER,                      -- Gmail X-GM-THRID (schema 5)
	labels        TEXT                          -- Gmail X-GM-LABELS, one per line, as Gmail names them (\Inbox, \Sent, Work/2014), NULL elsewhere (schema 5)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_uid ON messages(folder_id, uidvalidity, uid) WHERE uid > 0;
CREATE UNIQUE INDEX IF NOT EXISTS messages_uidl ON messages(folder_id, uidl) WHERE uidl IS NOT NULL;
-- Every per-folder query (All, Live, Counts, Each, ByUID, ByUIDL) uses it;
-- its rowid order is storage order.
CREATE INDEX IF NOT EXISTS messages_folder ON messages(folder_id);
-- SyncState counts a changed folder's live messages and looks for rows to
-- re-key without reading the folder's rows: messages_uid's entries less
-- messages_gone's (the expunged rows alone), and messages_nokey (rows
-- without UID or UIDL, which reindex makes). Both are partial indexes that
-- a stored message does not enter: they cost a backup nothing. Here and
-- in postMigration (migrate 4 rebuilds the table), so that every writable
-- Open of an older catalog adds them.
CREATE INDEX IF NOT EXISTS messages_gone ON messages(folder_id, uidvalidity, uid, expunged_run) WHERE expunged_run IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_nokey ON messages(folder_id) WHERE uid=0 AND uidl IS NULL;

-- Each distinct sender once (schema 4): most mail comes from few senders.
CREATE TABLE IF NOT EXISTS senders (
	id     INTEGER PRIMARY KEY,
	sender TEXT NOT NULL UNIQUE
);

-- Every flag state a message had, by the run that first saw it.
CREATE TABLE IF NOT EXISTS flag_history (
	message INTEGER NOT NULL REFERENCES messages(id),
	run     INTEGER NOT NULL REFERENCES runs(id),
	flags   TEXT NOT NULL,
	PRIMARY KEY (message, run)
) WITHOUT ROWID;

-- What restore has put on which destination.
CREATE TABLE IF NOT EXISTS restored (
	server      TEXT NOT NULL,
	user        TEXT NOT NULL,
	key         TEXT NOT NULL,       -- message key (see Message.Key)
	folder      TEXT NOT NULL,       -- destination folder
	uidvalidity INTEGER NOT NULL DEFAULT 0,
	uid         INTEGER NOT NULL DEFAULT 0,
	run         INTEGER NOT NULL REFERENCES runs(id),
	PRIMARY KEY (server, user, key)
);
`

// postMigration is schema that needs the columns migrate adds: Open runs
// it after migrating. messages_deleted holds only the few POP3 messages
// mailkeep deleted from the server, so that Deleted (ls --folder, export)
// does not read every row of a folder.
// messages_gone, messages_nokey: see schema.
const postMigration = `CREATE INDEX IF NOT EXISTS messages_deleted ON messages(folder_id) WHERE deleted_run IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_gm ON messages(gm_msgid) WHERE gm_msgid IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_gone ON messages(folder_id, uidvalidity, uid, expunged_run) WHERE expunged_run IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_nokey ON messages(folder_id) WHERE uid=0 AND uidl IS NULL`

// migrate brings a catalog of schema version from up to schemaVersion,
// inside Open's transaction (the schema above has already created every
// missing table, but not the columns older tables lack).
func migrate(tx *sql.Tx, from int) error {
	if from < 2 {
		// Schema 1 marked POP3 messages that mailkeep itself deleted from
		// the server (--delete, --keep-days) as expunged, which hid them
		// from ls, export and restore. Those are the runs of kind backup
		// over POP3 that recorded deletions; the messages they marked
		// expunged become "deleted by mailkeep". (Such a run also marks
		// messages someone else removed since the last run: the two cannot
		// be told apart, and keeping mail visible is the safe side.)
		if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN deleted_run INTEGER REFERENCES runs(id)`); err != nil {
			return fmt.Errorf("migrating to schema 2: %w", err)
		}
		if _, err := tx.Exec(`UPDATE messages SET deleted_run=expunged_run, expunged_run=NULL
			WHERE expunged_run IN (` + deletingRuns + `)`); err != nil {
			return fmt.Errorf("migrating to schema 2: %w", err)
		}
	}
	if from < 3 {
		if err := migrate3(tx); err != nil {
			return fmt.Errorf("migrating to schema 3: %w", err)
		}
	}
	if from < 4 {
		if err := migrate4(tx); err != nil {
			return fmt.Errorf("migrating to schema 4: %w", err)
		}
	}
	if from < 5 {
		if err := migrate5(tx); err != nil {
			return fmt.Errorf("migrating to schema 5: %w", err)
		}
	}
	if from < schemaVersion {
		if _, err := tx.Exec(`UPDATE meta SET value=? WHERE key='schema_version'`, fmt.Sprint(schemaVersion)); err != nil {
			return fmt.Errorf("migrating to schema %d: %w", schemaVersion, err)
		}
	}
	return nil
}

// deletingRuns selects the ids of runs that deleted POP3 messages from the
// server (schema 1's only record of it).
const deletingRuns = `SELECT id FROM runs WHERE kind='backup' AND deleted>0 AND source LIKE 'pop3%'`

// migrate3 slims a schema 2 catalog in place (inside Open's transaction,
// so a crash leaves the old catalog whole): the unused messages_sha index
// goes, mbox messages stop repeating their folder's path in file, and
// flag_history is rebuilt WITHOUT ROWID (its primary key was a second
// copy of the table). Old rows keep their date strings, which read the
// same. The freed pages are reused by later commits (VACUUM would return
// them to the file system).
func migrate3(tx *sql.Tx) error {
	for _, q := range []string{
		`DROP INDEX IF EXISTS messages_sha`,
		`UPDATE messages SET file='' WHERE file=(SELECT path FROM folders WHERE folders.id=messages.folder_id)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	var def string
	if err := tx.QueryRow(`SELECT sql FROM sqlite_schema WHERE type='table' AND name='flag_history'`).Scan(&def); err != nil {
		return err
	}
	if strings.Contains(def, "WITHOUT ROWID") {
		return nil
	}
	for _, q := range []string{
		`CREATE TABLE flag_history_v3 (
	message INTEGER NOT NULL REFERENCES messages(id),
	run     INTEGER NOT NULL REFERENCES runs(id),
	flags   TEXT NOT NULL,
	PRIMARY KEY (message, run)
) WITHOUT ROWID`,
		`INSERT INTO flag_history_v3(message,run,flags) SELECT message,run,flags FROM flag_history`,
		`DROP TABLE flag_history`,
		`ALTER TABLE flag_history_v3 RENAME TO flag_history`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	return nil
}

// migrate4 rebuilds a schema 3 messages table in the schema 4 form
// (inside Open's transaction, so a crash leaves the old catalog whole; the
// declared types change, which SQLite can only do by a new table): hex
// sha256 to 32 bytes, RFC 3339 internal_date to unix seconds and a zone
// offset, each sender to a row of senders
// referenced by id. A value that cannot be converted exactly (a date with
// a fraction of a second or an offset of odd seconds, a checksum that is
// not 64 hex digits) is kept as it is, and so is stored_at (whose RFC 3339
// text has nanoseconds, finer than schema 4's milliseconds): readers take
// both forms. Row ids
// stay, so flag_history, the journal and the text index still point at
// the same messages. The connection has foreign keys off (the old table
// is dropped under flag_history's references); Open checks them before
// it commits. A table already in the schema 4 form is left alone.
func migrate4(tx *sql.Tx) error {
	var def string
	if err := tx.QueryRow(`SELECT sql FROM sqlite_schema WHERE type='table' AND name='messages'`).Scan(&def); err != nil {
		return err
	}
	if strings.Contains(def, "sender_id") {
		return nil
	}
	newDef := schema[strings.Index(schema, "CREATE TABLE IF NOT EXISTS messages ("):]
	newDef = newDef[:strings.Index(newDef, ");")+1]
	newDef = strings.Replace(newDef, "CREATE TABLE IF NOT EXISTS messages (", "CREATE TABLE messages_v4 (", 1)
	for _, q := range []string{
		newDef,
		`INSERT OR IGNORE INTO senders(sender) SELECT sender FROM messages WHERE sender<>'' ORDER BY id`,
		`INSERT INTO messages_v4(id,folder_id,uidvalidity,uid,uidl,modseq,internal_date,date_zone,received_date,flags,size,sha256,
			message_id,subject,file,frame_offset,frame_pos,stored_run,stored_at,expunged_run,deleted_run,sender_id)
		SELECT id,folder_id,uidvalidity,uid,uidl,modseq,mailkeep_date_unix(internal_date),mailkeep_date_zone(internal_date),received_date,flags,size,
			CASE WHEN typeof(sha256)='text' AND length(sha256)=64 AND unhex(sha256) IS NOT NULL THEN unhex(sha256) ELSE sha256 END,
			message_id,subject,file,frame_offset,frame_pos,stored_run,stored_at,expunged_run,deleted_run,
			(SELECT id FROM senders WHERE senders.sender=messages.sender)
		FROM messages ORDER BY id`,
		`DROP TABLE messages`,
		`ALTER TABLE messages_v4 RENAME TO messages`,
		`CREATE UNIQUE INDEX messages_uid ON messages(folder_id, uidvalidity, uid) WHERE uid > 0`,
		`CREATE UNIQUE INDEX messages_uidl ON messages(folder_id, uidl) WHERE uidl IS NOT NULL`,
		`CREATE INDEX messages_folder ON messages(folder_id)`,
		postMigration,
		// A message's only history row, its flags as stored, says what
		// messages.flags and stored_run say (see historyBase).
		`DELETE FROM flag_history WHERE (message, run) IN (
			SELECT h.message, h.run FROM flag_history h JOIN messages m ON m.id=h.message AND m.stored_run=h.run AND m.flags=h.flags
			WHERE NOT EXISTS (SELECT 1 FROM flag_history o WHERE o.message=h.message AND o.run<>h.run))`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	return nil
}

// migrate5 adds schema 5's Gmail columns to the tables of an older
// catalog that lack them (migrate4 already rebuilt messages from the new
// definition, columns included).
func migrate5(tx *sql.Tx) error {
	for _, c := range []struct{ table, col, def string }{
		{"messages", "gm_msgid", "INTEGER"},
		{"messages", "gm_thrid", "INTEGER"},
		{"messages", "labels", "TEXT"},
		{"folders", "label", "TEXT"},
		{"folders", "view_of", "INTEGER REFERENCES folders(id)"},
	} {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name=?`, c.table, c.col).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := tx.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.col + ` ` + c.def); err != nil {
			return err
		}
	}
	return nil
}
