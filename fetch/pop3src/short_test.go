package pop3src_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestShortRetrNeverDeleted: a server whose RETR returns half of each
// message while LIST and "+OK n octets" announce all of it. With --delete
// the halves are archived (they may be all there is), each is a failure
// naming its UIDL, and nothing is deleted, in this run or the next.
func TestShortRetrNeverDeleted(t *testing.T) {
	msgs := [][]byte{
		[]byte("Subject: one\r\n\r\n" + strings.Repeat("first body line\r\n", 200)),
		[]byte("Subject: two\r\n\r\n" + strings.Repeat("second body line\r\n", 300)),
		[]byte("Subject: three\r\n\r\nshort\r\n"),
	}
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{ShortRetr: true})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		st, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg, Delete: true})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if i == 0 && st.Fetched != len(msgs) {
			t.Errorf("run %d: fetched %d, want %d (the short ones are kept)", i, st.Fetched, len(msgs))
		}
		var named []string
		for _, f := range st.Failures {
			var me *archive.MessageError
			var se *pop3.SizeError
			if !errors.As(f, &me) || !errors.As(f, &se) || !strings.Contains(f.Error(), "not deleted") && !strings.Contains(f.Error(), "never deleted") {
				t.Errorf("run %d: failure %v is not a size error naming its message", i, f)
				continue
			}
			named = append(named, me.UIDL)
		}
		slices.Sort(named)
		if strings.Join(named, ",") != "uid-0001,uid-0002,uid-0003" {
			t.Errorf("run %d: failures name %v, want uid-0001 to uid-0003", i, named)
		}
		if d := srv.Deleted(); len(d) != 0 {
			t.Fatalf("run %d: server deleted %v", i, d)
		}
	}
	if got := len(archived(t, dir, false)); got != len(msgs) {
		t.Errorf("archive holds %d messages, want %d", got, len(msgs))
	}
}
