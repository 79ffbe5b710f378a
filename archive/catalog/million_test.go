package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bulkFill adds n messages to one new folder of c in one statement (a
// recursive CTE: no Go round trip per row), like an IMAP backup would have
// stored them: UIDs 1..n under one UIDVALIDITY, 300 senders, mbox frames.
func bulkFill(tb testing.TB, c *Catalog, name string, n int) *Folder {
	tb.Helper()
	run, err := c.BeginRun(tb.Context(), "backup", "imaps://alice@mail.example.com", time.Unix(1_780_000_000, 0))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := c.EnsureFolder(tb.Context(), name, '/', "", "mbox/"+name+".mbox.zst")
	if err != nil {
		tb.Fatal(err)
	}
	for _, q := range []string{
		`WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x+1 FROM s WHERE x<299)
		INSERT OR IGNORE INTO senders(sender) SELECT 'User '||x||' <user'||x||'@example.org>' FROM s`,
		fmt.Sprintf(`WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM s WHERE x<%d)
		INSERT INTO messages(folder_id,uidvalidity,uid,modseq,internal_date,date_zone,flags,size,sha256,message_id,sender_id,subject,file,frame_offset,frame_pos,stored_run,stored_at)
		SELECT %d, 1700000000, x, 0, 1500000000+x*60, 60, CASE x%%20 WHEN 0 THEN '\Flagged \Seen' WHEN 1 THEN '' ELSE '\Seen' END,
			2000+x*37%%50000, randomblob(32), '<'||x||'.'||hex(randomblob(4))||'@mail.example.org>',
			(SELECT id FROM senders WHERE sender='User '||(x%%300)||' <user'||(x%%300)||'@example.org>'),
			'Quarterly report '||(x%%1000)||', meeting notes', '', (x/400)*1500000, (x%%400)*10000, %d, x/50 FROM s`, n, f.ID, run),
		fmt.Sprintf(`UPDATE folders SET uidvalidity=1700000000, last_uid=%d, uidnext=%d, messages=%d WHERE id=%d`, n, n+1, n, f.ID),
	} {
		if _, err := c.db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.EndRun(tb.Context(), Run{ID: run, Outcome: "ok", Ended: time.Unix(1_780_000_100, 0)}); err != nil {
		tb.Fatal(err)
	}
	f, err = c.Folder(tb.Context(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// BenchmarkMillion: what cat (open, Folder, ByUID) and ls --folder (open,
// Folder, Deleted, the first row of Each) cost from a fresh read-only open
// of a catalog of 1,000,000 messages in one folder (MAILKEEP_BENCH_COUNT
// overrides the count), as a new process pays them. Reported per case:
// ms for the whole start, and bytes/msg of the catalog.
//
//	go test -run '^$' -bench Million -benchtime 5x ./archive/catalog
func BenchmarkMillion(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &n)
	}
	path := filepath.Join(b.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	bulkFill(b, c, "INBOX", n)
	b.Logf("%d messages written in %v, %.1f bytes/msg", n, time.Since(start).Round(time.Millisecond), float64(catalogBytes(b, c))/float64(n))
	c.Close()

	uids := []uint32{1, uint32(n / 2), uint32(n)}
	b.Run("cat", func(b *testing.B) {
		var total time.Duration
		for i := range b.N {
			t0 := time.Now()
			c, err := OpenReadOnly(path)
			if err != nil {
				b.Fatal(err)
			}
			f, err := c.Folder(b.Context(), "INBOX")
			if err != nil {
				b.Fatal(err)
			}
			uid := uids[i%len(uids)]
			m, err := c.ByUID(b.Context(), f, uid)
			if err != nil || m.UID != uid || len(m.SHA256) != 64 {
				b.Fatal(m, err)
			}
			total += time.Since(t0)
			c.Close()
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
	})
	b.Run("read-all", func(b *testing.B) { // ls --folder to the end, export, verify
		c, err := OpenReadOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		f, _ := c.Folder(b.Context(), "INBOX")
		for range b.N {
			rows := 0
			if err := c.Each(context.Background(), f.ID, func(*Message) error { rows++; return nil }); err != nil || rows != n {
				b.Fatal(rows, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/row")
	})
	b.Run("ls-folder", func(b *testing.B) {
		stop := errors.New("first row")
		var total time.Duration
		for range b.N {
			t0 := time.Now()
			c, err := OpenReadOnly(path)
			if err != nil {
				b.Fatal(err)
			}
			f, err := c.Folder(b.Context(), "INBOX")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Deleted(b.Context(), f.ID); err != nil {
				b.Fatal(err)
			}
			var first *Message
			err = c.Each(context.Background(), f.ID, func(m *Message) error { first = m; return stop })
			if !errors.Is(err, stop) || first.UID != 1 {
				b.Fatal(first, err)
			}
			total += time.Since(t0)
			c.Close()
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
	})
}

// BenchmarkMigrate4: migrating a schema-3 catalog of 1,000,000 messages
// (MAILKEEP_BENCH_COUNT overrides) in place: the testdata/v3 sample with
// its INBOX grown by rows in schema 3's text forms, then Open.
//
//	go test -run '^$' -bench Migrate4 -benchtime 1x ./archive/catalog
func BenchmarkMigrate4(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MAILKEEP_BENCH_COUNT"); s != "" {
		fmt.Sscan(s, &n)
	}
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "catalog.db")
		copyFile(b, "testdata/v3/catalog.db", path)
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(fmt.Sprintf(`WITH RECURSIVE s(x) AS (SELECT 1000 UNION ALL SELECT x+1 FROM s WHERE x<%d)
		INSERT INTO messages(folder_id,uidvalidity,uid,modseq,internal_date,flags,size,sha256,message_id,sender,subject,file,frame_offset,frame_pos,stored_run,stored_at)
		SELECT 1, 1700000000, x, 0, strftime('%%Y-%%m-%%dT%%H:%%M:%%S+01:00', 1500000000+x*60, 'unixepoch'), '\Seen', 2000+x*37%%50000,
			lower(hex(randomblob(32))), '<'||x||'@mail.example.org>', 'User '||(x%%300)||' <user'||(x%%300)||'@example.org>',
			'Quarterly report '||(x%%1000), '', (x/400)*1500000, (x%%400)*10000, 1, '2026-05-28T20:27:00.123456789Z' FROM s`, n+999)); err != nil {
			b.Fatal(err)
		}
		db.Close()
		b.StartTimer()
		c, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var cnt int
		c.db.QueryRow(`SELECT COUNT(*) FROM messages WHERE typeof(sha256)='blob' AND typeof(internal_date)='integer'`).Scan(&cnt)
		if cnt < n {
			b.Fatalf("%d messages migrated, want %d", cnt, n)
		}
		c.Close()
		b.StartTimer()
	}
}
