package restore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/restore"
)

// TestLabelCopiesPlanned: with Labels "folders" a Gmail archive restores
// more messages than it holds (a copy per label folder; All Mail keeps
// only the messages without a user label). Options.Planned tells the
// difference before the first APPEND, so that the archive's own count
// plus it is exactly the number of APPENDs (Progress events): a progress
// total that reaches 100% and not beyond. Folder selection counts only
// the label folders selected.
func TestLabelCopiesPlanned(t *testing.T) {
	msgs := gmailCorpus()
	dir := gmailArchive(t, msgs, archive.MboxZstd)
	var srcN int
	var srcB int64
	for _, m := range msgs {
		srcN++
		srcB += int64(len(m.body))
	}
	dv := dovecottest.Start(t, nil)
	tests := []struct {
		name    string
		exclude []string
		extra   int // 11 messages restored for 7 archived
	}{
		{"all", nil, 4},
		{"without Work", []string{"Work"}, 2},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("planned%d", i)
			addUsers(t, dv, user)
			var plannedN, calls int
			var plannedB int64
			var events atomic.Int64
			var bytes atomic.Int64
			st, err := doRestore(t, dir, dv.IMAPAddr, user, restoreOpts{Options: restore.Options{
				Exclude: tc.exclude,
				Planned: func(n int, b int64) { plannedN, plannedB = n, b; calls++ },
				Progress: func(ev restore.Event) {
					events.Add(1)
					bytes.Add(ev.Bytes)
				},
			}})
			noErr(t, "restore", st, err)
			if calls != 1 || plannedN != tc.extra {
				t.Errorf("Planned called %d times with %d messages, want once with %d", calls, plannedN, tc.extra)
			}
			if total := srcN + plannedN; int(events.Load()) != total || st.Appended != total {
				t.Errorf("%d APPENDs (%d appended) for a planned total of %d+%d", events.Load(), st.Appended, srcN, plannedN)
			}
			if total := srcB + plannedB; bytes.Load() != total {
				t.Errorf("%d bytes appended for a planned total of %d+%d", bytes.Load(), srcB, plannedB)
			}
		})
	}
}
