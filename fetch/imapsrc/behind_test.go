package imapsrc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

// TestCommitsBehindBounded: at most Connections folders' last commits
// run behind the connections. Each holds its folder's writer (buffers,
// the compressor) until it ends: 1,000 small folders whose commits fell
// behind held a thousand writers at once. The commits behind are held
// until a folder has to wait for one; unbounded, all of them would
// start, and they are let go only then.
func TestCommitsBehindBounded(t *testing.T) {
	const folders, conns = 12, 2
	srv := memimap.Start(t, user, pass)
	c := imaptest.Dial(t, srv.Addr, user, pass)
	for i := range folders {
		imaptest.Append(t, c, fmt.Sprintf("F%02d", i), nil, time.Now(), []byte(fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i)))
	}
	var mu sync.Mutex
	running, most, waited := 0, 0, false
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer imapsrc.SetBehindHooks(func() func() {
		mu.Lock()
		running++
		most = max(most, running)
		all := running == folders
		mu.Unlock()
		if all {
			release()
		}
		<-gate
		return func() {
			mu.Lock()
			running--
			mu.Unlock()
		}
	}, func() {
		mu.Lock()
		waited = true
		mu.Unlock()
		release()
	})()

	a, run := openRun(t, t.TempDir(), archive.Options{Format: archive.MboxZstd})
	defer a.Close()
	st, err := imapsrc.Backup(context.Background(), a, run, imapsrc.Options{Account: account(server{addr: srv.Addr}), Connections: conns})
	if err != nil {
		t.Fatal(err)
	}
	if st.Fetched != folders || len(st.Failures) > 0 {
		t.Fatalf("fetched %d, failures %v; want %d, none", st.Fetched, st.Failures, folders)
	}
	if !waited || most > conns {
		t.Errorf("%d commits behind at once (a folder waited: %v), want at most %d", most, waited, conns)
	}
}
