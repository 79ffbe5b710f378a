package imapsrc_test

import (
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// TestBigMessage backs up one 100 MB message and checks that it arrives
// byte for byte while the heap stays far below the message's size.
func TestBigMessage(t *testing.T) {
	size := 100 << 20
	if testing.Short() {
		size = 20 << 20
	}
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, user, pass)
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	imaptest.AppendReader(t, c, "INBOX", nil, time.Now(), imaptest.BigMessage(size), int64(size))
	s := server{name: "dovecot", addr: dv.IMAPAddr, delim: '/', condstore: true, dv: dv}
	for _, format := range []archive.Format{archive.MboxZstd, archive.Maildir} {
		t.Run(string(format), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a")
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}()
			st := backup(t, s, dir, format)
			close(stop)
			<-done
			if st.Fetched != 1 || st.Bytes != int64(size) {
				t.Fatalf("fetched %d messages, %d bytes; want 1, %d", st.Fetched, st.Bytes, size)
			}
			grew := int64(peak.Load()) - int64(base)
			t.Logf("heap grew by at most %.1f MB for a %d MB message", float64(grew)/1e6, size>>20)
			if grew > 48<<20 {
				t.Errorf("heap grew by %.1f MB while backing up a %d MB message: not streaming", float64(grew)/1e6, size>>20)
			}
			archivetest.Compare(t, imaptest.Snapshot(t, c, false), dir)
		})
	}
}
