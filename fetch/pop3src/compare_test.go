package pop3src_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestCompare backs up a mailbox of four messages, then compares the
// archive with mailboxes that lost or gained messages: each difference is
// named by UIDL and nothing is deleted.
func TestCompare(t *testing.T) {
	msgs := func(n int) [][]byte {
		var out [][]byte
		for i := 0; i < n; i++ {
			out = append(out, []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
		}
		return out
	}
	cfg := func(s *pop3test.Server) pop3.Config {
		return pop3.Config{Addr: s.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	}
	dir := t.TempDir()
	if _, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg(pop3test.Start(t, user, pass, msgs(4), pop3test.Options{}))}); err != nil {
		t.Fatal(err)
	}
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, tt := range []struct {
		server            int
		wantNew, wantGone string
	}{
		{4, "[]", "[]"},
		{6, "[uid-0005 uid-0006]", "[]"},
		{2, "[]", "[uid-0003 uid-0004]"},
	} {
		srv := pop3test.Start(t, user, pass, msgs(tt.server), pop3test.Options{})
		d, err := pop3src.Compare(context.Background(), a.Cat, pop3src.Options{Server: cfg(srv)})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(d.New) != tt.wantNew || fmt.Sprint(d.Gone) != tt.wantGone || d.ServerMessages != tt.server {
			t.Errorf("server of %d: new %v gone %v (%d messages), want %s %s", tt.server, d.New, d.Gone, d.ServerMessages, tt.wantNew, tt.wantGone)
		}
		if del := srv.Deleted(); len(del) > 0 {
			t.Errorf("Compare deleted %v", del)
		}
	}
}
