package imapsrc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestPlannedTotals: Options.Planned is called once per run, before the
// first message, with the messages the run then fetches (new folders,
// new mail in known folders, nothing for an unchanged account); Progress
// counts up to it.
func TestPlannedTotals(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			c := imaptest.Dial(t, s.addr, user, pass)
			appendN := func(folder string, n int) {
				for i := 0; i < n; i++ {
					imaptest.Append(t, c, folder, nil, time.Now(), []byte(fmt.Sprintf("Subject: %s %d\r\nMessage-ID: <%s.%d.%d@t>\r\n\r\nbody\r\n", folder, i, folder, i, time.Now().UnixNano())))
				}
			}
			dir := t.TempDir()
			run := func() (planned []int, progressed int, fetched int) {
				t.Helper()
				var mu sync.Mutex
				a, err := archive.Open(dir, archive.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				id, err := a.Cat.BeginRun(t.Context(), "backup", "test", time.Now())
				if err != nil {
					t.Fatal(err)
				}
				st, err := imapsrc.Backup(context.Background(), a, id, imapsrc.Options{
					Account: account(s), Connections: 2,
					Planned: func(messages int, bytes int64) {
						mu.Lock()
						defer mu.Unlock()
						if progressed != 0 {
							t.Errorf("Planned called after %d messages were stored", progressed)
						}
						if bytes != 0 {
							t.Errorf("IMAP planned bytes %d, want 0 (unknown)", bytes)
						}
						planned = append(planned, messages)
					},
					// Connections: 2 stores two folders at once.
					Progress: func(_ string, n int, _ int64) {
						mu.Lock()
						progressed += n
						mu.Unlock()
					},
				})
				if err != nil || len(st.Failures) > 0 {
					t.Fatalf("backup: %v %v", err, st.Failures)
				}
				if err := a.Cat.EndRun(t.Context(), catalog.Run{ID: id, Ended: time.Now(), Outcome: "ok"}); err != nil {
					t.Fatal(err)
				}
				return planned, progressed, st.Fetched
			}
			appendN("INBOX", 5)
			appendN("Other", 2)
			for i, want := range []struct {
				before func()
				n      int
			}{
				{func() {}, 7},
				{func() { appendN("INBOX", 3) }, 3},
				{func() {}, 0},
				// One old message expunged, two appended: two to fetch
				// (a count of the server's messages less the archived
				// ones said one).
				{func() { expungeFirst(t, c, "INBOX"); appendN("INBOX", 2) }, 2},
			} {
				want.before()
				planned, progressed, fetched := run()
				if len(planned) != 1 || planned[0] != want.n || fetched != want.n || progressed != want.n {
					t.Errorf("run %d: Planned calls %v, progress %d, fetched %d; want one call with %d, and %d fetched", i+1, planned, progressed, fetched, want.n, want.n)
				}
			}
		})
	}
}

// expungeFirst expunges the folder's lowest UID.
func expungeFirst(t *testing.T, c *imapclient.Client, folder string) {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uids := imap.UIDSetNum(1)
	if err := c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(uids).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
}
