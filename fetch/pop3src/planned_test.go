package pop3src_test

import (
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/pop3"
	"github.com/mailkeep/mailkeep/internal/pop3test"
)

// TestPlannedTotals: Options.Planned is called once, before the first
// RETR, with the messages the run fetches and their LIST sizes; Progress
// adds up to the same; a run with nothing new plans 0.
func TestPlannedTotals(t *testing.T) {
	msgs := tricky()
	srv := pop3test.Start(t, user, pass, msgs, pop3test.Options{})
	cfg := pop3.Config{Addr: srv.Addr, TLS: pop3.TLSNone, User: user, Password: pass}
	dir := t.TempDir()
	var listed int64 // what the server's LIST announces
	for _, m := range msgs {
		listed += int64(len(m))
	}
	for i, w := range []struct {
		n     int
		bytes int64
	}{{len(msgs), listed}, {0, 0}} {
		type call struct {
			n int
			b int64
		}
		var planned []call
		var gotN int
		var gotB int64
		st, err := run(t, dir, archive.MboxZstd, pop3src.Options{Server: cfg,
			Planned: func(n int, b int64) {
				if gotN != 0 {
					t.Errorf("Planned called after %d messages", gotN)
				}
				planned = append(planned, call{n, b})
			},
			Progress: func(_ string, n int, b int64) { gotN += n; gotB += b },
		})
		if err != nil || st.Fetched != w.n {
			t.Fatalf("run %d: %+v %v", i+1, st, err)
		}
		if len(planned) != 1 || planned[0] != (call{w.n, w.bytes}) || gotN != w.n || gotB != w.bytes {
			t.Errorf("run %d: Planned %v, progress %d messages %d bytes; want one call (%d, %d) and the same progress", i+1, planned, gotN, gotB, w.n, w.bytes)
		}
	}
}
