package restore

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// FolderReport says what one destination folder kept of what was
// appended to it. Run checks every message appended with an APPENDUID:
// one UID FETCH (FLAGS RFC822.SIZE) per folder; flags and keywords the
// server did not store are set again with UID STORE (one per distinct set
// of missing flags), and what it still does not keep is reported.
type FolderReport struct {
	Folder string `json:"folder"` // source folder
	Dest   string `json:"dest"`   // destination folder

	Appended int `json:"appended"`
	Checked  int `json:"checked"` // appended with APPENDUID and found by it
	// Unchecked were appended without APPENDUID (no UIDPLUS) or under
	// another UIDVALIDITY than the folder's now: not checked.
	Unchecked int `json:"unchecked"`
	// Vanished were gone from the folder right after their APPEND.
	Vanished int `json:"vanished"`
	// FlagsRepaired counts messages stored without some of the flags or
	// keywords sent with the APPEND, and given them by UID STORE.
	FlagsRepaired int `json:"flags_repaired"`
	// FlagsLost names each flag or keyword the destination did not keep
	// even after the STORE, with the number of messages.
	FlagsLost map[string]int `json:"flags_lost,omitempty"`
	// SizeDiffers counts messages whose RFC822.SIZE on the destination is
	// not the source's: the server changed their bytes.
	SizeDiffers int `json:"size_differs"`

	// FlagsNotSent are the flags and keywords left out of the APPENDs:
	// not in the folder's PERMANENTFLAGS, or not valid IMAP atoms.
	FlagsNotSent []string `json:"flags_not_sent,omitempty"`

	// Refused are the messages the server refused to store.
	Refused []Refusal `json:"refused,omitempty"`

	// With Options.Verify: every appended message fetched back and
	// compared (SHA-256, size, flags and keywords, INTERNALDATE).
	Verified   bool         `json:"verified"`
	Exact      int          `json:"exact"`
	Altered    []Alteration `json:"altered,omitempty"`
	Unverified int          `json:"unverified"` // not found to compare
}

// Noteworthy reports whether the report says more than "all appended":
// something was not kept as sent, or it was verified.
func (fr *FolderReport) Noteworthy() bool { return fr.Lossy() || fr.Verified }

// Lossy reports whether the folder kept less or other than sent, or some
// of it could not be checked.
func (fr *FolderReport) Lossy() bool {
	return fr.Unchecked > 0 || fr.Vanished > 0 || fr.FlagsRepaired > 0 || len(fr.FlagsLost) > 0 || fr.SizeDiffers > 0 ||
		len(fr.Refused) > 0 || len(fr.Altered) > 0 || fr.Unverified > 0 || len(fr.FlagsNotSent) > 0
}

// String is the report as one line, naming only what is noteworthy.
func (fr *FolderReport) String() string {
	var parts []string
	if fr.FlagsRepaired > 0 {
		parts = append(parts, fmt.Sprintf("%d messages stored without some flags, set again by STORE", fr.FlagsRepaired))
	}
	if len(fr.FlagsLost) > 0 {
		var fl []string
		for f, n := range fr.FlagsLost {
			fl = append(fl, fmt.Sprintf("%s (%d messages)", f, n))
		}
		sort.Strings(fl)
		parts = append(parts, "flags not kept: "+strings.Join(fl, ", "))
	}
	if len(fr.FlagsNotSent) > 0 {
		parts = append(parts, "flags the folder does not take (not sent): "+strings.Join(fr.FlagsNotSent, " "))
	}
	if fr.SizeDiffers > 0 {
		parts = append(parts, fmt.Sprintf("%d messages stored with another size (the server changed their bytes)", fr.SizeDiffers))
	}
	if fr.Vanished > 0 {
		parts = append(parts, fmt.Sprintf("%d messages gone right after their APPEND", fr.Vanished))
	}
	if fr.Unchecked > 0 && !fr.Verified {
		parts = append(parts, fmt.Sprintf("%d messages not checked (no APPENDUID)", fr.Unchecked))
	}
	for _, r := range fr.Refused {
		parts = append(parts, fmt.Sprintf("message %s refused: %s", r.Message, r.Text))
	}
	if v := fr.verifyLine(); v != "" {
		parts = append(parts, v)
	}
	for _, a := range fr.Altered {
		parts = append(parts, fmt.Sprintf("message %s altered: %s", a.Message, strings.Join(a.Kinds, ", ")))
	}
	if len(parts) == 0 {
		parts = append(parts, "all kept")
	}
	return fmt.Sprintf("folder %q -> %q: %d appended; %s", fr.Folder, fr.Dest, fr.Appended, strings.Join(parts, "; "))
}

// appendedMsg is a message appended with APPENDUID, to check.
type appendedMsg struct {
	uid   imap.UID
	key   string
	size  int64
	flags []imap.Flag // as sent
	msg   Message     // with Options.Verify
}

// unsentMsg is a message appended without APPENDUID (Options.Verify finds
// it by Message-ID).
type unsentMsg struct {
	msg   Message
	flags []imap.Flag
}

// checkStored learns what the destination stored of the messages appended
// to this folder and repairs their flags (see FolderReport).
func (fr *folderRun) checkStored() (err error) {
	rep := &fr.report
	if len(fr.sent) == 0 && (!fr.r.opt.Verify || len(fr.unsent) == 0) {
		return nil
	}
	if !fr.selected && !fr.prepared {
		n, err := fr.selectFolder()
		if err != nil {
			return err
		}
		fr.selected, fr.selectedN = true, n
	}
	// The APPENDs went over another connection: a NOOP lets this one's
	// view of the folder catch up (Dovecot answers a UID FETCH only for
	// messages the session knows of).
	if err := fr.cn.c.Noop().Wait(); err != nil {
		return fmt.Errorf("NOOP in %q: %w", fr.dst, err)
	}
	var check []appendedMsg
	for _, a := range fr.sent {
		if a.validity != fr.uidValidity {
			rep.Unchecked++
			continue
		}
		check = append(check, a.appendedMsg)
	}
	if fr.r.opt.Verify {
		defer func() {
			if err == nil {
				err = fr.verify(check)
			}
		}()
	}
	if len(check) == 0 {
		return nil
	}
	got, err := fr.fetchFlags(check, true)
	if err != nil {
		return err
	}
	byMissing := map[string][]appendedMsg{}
	for _, a := range check {
		st, ok := got[a.uid]
		if !ok {
			rep.Vanished++
			continue
		}
		rep.Checked++
		if st.size != a.size {
			rep.SizeDiffers++
		}
		if miss := missingFlags(a.flags, st.flags); len(miss) > 0 {
			k := strings.Join(miss, " ")
			byMissing[k] = append(byMissing[k], a)
		}
	}
	if len(byMissing) == 0 {
		return nil
	}
	var again []appendedMsg
	keys := make([]string, 0, len(byMissing))
	for k := range byMissing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		msgs := byMissing[k]
		var uids []imap.UID
		for _, a := range msgs {
			uids = append(uids, a.uid)
		}
		slices.Sort(uids)
		var flags []imap.Flag
		for _, f := range strings.Fields(k) {
			flags = append(flags, imap.Flag(f))
		}
		for _, set := range uidSets(uids, maxSearchRanges) {
			// A refusal is not fatal: the second FETCH tells what is kept.
			err := fr.cn.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}, nil).Close()
			if err != nil && !isRefusal(err) {
				return fmt.Errorf("UID STORE in %q: %w", fr.dst, err)
			}
		}
		again = append(again, msgs...)
	}
	rep.FlagsRepaired = len(again)
	got, err = fr.fetchFlags(again, false)
	if err != nil {
		return err
	}
	for _, a := range again {
		for _, f := range missingFlags(a.flags, got[a.uid].flags) {
			if rep.FlagsLost == nil {
				rep.FlagsLost = map[string]int{}
			}
			rep.FlagsLost[f]++
		}
	}
	// Messages that kept nothing more after the STORE were not repaired.
	for _, a := range again {
		if len(missingFlags(a.flags, got[a.uid].flags)) > 0 {
			rep.FlagsRepaired--
		}
	}
	return nil
}

type storedState struct {
	flags []imap.Flag
	size  int64
}

// fetchFlags fetches FLAGS (and RFC822.SIZE) of msgs, batched.
func (fr *folderRun) fetchFlags(msgs []appendedMsg, size bool) (map[imap.UID]storedState, error) {
	uids := make([]imap.UID, len(msgs))
	for i, a := range msgs {
		uids[i] = a.uid
	}
	slices.Sort(uids)
	uids = slices.Compact(uids)
	out := map[imap.UID]storedState{}
	err := fr.fetchList(uids, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: size}, func(m *imapclient.FetchMessageBuffer) {
		out[m.UID] = storedState{flags: m.Flags, size: m.RFC822Size}
	})
	if err != nil {
		return nil, fmt.Errorf("UID FETCH FLAGS in %q: %w", fr.dst, err)
	}
	return out, nil
}

// missingFlags returns the flags of want (less \Recent) that have is
// lacks, compared without regard to case, sorted.
func missingFlags(want, have []imap.Flag) []string {
	h := map[string]bool{}
	for _, f := range have {
		h[strings.ToLower(string(f))] = true
	}
	var out []string
	for _, f := range want {
		l := strings.ToLower(string(f))
		if l != `\recent` && !h[l] {
			out = append(out, string(f))
		}
	}
	sort.Strings(out)
	return out
}
