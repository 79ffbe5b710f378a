package imapsrc

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
)

// Check logs in, lists the folders a backup would cover with their
// counts, and says what a backup would fetch: messages above each folder's
// last archived UID (every message when the folder or its UIDVALIDITY is
// new). cat may be nil (no archive yet); nothing is written. It costs one
// LIST (or STATUS per folder) plus, for folders whose UIDNEXT moved, an
// EXAMINE and a UID FETCH of the new range's sizes.
func Check(ctx context.Context, cat *catalog.Catalog, opt Options) (fetch.Check, error) {
	var out fetch.Check
	s, err := open(ctx, nil, 0, opt, nil)
	if err != nil {
		return out, err
	}
	defer s.close()
	b, c, jobs, sel := s.b, s.c, s.jobs, s.sel
	failures := append([]error(nil), b.stats.Failures...)
	known := map[string]*catalog.Folder{}
	if cat != nil {
		fl, err := cat.Folders(ctx)
		if err != nil {
			return out, err
		}
		for _, f := range fl {
			known[f.Name] = f
		}
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		name := normInbox(j.list.Mailbox, j.list.Delim)
		seen[name] = true
		fc := fetch.FolderCheck{Folder: name, Server: int(msgCount(j.status))}
		f := known[name]
		if f != nil && f.IsView() {
			total, x, _, err := cat.Counts(ctx, f.ID)
			if err != nil {
				return out, err
			}
			fc.Archived, fc.Note = total-x, "Gmail label: shown from All Mail, nothing fetched for it"
			out.Folders = append(out.Folders, fc)
			continue
		}
		var last uint32
		switch {
		case f == nil || f.GoneRun != 0:
			fc.Note = "new folder"
		case j.status != nil && j.status.UIDValidity != f.UIDValidity:
			fc.Note = "UIDVALIDITY changed: archived messages are matched again, the rest fetched"
		default:
			last = f.LastUID
		}
		if f != nil && f.GoneRun == 0 {
			total, x, _, err := cat.Counts(ctx, f.ID)
			if err != nil {
				return out, err
			}
			fc.Archived = total - x
		}
		if fc.Server > 0 && (j.status == nil || f == nil || uint32(j.status.UIDNext) != f.UIDNext || fc.Note != "") {
			n, bytes, err := newRange(c, j.list.Mailbox, last)
			if err != nil {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				failures = append(failures, &archive.MessageError{Ref: archive.Ref{Account: b.acct, Folder: name}, Err: err})
				fc.Note = "error: " + err.Error()
			}
			fc.New, fc.NewBytes = n, bytes
		}
		out.Folders = append(out.Folders, fc)
	}
	for name, f := range known {
		if !seen[name] && f.GoneRun == 0 && !f.IsFrozen() && sel.Match(folderPath(f)) {
			total, x, _, _ := cat.Counts(ctx, f.ID)
			out.Folders = append(out.Folders, fetch.FolderCheck{Folder: name, Server: -1, Archived: total - x, Note: "gone from server: archived mail is kept"})
		}
	}
	if c.State() != imap.ConnStateLogout {
		_ = c.Logout().Wait()
	}
	return out, errors.Join(failures...)
}

// newRange counts the messages above UID last and their sizes.
func newRange(c *imapclient.Client, mailbox string, last uint32) (int, int64, error) {
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return 0, 0, fmt.Errorf("EXAMINE: %w", err)
	}
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: imap.UID(last + 1), Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true})
	var n int
	var bytes int64
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			abandonOne(c, cmd)
			return 0, 0, fmt.Errorf("UID FETCH sizes: %w", err)
		}
		// "last+1:*" names the highest message even when its UID is lower.
		if uint32(buf.UID) > last {
			n++
			bytes += buf.RFC822Size
		}
	}
	if err := cmd.Close(); err != nil {
		return 0, 0, fmt.Errorf("UID FETCH sizes: %w", err)
	}
	return n, bytes, nil
}
