// Package pop3src backs up a POP3 mailbox into an archive, incrementally by
// UIDL, and deletes from the server only what is safely archived.
//
// Sizes: a message whose received size disagrees with the size the server
// announced (LIST, "+OK n octets"; SizeMatches allows only the
// line-ending difference) is archived as received, reported as a failure
// naming its UIDL (exit 3), and never deleted: the check is made again from
// the archived copy before every DELE, so a later run does not delete it
// either.
//
// Deletion order: every new message is stored, made durable and committed
// to the catalog first; then each candidate for deletion is read back from
// the archive and its SHA-256 compared with the catalog; only then are DELE
// commands sent, and the deletions take effect at QUIT. Any failure before
// QUIT drops the connection without QUIT, so the server deletes nothing.
package pop3src

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
)

// Folder is the archive folder a POP3 mailbox lands in.
const Folder = "INBOX"

// Options configure a POP3 backup.
type Options struct {
	// Server is the account (internal/pop3.Config implements it).
	Server   Server
	Delete   bool // delete every archived message from the server
	KeepDays int  // delete archived messages once stored this many days (0: never)
	DryRun   bool // report deletions instead of doing them
	NoUIDL   bool // identify messages by the SHA-256 of their header (TOP n 0)
	Now      func() time.Time
	Logger   *slog.Logger
	Progress func(folder string, n int, bytes int64)
	// WouldDelete receives, with DryRun, each message that would be deleted.
	WouldDelete func(uidl string, m *catalog.Message)
}

// Backup runs one POP3 backup into a.
func Backup(ctx context.Context, a *archive.Archive, run int64, opt Options) (fetch.Stats, error) {
	var st fetch.Stats
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	acct := opt.Server.String()
	failf := func(uidl string, err error) {
		st.Failures = append(st.Failures, &archive.MessageError{Ref: archive.Ref{Account: acct, Folder: Folder, UIDL: uidl}, Err: err})
	}
	s, err := open(ctx, opt)
	if err != nil {
		return st, err
	}
	c, list, ids := s.c, s.list, s.ids
	defer c.Close() // without QUIT: a no-op after a successful Quit
	st.Folders = 1
	f, err := a.Folder(Folder, 0, "")
	if err != nil {
		return st, err
	}
	known := map[string]*catalog.Message{}
	all, err := a.Cat.All(f.ID)
	if err != nil {
		return st, err
	}
	for _, m := range all {
		known[m.UIDL] = m
	}

	// 1. Fetch what the archive lacks.
	var fresh []int
	sizes := map[int]int64{}
	for _, mi := range list {
		sizes[mi.ID] = mi.Size
		if m := known[ids[mi.ID]]; m == nil {
			fresh = append(fresh, mi.ID)
		}
	}
	if len(fresh) == 0 {
		st.Unchanged = 1
	}
	w, err := a.NewWriter(f, run)
	if err != nil {
		return st, err
	}
	err = c.Retr(ctx, fresh, func(id int, r io.Reader) error {
		if _, err := w.Add(&archive.Incoming{UIDL: ids[id]}, r); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(Folder, 1, sizes[id])
		}
		return nil
	})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	st.Fetched, st.Bytes = w.Stored()
	// A message whose size disagrees with the server's announcement is
	// kept (it may be all there is) but named, and never deleted.
	shortUIDL := map[string]bool{}
	for id, se := range c.Mismatched() {
		shortUIDL[ids[id]] = true
		failf(ids[id], fmt.Errorf("archived as received, never deleted from the server: %w", se))
	}
	if err != nil {
		return st, fmt.Errorf("%s: folder %s: %w", acct, Folder, err)
	}

	// 2. Messages gone from the server since the last run.
	onServer := map[string]bool{}
	for _, u := range ids {
		onServer[u] = true
	}
	deleted, err := a.Cat.Deleted(f.ID)
	if err != nil {
		return st, err
	}
	var gone []int64
	for u, m := range known {
		if !onServer[u] && m.ExpungedRun == 0 && deleted[m.ID] == 0 { // deleted by mailkeep: not gone
			gone = append(gone, m.ID)
		}
	}
	if err := a.Cat.MarkExpunged(run, gone); err != nil {
		return st, err
	}
	st.Expunged = len(gone)

	// 3. Deletion, only of committed messages that verify.
	if !opt.Delete && opt.KeepDays <= 0 {
		return st, quit(ctx, c, acct)
	}
	fresh2, err := a.Cat.All(f.ID)
	if err != nil {
		return st, err
	}
	byUIDL := map[string]*catalog.Message{}
	for _, m := range fresh2 {
		byUIDL[m.UIDL] = m
	}
	cutoff := opt.Now().Add(-time.Duration(opt.KeepDays) * 24 * time.Hour)
	var dele []int
	var deleIDs []int64
	for _, mi := range list {
		u := ids[mi.ID]
		m := byUIDL[u]
		if m == nil || m.ExpungedRun != 0 {
			continue // not archived (failed this run): never deleted
		}
		if !opt.Delete && m.StoredAt.After(cutoff) {
			continue
		}
		if shortUIDL[u] {
			continue // named above
		}
		got, lfs, err := verify(a, m)
		if err != nil {
			failf(u, fmt.Errorf("not deleted from the server: %w", err))
			continue
		}
		if !SizeMatches(mi.Size, got, lfs) {
			failf(u, fmt.Errorf("not deleted from the server: %w", &SizeError{ID: mi.ID, Announced: mi.Size, Source: "LIST", Got: got, Lines: lfs}))
			continue
		}
		if opt.DryRun {
			if opt.WouldDelete != nil {
				opt.WouldDelete(u, m)
			}
			continue
		}
		dele = append(dele, mi.ID)
		deleIDs = append(deleIDs, m.ID)
	}
	if len(dele) == 0 {
		return st, quit(ctx, c, acct)
	}
	if err := c.Dele(ctx, dele); err != nil {
		return st, fmt.Errorf("%s: DELE failed, nothing deleted (connection dropped without QUIT): %w", acct, err)
	}
	if err := c.Quit(ctx); err != nil {
		return st, fmt.Errorf("%s: QUIT after DELE: the server may not have deleted the messages: %w", acct, err)
	}
	// Not "expunged": these are archived on purpose and stay visible.
	if err := a.Cat.MarkDeleted(run, deleIDs); err != nil {
		return st, err
	}
	st.Deleted = len(dele)
	opt.Logger.Info("deleted from server", "account", acct, "messages", len(dele))
	return st, nil
}

func quit(ctx context.Context, c Session, acct string) error {
	if err := c.Quit(ctx); err != nil {
		return fmt.Errorf("%s: QUIT: %w", acct, err)
	}
	return nil
}

// verify reads a message back from the archive and checks its SHA-256; it
// returns the copy's size and line feeds, for the comparison with the
// size the server announces before the message is deleted there.
func verify(a *archive.Archive, m *catalog.Message) (size, lfs int64, err error) {
	r, err := a.OpenChecked(m)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	lc := &lfCounter{}
	n, err := io.Copy(lc, r)
	if err != nil {
		return 0, 0, fmt.Errorf("reading back from the archive: %w", err)
	}
	return n, lc.n, nil
}

type lfCounter struct{ n int64 }

func (l *lfCounter) Write(p []byte) (int, error) {
	l.n += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// identify returns each message's key: its UIDL, or with noUIDL the
// SHA-256 of its header block (TOP id 0), made unique by a "#n" suffix when
// headers repeat.
func identify(ctx context.Context, c Session, list []MsgInfo, noUIDL bool) (map[int]string, error) {
	uidls, err := c.UIDL(ctx)
	if err == nil {
		for _, mi := range list {
			if uidls[mi.ID] == "" {
				return nil, fmt.Errorf("UIDL: server gave no UIDL for message %d", mi.ID)
			}
		}
		return uidls, nil
	}
	if !errors.Is(err, ErrNoUIDL) {
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	if !noUIDL {
		return nil, fmt.Errorf("the server does not support UIDL, so messages cannot be told apart between runs; use --no-uidl to recognise them by a checksum of their headers: %w", err)
	}
	out := map[int]string{}
	seen := map[string]int{}
	idsSorted := make([]int, 0, len(list))
	for _, mi := range list {
		idsSorted = append(idsSorted, mi.ID)
	}
	slices.Sort(idsSorted)
	for _, id := range idsSorted {
		hdr, err := c.Top(ctx, id, 0)
		if err != nil {
			return nil, fmt.Errorf("TOP %d 0: %w", id, err)
		}
		sum := sha256.Sum256(hdr)
		k := "hdr:" + hex.EncodeToString(sum[:])
		seen[k]++
		if n := seen[k]; n > 1 {
			k = fmt.Sprintf("%s#%d", k, n)
		}
		out[id] = k
	}
	return out, nil
}
