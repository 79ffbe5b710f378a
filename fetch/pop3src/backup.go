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
	// Planned, when set, is called once before the first RETR with the
	// messages and bytes (the LIST sizes) the run will fetch.
	Planned func(messages int, bytes int64)
	// WouldDelete receives, with DryRun, each message that would be deleted.
	WouldDelete func(uidl string, m *catalog.Message)
}

// Backup runs one POP3 backup into a.
func Backup(ctx context.Context, a *archive.Archive, run int64, opt Options) (fetch.Stats, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := open(ctx, opt)
	if err != nil {
		return fetch.Stats{}, err
	}
	defer s.c.Close() // without QUIT: a no-op after a successful Quit
	b := &popBackup{ctx: ctx, a: a, run: run, opt: opt, s: s}
	b.st.Folders = 1
	if b.f, err = a.Folder(ctx, Folder, 0, ""); err != nil {
		return b.st, err
	}
	all, err := a.Cat.All(ctx, b.f.ID)
	if err != nil {
		return b.st, err
	}
	known := map[string]*catalog.Message{}
	for _, m := range all {
		known[m.UIDL] = m
	}
	if err := b.fetchNew(known); err != nil {
		return b.st, err
	}
	if err := b.markGone(known); err != nil {
		return b.st, err
	}
	if !opt.Delete && opt.KeepDays <= 0 {
		return b.st, s.quit(ctx)
	}
	return b.st, b.deleteVerified()
}

// popBackup is one POP3 backup run.
type popBackup struct {
	ctx context.Context
	a   *archive.Archive
	run int64
	opt Options
	s   *session
	f   *catalog.Folder
	st  fetch.Stats
	// short holds the UIDLs received at another size than announced:
	// archived as received, never deleted.
	short map[string]bool
}

func (b *popBackup) fail(uidl string, err error) {
	b.st.Failures = append(b.st.Failures, &archive.MessageError{Ref: archive.Ref{Account: b.s.acct, Folder: Folder, UIDL: uidl}, Err: err})
}

// fetchNew stores the messages the archive lacks (step 1).
func (b *popBackup) fetchNew(known map[string]*catalog.Message) error {
	var fresh []int
	sizes := map[int]int64{}
	for _, mi := range b.s.list {
		sizes[mi.ID] = mi.Size
		if m := known[b.s.ids[mi.ID]]; m == nil {
			fresh = append(fresh, mi.ID)
		}
	}
	if len(fresh) == 0 {
		b.st.Unchanged = 1
	}
	if b.opt.Planned != nil {
		var bytes int64
		for _, id := range fresh {
			bytes += sizes[id]
		}
		b.opt.Planned(len(fresh), bytes)
	}
	w, err := b.a.NewWriter(b.ctx, b.f, b.run)
	if err != nil {
		return err
	}
	err = b.s.c.Retr(b.ctx, fresh, func(id int, r io.Reader) error {
		if _, err := w.Add(&archive.Incoming{UIDL: b.s.ids[id]}, r); err != nil {
			return err
		}
		if b.opt.Progress != nil {
			b.opt.Progress(Folder, 1, sizes[id])
		}
		return nil
	})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	b.st.Fetched, b.st.Bytes = w.Stored()
	// A message whose size disagrees with the server's announcement is
	// kept (it may be all there is) but named, and never deleted.
	b.short = map[string]bool{}
	for id, se := range b.s.c.Mismatched() {
		b.short[b.s.ids[id]] = true
		b.fail(b.s.ids[id], fmt.Errorf("archived as received, never deleted from the server: %w", se))
	}
	if err != nil {
		return fmt.Errorf("%s: folder %s: %w", b.s.acct, Folder, err)
	}
	return nil
}

// markGone marks the messages gone from the server since the last run
// expunged (step 2); those mailkeep deleted are not gone.
func (b *popBackup) markGone(known map[string]*catalog.Message) error {
	onServer := map[string]bool{}
	for _, u := range b.s.ids {
		onServer[u] = true
	}
	deleted, err := b.a.Cat.Deleted(b.ctx, b.f.ID)
	if err != nil {
		return err
	}
	var gone []int64
	for u, m := range known {
		if !onServer[u] && m.ExpungedRun == 0 && deleted[m.ID] == 0 {
			gone = append(gone, m.ID)
		}
	}
	if err := b.a.Cat.MarkExpunged(b.ctx, b.run, gone); err != nil {
		return err
	}
	b.st.Expunged = len(gone)
	return nil
}

// deleteVerified deletes from the server the committed messages due for
// deletion whose archived copy verifies (step 3), then QUITs.
func (b *popBackup) deleteVerified() error {
	ctx, c, acct := b.ctx, b.s.c, b.s.acct
	dele, deleIDs, err := b.deletable()
	if err != nil {
		return err
	}
	if len(dele) == 0 {
		return b.s.quit(ctx)
	}
	if err := c.Dele(ctx, dele); err != nil {
		return fmt.Errorf("%s: DELE failed, nothing deleted (connection dropped without QUIT): %w", acct, err)
	}
	if err := c.Quit(ctx); err != nil {
		return fmt.Errorf("%s: QUIT after DELE: the server may not have deleted the messages: %w", acct, err)
	}
	// Not "expunged": these are archived on purpose and stay visible.
	if err := b.a.Cat.MarkDeleted(ctx, b.run, deleIDs); err != nil {
		return err
	}
	b.st.Deleted = len(dele)
	b.opt.Logger.Info("deleted from server", "account", acct, "messages", len(dele))
	return nil
}

// deletable lists the messages to delete (message numbers and catalog
// ids): archived, old enough, not short, read back through the checked
// read and of the size the server announces. With DryRun they go to
// WouldDelete instead.
func (b *popBackup) deletable() ([]int, []int64, error) {
	all, err := b.a.Cat.All(b.ctx, b.f.ID)
	if err != nil {
		return nil, nil, err
	}
	byUIDL := map[string]*catalog.Message{}
	for _, m := range all {
		byUIDL[m.UIDL] = m
	}
	cutoff := b.opt.Now().Add(-time.Duration(b.opt.KeepDays) * 24 * time.Hour)
	var dele []int
	var deleIDs []int64
	for _, mi := range b.s.list {
		u := b.s.ids[mi.ID]
		m := byUIDL[u]
		if m == nil || m.ExpungedRun != 0 {
			continue // not archived (failed this run): never deleted
		}
		if !b.opt.Delete && m.StoredAt.After(cutoff) {
			continue
		}
		if b.short[u] {
			continue // named by fetchNew
		}
		got, lfs, err := verify(b.a, m)
		if err != nil {
			b.fail(u, fmt.Errorf("not deleted from the server: %w", err))
			continue
		}
		if !SizeMatches(mi.Size, got, lfs) {
			b.fail(u, fmt.Errorf("not deleted from the server: %w", &SizeError{ID: mi.ID, Announced: mi.Size, Source: "LIST", Got: got, Lines: lfs}))
			continue
		}
		if b.opt.DryRun {
			if b.opt.WouldDelete != nil {
				b.opt.WouldDelete(u, m)
			}
			continue
		}
		dele = append(dele, mi.ID)
		deleIDs = append(deleIDs, m.ID)
	}
	return dele, deleIDs, nil
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
