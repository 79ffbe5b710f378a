package imapsrc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/yahootest"
)

// yahooFill puts n messages into folder of the Yahoo double and returns
// their SHA-256s.
func yahooFill(t testing.TB, y *yahootest.Server, folder string, n int) map[string]bool {
	t.Helper()
	if folder != "INBOX" {
		if err := y.User().Create(folder, nil); err != nil {
			t.Fatal(err)
		}
	}
	sums := map[string]bool{}
	for i := 0; i < n; i++ {
		b := []byte(fmt.Sprintf("From: a@example.com\r\nMessage-ID: <%s-%d@yahoo.example>\r\nSubject: %d\r\n\r\n%s\r\n", folder, i, i, strings.Repeat("y", i%50)))
		if _, err := y.User().Append(folder, bytes.NewReader(b), &imap.AppendOptions{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[hex.EncodeToString(s[:])] = true
	}
	return sums
}

// TestYahooLimitedView: Yahoo shows only the newest messages of a large
// folder (yahootest's limited view; go-imap cannot ENABLE UIDONLY). The
// backup notices that STATUS counts more than the listing showed, pages
// through UID ranges, and stores every message once; a second run marks
// nothing expunged (the hidden messages are not taken as deleted), and a
// message really deleted among the hidden ones is marked expunged.
func TestYahooLimitedView(t *testing.T) {
	// Body FETCHes stay under the double's per-command limit, as
	// mailkeep's 1,000 stay under Yahoo's 10,000.
	defer imapsrc.SetBodyChunk(20)()
	y := yahootest.Start(t, user, pass, yahootest.Options{MessageLimit: 50})
	want := map[string]map[string]bool{
		"Big":   yahooFill(t, y, "Big", 137),
		"INBOX": yahooFill(t, y, "INBOX", 12),
	}
	dir := t.TempDir()
	st, logs := msBackup(t, dir, y.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Fetched != 149 {
		t.Fatalf("first run: fetched %d, failures %v\n%s", st.Fetched, st.Failures, logs)
	}
	if !strings.Contains(logs, "paging through UID ranges") {
		t.Errorf("no paging logged: the test proves nothing\n%s", logs)
	}
	checkOnce(t, dir, want)

	st, logs = msBackup(t, dir, y.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Fetched != 0 || st.Expunged != 0 {
		t.Fatalf("second run: fetched %d, expunged %d, failures %v\n%s", st.Fetched, st.Expunged, st.Failures, logs)
	}

	// Delete UID 7 (hidden by the view) on the server.
	sess := imapmemserver.NewUserSession(y.User())
	if _, err := sess.Select("Big", nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Store(nil, imap.UIDSetNum(7), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Expunge(nil, nil); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	st, logs = msBackup(t, dir, y.Addr, imapsrc.Options{Connections: 2})
	if len(st.Failures) > 0 || st.Fetched != 0 || st.Expunged != 1 {
		t.Fatalf("third run: fetched %d, expunged %d (want 0, 1), failures %v\n%s", st.Fetched, st.Expunged, st.Failures, logs)
	}
}

// BenchmarkYahooLargeFolder: a backup of a 20,000-message folder on the
// Yahoo double, its view unlimited ("unpaged": one listing) and limited to
// 10,000 ("paged": the listing plus UID ranges); "first" is a first backup
// (bodies fetched), "again" a run that finds nothing new (listing alone).
//
//	go test -run '^$' -bench YahooLargeFolder -benchtime 3x ./fetch/imapsrc/
func BenchmarkYahooLargeFolder(b *testing.B) {
	for _, again := range []bool{false, true} {
		for _, tc := range []struct {
			name  string
			limit int
		}{{"unpaged", -1}, {"paged", 10000}} {
			name := "first/" + tc.name
			if again {
				name = "again/" + tc.name
			}
			b.Run(name, func(b *testing.B) {
				y := yahootest.Start(b, user, pass, yahootest.Options{MessageLimit: tc.limit})
				yahooFill(b, y, "INBOX", 20000)
				cfg := imapconn.Config{Addr: y.Addr, TLS: imapconn.TLSNone, User: user, Password: pass}
				backup := func(dir string, fetched int) {
					a, err := archive.Open(dir, archive.Options{})
					if err != nil {
						b.Fatal(err)
					}
					defer a.Close()
					run, _ := a.Cat.BeginRun(context.Background(), "backup", "bench", time.Now())
					b.StartTimer()
					st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: cfg, Connections: 1})
					b.StopTimer()
					if err != nil || len(st.Failures) > 0 || st.Fetched != fetched || st.Expunged != 0 {
						b.Fatalf("backup: %v %v fetched %d expunged %d", err, st.Failures, st.Fetched, st.Expunged)
					}
					a.Cat.EndRun(context.Background(), catalog.Run{ID: run, Ended: time.Now(), Outcome: "ok"})
				}
				dir := b.TempDir()
				b.StopTimer()
				b.ResetTimer()
				if again {
					backup(dir, 20000)
					b.ResetTimer()
				}
				for i := 0; i < b.N; i++ {
					if again {
						backup(dir, 0)
					} else {
						backup(b.TempDir(), 20000)
					}
				}
			})
		}
	}
}
