package textindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// liveQueries are searches whose results must not depend on how the
// index was built.
var liveQueries = []string{
	"lieferung", "größe", "GROSSE", "grüße", `"creme brulee"`, "счёт", "from:иван", "inv-2014",
	"kettle", "filename:quittung", "filename:фото", "has:attachment", "cc:carol", "zebra okapi narwhal",
	"kangaroo", "naive cafe", "is:flagged", "label:$work", "is:unread", "wombat", "会議",
	"folder:inbox kettle", "kettle OR zebra", "after:2020/01/01", "larger:5K", "subject:receipts",
	"quokkaunseen", "older_than:1y", "platypus", "folder:notes",
}

// dumpIndex lists every index row (all columns) and the results of
// liveQueries.
func dumpIndex(t *testing.T, dir string) string {
	t.Helper()
	ix, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ix.DB().Query(`SELECT id, folder, uidvalidity, uid, uidl, sha256, cat_id, date, size, sender, subject, attachments, problems FROM docs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		var id, uv, uid, cat, date, size, att, prob int64
		var folder, uidl, sha, sender, subject string
		if err := rows.Scan(&id, &folder, &uv, &uid, &uidl, &sha, &cat, &date, &size, &sender, &subject, &att, &prob); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d %s %d %d %q %s %d %d %d %q %q %d %d\n", id, folder, uv, uid, uidl, sha, cat, date, size, sender, subject, att, prob)
	}
	rows.Close()
	ix.Close()
	for _, q := range liveQueries {
		fmt.Fprintf(&b, "%s: %s\n", q, strings.Join(search(t, dir, q), " "))
	}
	return b.String()
}

// TestAddAsStored: messages indexed as a backup commits them (parsed as
// they are stored, or read back where not) give the index Update gives,
// and a message stored but never committed is not in it.
func TestAddAsStored(t *testing.T) {
	for _, format := range []archive.Format{archive.MboxZstd, archive.Maildir} {
		t.Run(string(format), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "arch")
			type commit struct {
				f      catalog.Folder
				msgs   []*catalog.Message
				parsed []*Message
			}
			var (
				mu      sync.Mutex
				commits []commit
				n       int
			)
			opt := archive.Options{
				Format: format,
				// Every other message is parsed as it is stored; the
				// others are read back from the archive.
				Extract: func(f *catalog.Folder) func(io.Reader) any {
					mu.Lock()
					defer mu.Unlock()
					if n++; n%2 == 0 && f.Name != "Notes" {
						return nil
					}
					return func(r io.Reader) any {
						m, err := Parse(r, ParseOptions{})
						if err != nil {
							return nil // a message cut short
						}
						return m
					}
				},
				OnCommit: func(f *catalog.Folder, msgs []*catalog.Message, extracted []any) {
					c := commit{f: *f, msgs: msgs}
					for _, e := range extracted {
						m, _ := e.(*Message)
						c.parsed = append(c.parsed, m)
					}
					mu.Lock()
					commits = append(commits, c)
					mu.Unlock()
				},
			}
			a, err := archive.Open(dir, opt)
			if err != nil {
				t.Fatal(err)
			}
			run, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			writers := map[string]*archive.FolderWriter{}
			for _, m := range corpusMsgs(t) {
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
				if m.uid == 3 { // one commit in the middle
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A message stored but never committed (the run failed).
			f, err := a.Folder(t.Context(), "Drafts", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.NewWriter(t.Context(), f, run)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Add(&archive.Incoming{UIDValidity: 7, UID: 1, InternalDate: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)},
				strings.NewReader("From: x@example.com\r\nSubject: draft\r\n\r\nquokkaunseen\r\n")); err != nil {
				t.Fatal(err)
			}
			// One whose bytes stop short (the connection dropped): Add
			// fails, and the extraction fed with it ends too.
			if _, err := w.Add(&archive.Incoming{UIDValidity: 7, UID: 2, InternalDate: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)},
				io.MultiReader(strings.NewReader("From: x@example.com\r\nSubject: cut\r\n\r\nquokkaunseen"), iotest.ErrReader(io.ErrUnexpectedEOF))); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Add of a message cut short: %v", err)
			}
			w.Abort()
			w.Close()
			// A message without a final newline (an mbox reads it back
			// with one), parsed as it is stored.
			f, err = a.Folder(t.Context(), "Notes", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			if w, err = a.NewWriter(t.Context(), f, run); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Add(&archive.Incoming{UIDValidity: 7, UID: 1, InternalDate: time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC)},
				strings.NewReader("From: n@example.com\r\nSubject: note\r\n\r\nplatypus")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for _, w := range writers {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if len(commits) != 4 {
				t.Fatalf("%d commits, want 4", len(commits))
			}
			ix, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			var indexed, pre int
			for _, c := range commits {
				for _, p := range c.parsed {
					if p != nil {
						pre++
					}
				}
				st, err := ix.Add(context.Background(), a, &c.f, c.msgs, c.parsed, UpdateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				indexed += st.Indexed
			}
			// Handing a commit over again indexes nothing twice.
			if st, err := ix.Add(context.Background(), a, &commits[0].f, commits[0].msgs, nil, UpdateOptions{}); err != nil || st.Indexed != 0 {
				t.Errorf("second Add: %+v %v", st, err)
			}
			// The catch-up after the fetch has nothing left to do.
			if st, err := ix.Update(context.Background(), a, UpdateOptions{}); err != nil || st.Indexed != 0 {
				t.Errorf("Update after Add: %+v %v", st, err)
			}
			ix.Close()
			a.Close()
			notes := false
			for _, c := range commits {
				if c.f.Name == "Drafts" {
					t.Errorf("an aborted writer's messages were handed over as committed")
				}
				notes = notes || (c.f.Name == "Notes" && c.parsed[0] != nil)
			}
			if indexed != 8 || pre == 0 || pre == 8 || !notes {
				t.Errorf("indexed %d, %d of them parsed as stored", indexed, pre)
			}
			live := dumpIndex(t, dir)
			if !strings.Contains(live, "platypus: Notes/1\n") || !strings.Contains(live, "kettle: INBOX/3 Archive/Größe/4\n") {
				t.Errorf("committed messages are not found:\n%s", live)
			}
			if !strings.Contains(live, "quokkaunseen: \n") {
				t.Errorf("an uncommitted message is found:\n%s", live)
			}
			for _, s := range []string{"", "-wal", "-shm"} {
				os.Remove(filepath.Join(dir, FileName+s))
			}
			indexDir(t, dir)
			if whole := dumpIndex(t, dir); whole != live {
				t.Errorf("index built during the backup:\n%s\ndiffers from one built after it:\n%s", live, whole)
			}
		})
	}
}
