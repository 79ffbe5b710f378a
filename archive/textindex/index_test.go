package textindex

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

type testMsg struct {
	folder string
	uid    uint32
	date   time.Time
	flags  []string
	body   []byte
}

// makeArchive writes msgs into a new archive in the given format.
func makeArchive(t testing.TB, format archive.Format, msgs []testMsg) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "arch")
	a, err := archive.Open(dir, archive.Options{Format: format})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]*archive.FolderWriter{}
	for _, m := range msgs {
		w := writers[m.folder]
		if w == nil {
			f, err := a.Folder(t.Context(), m.folder, '/', "")
			if err != nil {
				t.Fatal(err)
			}
			if w, err = a.NewWriter(t.Context(), f, run); err != nil {
				t.Fatal(err)
			}
			writers[m.folder] = w
		}
		if _, err := w.Add(&archive.Incoming{UIDValidity: 7, UID: m.uid, InternalDate: m.date, Flags: m.flags}, bytes.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range writers {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func corpusMsgs(t testing.TB) []testMsg {
	ents, err := os.ReadDir(filepath.Join("testdata", "mail"))
	if err != nil {
		t.Fatal(err)
	}
	var out []testMsg
	for i, e := range ents {
		b := readMail(t, e.Name())
		m, _ := Parse(bytes.NewReader(b), ParseOptions{})
		folder := "INBOX"
		if i%2 == 1 {
			folder = "Archive/Größe"
		}
		flags := []string{`\Seen`}
		switch e.Name() {
		case "06-alternative-cp1252.eml":
			flags = []string{`\Flagged`, `\Seen`, "$Work"}
		case "02-koi8r-base64.eml":
			flags = nil
		}
		out = append(out, testMsg{folder: folder, uid: uint32(i + 1), date: m.Date, flags: flags, body: b})
	}
	return out
}

func indexDir(t testing.TB, dir string) Stats {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.Update(context.Background(), a, UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func search(t testing.TB, dir, q string) []string {
	t.Helper()
	n, err := ParseQuery(q, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	ix, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	hits, err := ix.Search(context.Background(), filepath.Join(dir, "catalog.db"), n, 0)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out []string
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%s/%d", h.Folder, h.UID))
	}
	return out
}

func TestIndexSearch(t *testing.T) {
	for _, format := range []archive.Format{archive.MboxZstd, archive.Maildir} {
		t.Run(string(format), func(t *testing.T) {
			dir := makeArchive(t, format, corpusMsgs(t))
			st := indexDir(t, dir)
			if st.Indexed != 7 || st.Problems != 1 {
				t.Errorf("stats %+v", st)
			}
			if fi, err := os.Lstat(filepath.Join(dir, FileName)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("index.db: %v %v", fi.Mode(), err)
			}
			// A second run has nothing to do.
			if st := indexDir(t, dir); st.Indexed != 0 {
				t.Errorf("second update indexed %d", st.Indexed)
			}
			// Messages: 1 latin1 (INBOX), 2 koi8 (Archive), 3 html (INBOX),
			// 4 attachments (Archive), 5 malformed (INBOX), 6 cp1252
			// (Archive, flagged), 7 iso-2022-jp (INBOX).
			for _, tt := range []struct{ q, want string }{
				{"lieferung", "INBOX/1"},
				{"größe", "INBOX/1"},
				{"GROSSE", "INBOX/1"},         // "Grösse" in the body: ö folds to o
				{"grüsse", ""},                // "Grüße": ß is not ss
				{"grüße", "INBOX/1"},          // ...but is found as written
				{"gruße", "INBOX/1"},          // and without the diacritic
				{"creme brulee", "INBOX/1"},   // diacritics off
				{`"brulee creme"`, ""},        // phrase order matters
				{`"creme brulee"`, "INBOX/1"}, // phrase
				{"счёт", "Archive/Größe/2"},
				{"счет", ""}, // ё is kept: unicode61 does not fold it to е
				{"from:иван", "Archive/Größe/2"},
				{"inv-2014", "INBOX/3"},
				{"secretscript", ""}, // script text is not indexed
				{"kettle", "INBOX/3 Archive/Größe/4"},
				{"filename:quittung", "Archive/Größe/4"},
				{"filename:ärger", "Archive/Größe/4"},
				{"filename:фото", "Archive/Größe/4"},
				{"has:attachment", "Archive/Größe/4"},
				{"cc:carol", "Archive/Größe/4"},
				{"to:carol", ""},
				{"zebra okapi narwhal", "INBOX/5"},
				{"kangaroo", "Archive/Größe/6"},
				{"naive cafe", "Archive/Größe/6"},
				{"is:flagged", "Archive/Größe/6"},
				{"label:$work", "Archive/Größe/6"},
				{"is:unread", "Archive/Größe/2"},
				{"wombat", "INBOX/7"},
				{"会議", "INBOX/7"},
				{"folder:inbox kettle", "INBOX/3"},
				{`folder:"Archive/Größe" -kettle`, "Archive/Größe/6 Archive/Größe/2"},
				{"kettle OR zebra", "INBOX/3 INBOX/5 Archive/Größe/4"},
				{"from:bob OR from:dana kettle", "Archive/Größe/4"},
				{"-(kettle OR zebra) before:2015/01/01", "Archive/Größe/2 INBOX/1"},
				{"after:2020/01/01", "INBOX/7 INBOX/3"},
				{"older_than:5y", "Archive/Größe/6 INBOX/5 Archive/Größe/4 Archive/Größe/2 INBOX/1"},
				{"larger:5K", "Archive/Größe/4"},
				{"smaller:1K -has:attachment from:example.de", "INBOX/1"},
				{"subject:receipts", "Archive/Größe/4"},
				{"subject:kettle", ""},
				{"!!!", ""},
			} {
				got := strings.Join(search(t, dir, tt.q), " ")
				if got != tt.want {
					t.Errorf("%s: got %q, want %q", tt.q, got, tt.want)
				}
			}
		})
	}
}

func TestIndexSymlink(t *testing.T) {
	dir := makeArchive(t, archive.MboxZstd, corpusMsgs(t)[:1])
	target := filepath.Join(t.TempDir(), "elsewhere.db")
	if err := os.Symlink(target, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open through a symlink: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was created: %v", err)
	}
	os.Remove(filepath.Join(dir, FileName))
	if err := os.Symlink(target, filepath.Join(dir, FileName+"-wal")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open with a symlinked -wal: %v", err)
	}
}

func TestIndexBusy(t *testing.T) {
	dir := makeArchive(t, archive.MboxZstd, corpusMsgs(t)[:1])
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := Open(dir); !errors.Is(err, ErrBusy) {
		t.Errorf("second writer: %v", err)
	}
}

// TestRelink: after the catalog is rebuilt with other row ids, update
// re-links the index without reading mail again.
func TestRelink(t *testing.T) {
	msgs := corpusMsgs(t)
	dir := makeArchive(t, archive.MboxZstd, msgs)
	indexDir(t, dir)
	// A rebuilt catalog is a new file that numbers its rows anew.
	cat := filepath.Join(dir, "catalog.db")
	db, err := sql.Open("sqlite", cat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE messages SET id = id + 1000`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`VACUUM INTO ?`, cat+".new"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, s := range []string{"-wal", "-shm"} {
		os.Remove(cat + s)
	}
	if err := os.Rename(cat+".new", cat); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	cdb, err := catalog.OpenReadOnly(cat)
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	if !ix.Stale(t.Context(), cdb) {
		t.Errorf("a rebuilt catalog is not seen as stale")
	}
	ix.Close()
	if got := search(t, dir, "kettle"); len(got) != 0 {
		t.Errorf("stale hints found %v", got)
	}
	st := indexDir(t, dir)
	if st.Indexed != 0 || st.Relinked != len(msgs) {
		t.Errorf("relink stats %+v", st)
	}
	if got := search(t, dir, "kettle"); len(got) != 2 {
		t.Errorf("after relink: %v", got)
	}
	ix, err = OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Stale(t.Context(), cdb) {
		t.Errorf("stale after relink")
	}
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ q, want, err string }{
		{q: "hello world", want: "hello world"},
		{q: `"hello world"`, want: `"hello world"`},
		{q: "from:alice@example.com", want: "from:alice@example.com"},
		{q: `subject:"big deal" -from:bob`, want: `subject:"big deal" -from:bob`},
		{q: "a OR b c", want: "(a OR b) c"},
		{q: "a OR b OR c", want: "(a OR b OR c)"},
		{q: "-(a b)", want: "-(a b)"},
		{q: "-(a OR b)", want: "-((a OR b))"},
		{q: "{a b}", want: "a b"},
		{q: "has:attachment is:Unread is:starred", want: "has:attachment is:unread is:flagged"},
		{q: "in:Sent", want: "folder:Sent"},
		{q: "label:$Work", want: "label:$Work"},
		{q: "before:2014/03/01 after:2013-01-31", want: `before:2014/03/01 after:"2013-01-31"`},
		{q: "older_than:2y", want: `before:"2022-06-15T12:00:00"`},
		{q: "newer_than:7d", want: `after:"2024-06-08T12:00:00"`},
		{q: "larger:10M smaller:500k", want: "larger:10M smaller:500k"},
		{q: "http://example.com", want: `"http://example.com"`},
		{q: "re: x", want: `"re:" x`},
		{q: "or", want: `or`},
		{q: "a - b", want: `a "-" b`},
		{q: `"unterminated`, err: "unterminated"},
		{q: "", err: "empty"},
		{q: "()", err: "empty"},
		{q: "(a", err: "missing )"},
		{q: "a)", err: "unexpected"},
		{q: "OR a", err: "OR needs"},
		{q: "a OR", err: "OR needs"},
		{q: "before:yesterday", err: "date"},
		{q: "older_than:3x", err: "age"},
		{q: "larger:big", err: "size"},
		{q: "has:pdf", err: "has:"},
		{q: "is:spam", err: "is:"},
		{q: "from:", err: "needs a value"},
	} {
		n, err := ParseQuery(tt.q, now, time.UTC)
		switch {
		case tt.err != "":
			if err == nil || !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one with %q", tt.q, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.q, err)
		case n.String() != tt.want:
			t.Errorf("%q: %s, want %s", tt.q, n.String(), tt.want)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"a b", `"x y" -from:z`, "a OR (b -c)", "before:2014/01/02 larger:1M", `subject:"q\"x"`, "-(a OR b)", "is:unread label:x"} {
		f.Add(s)
	}
	now := time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, q string) {
		n, err := ParseQuery(q, now, time.UTC)
		if err != nil {
			return
		}
		s := n.String()
		n2, err := ParseQuery(s, now, time.UTC)
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", q, s, err)
		}
		if n2.String() != s {
			t.Fatalf("%q -> %q -> %q", q, s, n2.String())
		}
		var c compiler
		c.node(n)
	})
}

// TestSearchPlans: a search reads newest first and stops at its limit: no
// query sorts its matches, and a full-text query is driven by FTS5.
func TestSearchPlans(t *testing.T) {
	dir := makeArchive(t, archive.MboxZstd, corpusMsgs(t))
	indexDir(t, dir)
	var plan string
	planHook = func(ctx context.Context, conn *sql.Conn, q string, args []any) {
		rows, err := conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			b.WriteString(detail + "\n")
		}
		plan = b.String()
	}
	defer func() { planHook = nil }()
	for _, tt := range []struct{ q, want string }{
		{"kettle", "SCAN fts VIRTUAL TABLE"},
		{"kettle -zebra is:flagged folder:INBOX", "SCAN fts VIRTUAL TABLE"},
		{"is:flagged", "SCAN d"},
		{"kettle OR is:flagged", "SCAN d"},
		{"after:2014/01/01 -kettle", "SEARCH d USING INTEGER PRIMARY KEY (rowid>?)"},
	} {
		search(t, dir, tt.q)
		if strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, tt.want) {
			t.Errorf("%s: plan\n%s", tt.q, plan)
		}
	}
}

// TestUpdateDamagedFolder: a folder whose file is damaged fails with its
// name; the other folders are indexed all the same.
func TestUpdateDamagedFolder(t *testing.T) {
	dir := makeArchive(t, archive.Maildir, corpusMsgs(t))
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := a.Cat.Folder(t.Context(), "Archive/Größe")
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := a.Cat.All(t.Context(), f.ID)
	if err := os.Truncate(filepath.Join(dir, msgs[0].File), 10); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.Update(context.Background(), a, UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), `"Archive/Größe"`) {
		t.Errorf("damaged folder: %v", err)
	}
	if st.Indexed != 4 { // INBOX's four
		t.Errorf("indexed %d", st.Indexed)
	}
}

// TestAutomerge: a writing open sets FTS5's automerge (see Open), also on
// an index made before it was set.
func TestAutomerge(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		ix, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := ix.DB().QueryRow(`SELECT v FROM fts_config WHERE k='automerge'`).Scan(&v); err != nil || v != ftsAutomerge {
			t.Errorf("open %d: automerge %d, %v; want %d", i, v, err, ftsAutomerge)
		}
		// An older index: FTS5's default.
		if _, err := ix.DB().Exec(`DELETE FROM fts_config WHERE k='automerge'`); err != nil {
			t.Fatal(err)
		}
		ix.Close()
	}
}
