package imapsrc

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// A connection ended for crawling (imapconn.ErrTooSlow: Gmail past its
// daily limit may slow to under 1 KB/s instead of answering OVERQUOTA)
// stops the run like the daily limit; a plain timeout does not.
func TestCrawlStopsLikeDailyLimit(t *testing.T) {
	for _, tc := range []struct {
		kind error
		stop bool
	}{
		{imapconn.ErrTooSlow, true},
		{imapconn.ErrTimeout, false},
	} {
		b := &backup{log: slog.New(slog.DiscardHandler), acct: "alice@gmail.com"}
		j := &folderJob{cat: &catalog.Folder{Name: "[Gmail]/All Mail"}}
		err := fmt.Errorf("UID FETCH: %w", &imapconn.GuardError{Account: b.acct, Kind: tc.kind, Detail: "300 bytes in 5m0s"})
		if got := b.stopAt(j, nil, err); got != tc.stop {
			t.Errorf("%v: stopAt = %v, want %v", tc.kind, got, tc.stop)
		}
		if tc.stop && (b.lim.stopped == nil || !errors.Is(b.lim.stopped, provlimit.ErrDailyLimit) || b.lim.at != j) {
			t.Errorf("%v: run stopped with %v at %v; want the daily limit at the folder", tc.kind, b.lim.stopped, b.lim.at)
		}
	}
}
