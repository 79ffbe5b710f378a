package main

import (
	"context"
	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/glob"
)

// archiveTotals counts the messages and bytes of the archive's folders
// that include/exclude select, for the progress line's percentage and
// ETA (expunged ones only when withExpunged). On an error it gives 0, 0:
// the line then shows counts without a total.
func archiveTotals(ctx context.Context, a *archive.Archive, include, exclude []string, withExpunged bool) (int, int64) {
	fl, err := a.Cat.Folders(ctx)
	if err != nil {
		return 0, 0
	}
	sel := glob.New(include, exclude)
	var n int
	var b int64
	for _, f := range fl {
		if !sel.Match(f.Name) || f.IsView() { // a Gmail label: its messages are counted in All Mail
			continue
		}
		c, err := a.Cat.CountStates(ctx, f.ID)
		if err != nil {
			return 0, 0
		}
		if withExpunged {
			n += c.Total
		} else {
			n += c.Visible()
		}
		b += c.Bytes
	}
	return n, b
}

// archiveNote ends a summary line with the archive's path.
func archiveNote(dir string) string {
	if dir == "" {
		return ""
	}
	return ", archive " + dir
}
