package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// TestLiveIndexMissed: a commit the live index drops (past its queue's
// bound) is indexed by the Update at the end, which runs only then; a
// commit indexed live needs none.
func TestLiveIndexMissed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		queue  int
		missed bool
	}{
		{"indexed live", 100, false},
		{"past the queue's bound", 3, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(n int) { maxLiveQueue = n }(maxLiveQueue)
			maxLiveQueue = tt.queue
			ctx := context.Background()
			dir := t.TempDir()
			live := &liveIndex{}
			a, err := archive.Open(dir, archive.Options{OnCommit: live.onCommit, Extract: live.extract})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			live.start(ctx, a, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
			run, err := a.Cat.BeginRun(ctx, "backup", "test", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f, err := a.Folder(ctx, "INBOX", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.NewWriter(ctx, f, run)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				msg := fmt.Sprintf("From: a@example.com\r\nSubject: aardvark %d\r\n\r\nbody text %d\r\n", i, i)
				if _, err := w.Add(&archive.Incoming{UIDValidity: 1, UID: uint32(i + 1), InternalDate: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC)}, strings.NewReader(msg)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			live.finish(ctx)
			if live.missed.Load() != tt.missed {
				t.Errorf("missed %v, want %v", live.missed.Load(), tt.missed)
			}
			ix, err := textindex.OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if n, err := ix.Count(ctx); err != nil || n != 5 {
				t.Errorf("index holds %d messages (%v), want 5", n, err)
			}
		})
	}
}
