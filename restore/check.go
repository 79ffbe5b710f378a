package restore

import (
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/uidpage"
)

// Lister is a Progress that can list what it recorded as restored into
// one destination folder. With it, Run checks the record against the
// destination before skipping anything: see "The destination is the truth"
// in the package documentation. A Progress without it is only a hint: a
// message it reports restored is looked for in the destination folder's
// contents (the already-present rule) like any other.
type Lister interface {
	// RestoredIn returns, by message key, the messages recorded as
	// restored to dest whose destination folder is folder.
	RestoredIn(ctx context.Context, dest Destination, folder string) (map[string]Restored, error)
}

// maxSearchRanges bounds the UID ranges of one UID SEARCH, to keep the
// command line well under servers' limits (Dovecot: 64 KB).
const maxSearchRanges = 2000

// checkRecorded reads what the progress record says was restored into
// this folder and confirms it on the destination: the folder's current
// UIDVALIDITY must be the one of the APPENDUID, and the UID must still
// exist there (one UID SEARCH per folder). Confirmed messages are skipped
// later; the others are restored again (after the already-present rule),
// and counted in Stats.Missing.
func (fr *folderRun) checkRecorded() error {
	r := fr.r
	l, ok := r.prog.(Lister)
	if !ok {
		return nil
	}
	fr.lister = true
	recs, err := l.RestoredIn(r.ctx, r.dest, fr.dst)
	if err != nil {
		return fmt.Errorf("reading progress: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	fr.recs = recs
	fr.verified = map[string]bool{}
	fr.verifiedUIDs = map[imap.UID]bool{}
	if r.opt.DryRun && !r.existing[fr.dst] {
		return nil // to be created: nothing there yet
	}
	n, err := fr.selectFolder()
	if err != nil {
		return err
	}
	fr.selected, fr.selectedN = true, n
	var uids []imap.UID
	for _, rec := range recs {
		if rec.UIDValidity != 0 && rec.UIDValidity == fr.uidValidity && rec.UID != 0 {
			uids = append(uids, imap.UID(rec.UID))
		}
	}
	have := map[imap.UID]bool{}
	if n > 0 && len(uids) > 0 {
		slices.Sort(uids)
		for _, set := range uidSets(uids, maxSearchRanges) {
			data, err := fr.cn.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
			if err != nil {
				return fmt.Errorf("UID SEARCH in %q: %w", fr.dst, err)
			}
			for _, uid := range data.AllUIDs() {
				have[uid] = true
			}
		}
		// SEARCH sees only what the folder shows (hidden.go): the
		// recorded UIDs it did not find are fetched by UID.
		if fr.hiding(uint64(n)) {
			var rest []imap.UID
			for _, u := range uids {
				if !have[u] {
					rest = append(rest, u)
				}
			}
			if len(rest) > 0 {
				err := fr.fetchList(slices.Compact(rest), &imap.FetchOptions{UID: true}, func(m *imapclient.FetchMessageBuffer) { have[m.UID] = true })
				if err != nil {
					return fmt.Errorf("UID FETCH of recorded UIDs in %q: %w", fr.dst, err)
				}
			}
		}
	}
	for k, rec := range recs {
		if rec.UIDValidity == fr.uidValidity && have[imap.UID(rec.UID)] {
			fr.verified[k] = true
			fr.verifiedUIDs[imap.UID(rec.UID)] = true
		}
	}
	if len(fr.verified) < len(recs) {
		r.log.Info("messages recorded as restored are not all on the destination", "folder", fr.dst,
			"recorded", len(recs), "present", len(fr.verified), "uidvalidity", fr.uidValidity)
	}
	return nil
}

// uidSets splits sorted, distinct uids into sets of at most max ranges.
func uidSets(uids []imap.UID, max int) []imap.UIDSet { return uidpage.Sets(uids, max) }
