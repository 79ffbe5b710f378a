package pop3src_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

const user, pass = "bob", "pw"

func run(t *testing.T, dir string, format archive.Format, opt pop3src.Options) (fetch.Stats, error) {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{Format: format, FrameSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	id, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := pop3src.Backup(context.Background(), a, id, opt)
	if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: id, Ended: time.Now(), Outcome: "test"}); err != nil {
		t.Fatal(err)
	}
	return st, err
}

// archived returns the SHA-256 of every archived message (read back through
// the archive), sorted, and checks they match the catalog.
func archived(t *testing.T, dir string, live bool) []string {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := a.Cat.Folder(t.Context(), pop3src.Folder)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := a.Cat.All(t.Context(), f.ID)
	var out []string
	for _, m := range ms {
		if live && m.ExpungedRun != 0 {
			continue
		}
		got := archivetest.ReadSHA(t, a, m)
		if got != m.SHA256 {
			t.Errorf("uidl %s: archive bytes %s, catalog %s", m.UIDL, got, m.SHA256)
		}
		out = append(out, got)
	}
	slices.Sort(out)
	return out
}

func shas(msgs [][]byte) []string {
	var out []string
	for _, m := range msgs {
		s := sha256.Sum256(popBytes(m))
		out = append(out, hex.EncodeToString(s[:]))
	}
	slices.Sort(out)
	return out
}

func TestDovecotFullNoopNew(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	formats := []archive.Format{archive.MboxZstd, archive.Maildir}
	for i := range formats {
		dv.AddUser(t, fmt.Sprintf("pop%d", i), pass)
	}
	for i, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			user := fmt.Sprintf("pop%d", i)
			c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
			var sent [][]byte
			for i, m := range imaptest.Corpus() {
				imaptest.Append(t, c, "INBOX", nil, time.Date(2022, 2, 2, 0, 0, i, 0, time.UTC), m.Body)
			}
			for _, m := range imaptest.Snapshot(t, c, true)["INBOX"] {
				sent = append(sent, popBytes(m.Body))
			}
			dir := t.TempDir()
			cfg := pop3.Config{Addr: dv.POP3Addr, TLS: pop3.TLSNone, User: user, Password: pass}
			st, err := run(t, dir, format, pop3src.Options{Server: cfg})
			if err != nil || st.Fetched != len(sent) {
				t.Fatalf("full run: %+v %v", st, err)
			}
			if got, want := archived(t, dir, true), shas(sent); !slices.Equal(got, want) {
				t.Fatalf("archived bytes differ from what the server holds:\n got %v\nwant %v", got, want)
			}
			archivetest.IndependentRead(t, dir)
			st, err = run(t, dir, format, pop3src.Options{Server: cfg})
			if err != nil || st.Fetched != 0 {
				t.Fatalf("no-op run: %+v %v", st, err)
			}
			extra := []byte("Subject: new\r\nReceived: from x by y; Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\n.leading dot\r\n")
			imaptest.Append(t, c, "INBOX", nil, time.Now(), extra)
			st, err = run(t, dir, format, pop3src.Options{Server: cfg})
			if err != nil || st.Fetched != 1 {
				t.Fatalf("new-mail run: %+v %v", st, err)
			}
			sent2 := append(slices.Clone(sent), extra)
			if got := archived(t, dir, true); !slices.Equal(got, shas(sent2)) {
				t.Errorf("after new mail: archive %d messages, want %d", len(got), len(sent2))
			}
			// The From line / mtime uses the Received: date.
			a, _ := archive.Open(dir, archive.Options{ReadOnly: true})
			defer a.Close()
			f, _ := a.Cat.Folder(t.Context(), pop3src.Folder)
			ms, _ := a.Cat.All(t.Context(), f.ID)
			last := ms[len(ms)-1]
			if !last.InternalDate.Equal(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)) || last.ReceivedDate.IsZero() {
				t.Errorf("POP3 message date %v (received %v), want the Received: date", last.InternalDate, last.ReceivedDate)
			}
		})
	}
}

// popBytes is what POP3 can carry of a message: RFC 1939 ends every
// message with CRLF before the terminating ".", so a message without a
// final line end gains one.
func popBytes(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(append([]byte(nil), b...), '\r', '\n')
	}
	return b
}

func tricky() [][]byte {
	return [][]byte{
		[]byte("Subject: dots\r\n\r\n.\r\n..\r\n.foo\r\nend\r\n"),
		[]byte("Subject: from\r\n\r\nFrom the start\r\n>From quoted\r\n"),
		[]byte("Subject: 8bit\r\n\r\nGr\xc3\xb6\xc3\x9fe \xff\xfe\r\n"),
		[]byte("Subject: bare lf\n\nline\n"),
		[]byte("Subject: empty body\r\n\r\n"),
		[]byte("Subject: no final line end\r\n\r\nlast line without CRLF"),
		[]byte(fmt.Sprintf("Subject: big\r\n\r\n%s", strings.Repeat("0123456789abcdef\r\n", 40000))),
	}
}

func TestDeleteAndKeepDays(t *testing.T) {
	msgs := tricky()
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	now := time.Now()

	// --keep-days 30: nothing is old enough yet.
	st, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, KeepDays: 30, Now: func() time.Time { return now }})
	if err != nil || st.Fetched != len(msgs) || st.Deleted != 0 || len(srv.Deleted()) != 0 {
		t.Fatalf("first keep-days run: %+v %v, server deleted %v", st, err, srv.Deleted())
	}
	if got := archived(t, dir, true); !slices.Equal(got, shas(msgs)) {
		t.Fatalf("archive differs from the server's messages")
	}
	// --dry-run 31 days later: reports, deletes nothing.
	var would []string
	st, err = run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, KeepDays: 30, DryRun: true,
		Now: func() time.Time { return now.Add(31 * 24 * time.Hour) }, WouldDelete: func(u string, _ *catalog.Message) { would = append(would, u) }})
	if err != nil || len(would) != len(msgs) || len(srv.Deleted()) != 0 {
		t.Fatalf("dry run: %+v %v would=%v deleted=%v", st, err, would, srv.Deleted())
	}
	// 31 days later for real.
	st, err = run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, KeepDays: 30, Now: func() time.Time { return now.Add(31 * 24 * time.Hour) }})
	if err != nil || st.Deleted != len(msgs) || len(srv.Messages()) != 0 {
		t.Fatalf("keep-days run after 31 days: %+v %v, server still holds %d", st, err, len(srv.Messages()))
	}
	// The archive keeps everything, and not as "expunged": mailkeep deleted
	// them, they are what the archive is for.
	if got := archived(t, dir, true); !slices.Equal(got, shas(msgs)) {
		t.Errorf("archive lost messages after deletion, or marks them expunged")
	}
	// The next run does not take them for gone from the server; compare and
	// check count them archived, not gone.
	st, err = run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, KeepDays: 30, Now: func() time.Time { return now.Add(32 * 24 * time.Hour) }})
	if err != nil || st.Expunged != 0 || st.Fetched != 0 {
		t.Errorf("run after the deletion: %+v %v, want nothing expunged", st, err)
	}
	if got := archived(t, dir, true); !slices.Equal(got, shas(msgs)) {
		t.Errorf("a run after the deletion marked deleted messages expunged")
	}
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, err := pop3src.Compare(context.Background(), a.Cat, pop3src.Options{Server: cfg})
	if err != nil || len(d.Gone) != 0 || len(d.New) != 0 {
		t.Errorf("compare after deletion: %+v %v, want nothing gone", d, err)
	}
	chk, err := pop3src.Check(context.Background(), a.Cat, pop3src.Options{Server: cfg})
	if err != nil || len(chk.Folders) != 1 || chk.Folders[0].Archived != len(msgs) {
		t.Errorf("check after deletion: %+v %v, want %d archived", chk, err, len(msgs))
	}
}

func TestDeleteErrorLeavesServerUntouched(t *testing.T) {
	msgs := tricky()
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{DeleErr: 3})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	_, err := run(t, dir, archive.Maildir, pop3src.Options{Server: cfg, Delete: true})
	if err == nil || !strings.Contains(err.Error(), "DELE") {
		t.Fatalf("want a DELE error, got %v", err)
	}
	if len(srv.Deleted()) != 0 || len(srv.Messages()) != len(msgs) {
		t.Fatalf("server changed after a failed DELE: deleted %v", srv.Deleted())
	}
	if got := archived(t, dir, true); !slices.Equal(got, shas(msgs)) {
		t.Fatalf("download before the failed delete was not kept")
	}
}

func TestDroppedConnectionMidRetr(t *testing.T) {
	msgs := tricky()
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{DropDuringRetr: 4})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	if _, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, Delete: true}); err == nil {
		t.Fatal("a dropped connection went unnoticed")
	}
	if len(srv.Deleted()) != 0 {
		t.Fatalf("deleted after a dropped connection: %v", srv.Deleted())
	}
	for _, s := range archived(t, dir, true) { // what was stored is whole
		if !slices.Contains(shas(msgs), s) {
			t.Fatalf("archive holds a partial message %s", s)
		}
	}
	srv2 := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	cfg.Addr = srv2.Addr
	st, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := archived(t, dir, true); !slices.Equal(got, shas(msgs)) {
		t.Fatalf("after resuming: %d messages (%+v), want each of %d exactly once", len(got), st, len(msgs))
	}
}

func TestNoUIDL(t *testing.T) {
	msgs := tricky()
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{NoUIDL: true})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	if _, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg}); err == nil || !strings.Contains(err.Error(), "--no-uidl") {
		t.Fatalf("no UIDL without --no-uidl: %v", err)
	}
	st, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, NoUIDL: true})
	if err != nil || st.Fetched != len(msgs) {
		t.Fatalf("--no-uidl run: %+v %v", st, err)
	}
	st, err = run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, NoUIDL: true})
	if err != nil || st.Fetched != 0 {
		t.Fatalf("--no-uidl second run fetched again: %+v %v", st, err)
	}
}
