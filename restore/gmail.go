package restore

// Restoring onto Gmail (see labels.go for what becomes of labels
// elsewhere). Gmail stores a message once and shows it in a folder per
// label; an APPEND into a folder labels the message with that folder.
// A Gmail archive's messages are APPENDed once each, into the folder they
// were archived in ([Gmail]/All Mail, whose APPENDs carry no label,
// [Gmail]/Spam or [Gmail]/Trash; All Mail goes to the destination's \All
// folder, whatever its language), with its archived flags and \Flagged
// for \Starred (\Draft is stored as a label: the \Draft flag does not
// make it). After the folder's APPENDs its labels are added on a raw
// connection (Options.DialLabels) with the folder selected:
//
//	UID FETCH <uids> (UID X-GM-MSGID X-GM-THRID X-GM-LABELS FLAGS)
//	UID STORE <uids> +X-GM-LABELS (\Inbox "Work/2014")
//
// The UIDs are the APPENDUIDs, or those of the copies the destination
// check confirmed (progress record) or found already present, so a rerun
// after a killed restore stores the labels of the messages the first run
// appended but did not label, and only the labels the destination lacks:
// a rerun over a restore done in full sends one UID FETCH per folder.
// Messages with the same labels to add share one STORE (up to
// storeBatch UIDs). Labels go as quoted strings in modified UTF-7
// (internal/gmailext.StoreLabels): never a literal, which Gmail (LITERAL-,
// no LITERAL+) would make a round trip. A STORE the server refuses is
// tried again one message and one label at a time, and each label it
// still refuses is reported in Stats.LabelsRefused (source folder,
// message, destination UID, label, the server's answer), not as a
// failure; the restore goes on.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// capGmail is Gmail's extension capability.
const capGmail = "X-GM-EXT-1"

// storeBatch bounds the UIDs of one UID FETCH or UID STORE.
const storeBatch = 500

// LabelRefusal is a Gmail label the destination refused for a message.
type LabelRefusal struct {
	Folder  string `json:"folder"`  // source folder
	Message string `json:"message"` // as the Source names it ("UID 4711")
	Dest    string `json:"dest"`    // destination folder
	UID     uint32 `json:"uid"`     // the message's UID there
	Label   string `json:"label"`
	Text    string `json:"text"` // the server's answer
}

func (l LabelRefusal) String() string {
	return fmt.Sprintf("folder %q: message %s (UID %d in %q): label %q refused: %s", l.Folder, l.Message, l.UID, l.Dest, l.Label, l.Text)
}

// gmailStored is the labels of a message that Gmail is given by STORE:
// all but \Starred, which is the \Flagged flag.
func gmailStored(labels []string) []string {
	var out []string
	for _, l := range labels {
		if l == "" || strings.EqualFold(l, labelStarred) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// noteLabels remembers the labels to store for m (onto Gmail).
func (fr *folderRun) noteLabels(m Message) {
	if !fr.r.gmail {
		return
	}
	if ls := fr.r.prefixLabels(gmailStored(m.Labels)); len(ls) > 0 {
		if fr.r.opt.DryRun {
			fr.r.dryRunf("would add Gmail labels %q in %q to %s of %q (unless it has them)\n", ls, fr.dst, fr.r.msgName(fr.f.Name, m.Key), fr.f.Name)
			return
		}
		if fr.labels == nil {
			fr.labels = map[string][]string{}
			fr.uidOf = map[string]imap.UID{}
		}
		fr.labels[m.Key] = ls
	}
}

// With Options.Prefix onto Gmail, the prefix is a parent label: the
// user labels are restored under it ("Work" is "Old mail/Work"), as are
// the folders of a source that is not a Gmail archive, so what was
// restored can be told apart from the mail already there. The system
// labels (\Inbox, \Sent, \Important) stay what they are, and the
// folders with the special-use attributes \All, \Junk and \Trash (a
// Gmail archive's All Mail, Spam and Trash) still go to the destination's
// All Mail, Spam and Trash: on Gmail a folder is a label, and a label
// named "Old mail/[Gmail]/All Mail" or "Old mail/Trash" would be put on
// every restored message, or show deleted mail and spam among the rest.

// gmailSystemFolders are the special-use attributes still mapped with a
// prefix onto Gmail.
var gmailSystemFolders = map[string]bool{`\all`: true, `\junk`: true, `\trash`: true}

// prefixSpecial reports whether f goes to the destination's special-use
// folder although Options.Prefix is given (onto Gmail, see above).
func (r *run) prefixSpecial(f Folder) bool {
	return r.gmail && gmailSystemFolders[strings.ToLower(f.SpecialUse)]
}

// prefixLabels puts Options.Prefix in front of the user labels in ls.
func (r *run) prefixLabels(ls []string) []string {
	p := strings.Trim(r.opt.Prefix, "/")
	if p == "" || len(ls) == 0 {
		return ls
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		if strings.HasPrefix(l, `\`) {
			out[i] = l // a system label
		} else {
			out[i] = p + "/" + l
		}
	}
	return out
}

// placed records the destination UID of a message with labels to store.
func (fr *folderRun) placed(key string, uid imap.UID) {
	if _, ok := fr.labels[key]; ok && uid != 0 {
		fr.uidOf[key] = uid
	}
}

// storeLabels adds the folder's messages' labels the destination lacks.
// The error is for a connection that failed; refusals are reported.
func (fr *folderRun) storeLabels() error {
	r := fr.r
	if len(fr.labels) == 0 {
		return nil
	}
	keyOf := map[imap.UID]string{}
	for key := range fr.labels {
		uid := fr.uidOf[key]
		if uid == 0 && fr.verified[key] {
			uid = imap.UID(fr.recs[key].UID)
		}
		if uid != 0 {
			keyOf[uid] = key
		}
	}
	if len(keyOf) == 0 {
		return nil
	}
	if r.opt.DialLabels == nil {
		r.log.Warn("Gmail labels not stored: no connection for them (Options.DialLabels)", "folder", fr.dst, "messages", len(keyOf))
		return nil
	}
	raw, err := r.opt.DialLabels(r.ctx)
	if err != nil {
		return fmt.Errorf("connecting to store Gmail labels: %w", err)
	}
	stop := context.AfterFunc(r.ctx, func() { raw.Close() })
	defer func() {
		stop()
		if r.ctx.Err() != nil || err != nil {
			raw.Close()
		} else {
			raw.Logout()
		}
	}()
	if _, err = raw.Cmd("SELECT " + imapconn.Mailbox(fr.dst)); err != nil {
		return fmt.Errorf("SELECT %q to store Gmail labels: %w", fr.dst, err)
	}
	g := gmailext.NewBuffered(raw.Reader(), raw.Writer(), nil)
	uids := make([]imap.UID, 0, len(keyOf))
	for uid := range keyOf {
		uids = append(uids, uid)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	// What the destination has already.
	have := map[imap.UID][]string{}
	for i := 0; i < len(uids); i += storeBatch {
		chunk := uids[i:min(i+storeBatch, len(uids))]
		res, ferr := g.FetchMeta(r.ctx, uidSet(chunk), gmailext.FetchOptions{})
		if ferr != nil {
			err = ferr
			return fmt.Errorf("reading the labels of %q: %w", fr.dst, err)
		}
		for _, m := range res.Messages {
			have[imap.UID(m.UID)] = m.Labels
		}
	}
	// The labels to add, grouped by set.
	groups := map[string][]imap.UID{}
	for _, uid := range uids {
		var add []string
		for _, l := range fr.labels[keyOf[uid]] {
			if !hasLabel(have[uid], l) && !hasLabel(add, l) {
				add = append(add, l)
			}
		}
		if len(add) > 0 {
			sort.Strings(add)
			k := strings.Join(add, "\n")
			groups[k] = append(groups[k], uid)
		}
	}
	sets := make([]string, 0, len(groups))
	for k := range groups {
		sets = append(sets, k)
	}
	sort.Strings(sets)
	for _, k := range sets {
		labels := strings.Split(k, "\n")
		all := groups[k]
		for i := 0; i < len(all); i += storeBatch {
			chunk := all[i:min(i+storeBatch, len(all))]
			if _, serr := g.StoreLabels(r.ctx, uidSet(chunk), true, labels); serr != nil {
				if !labelRefusal(serr) || dailyLimit(serr) {
					err = serr
					return fmt.Errorf("storing Gmail labels in %q: %w", fr.dst, err)
				}
				// One message and one label at a time, to name the refused.
				for _, uid := range chunk {
					for _, l := range labels {
						if _, serr := g.StoreLabels(r.ctx, uidSet([]imap.UID{uid}), true, []string{l}); serr != nil {
							if !labelRefusal(serr) || dailyLimit(serr) {
								err = serr
								return fmt.Errorf("storing Gmail labels in %q: %w", fr.dst, err)
							}
							fr.labelRefused(keyOf[uid], uid, l, serr)
							continue
						}
						r.count(func(s *Stats) { s.LabelsStored++ })
					}
				}
				continue
			}
			r.count(func(s *Stats) { s.LabelsStored += len(chunk) * len(labels) })
		}
	}
	return nil
}

// labelRefusal reports whether err is the server refusing a STORE (NO,
// BAD) or a label that cannot be sent, rather than a broken connection.
func labelRefusal(err error) bool {
	var se *gmailext.StatusError
	return errors.As(err, &se) || errors.Is(err, gmailext.ErrBadLabel)
}

// dailyLimit reports whether err is the destination's daily limit (the
// caller stops the run, limits.go), not a refusal of one label.
func dailyLimit(err error) bool {
	e := limitOf(err)
	return e != nil && e.Kind == provlimit.DailyLimit
}

func (fr *folderRun) labelRefused(key string, uid imap.UID, label string, err error) {
	text := err.Error()
	var se *gmailext.StatusError
	if errors.As(err, &se) {
		text = se.Status
		if se.Code != "" {
			text += " [" + se.Code + "]"
		}
		text += " " + se.Text
	}
	lr := LabelRefusal{Folder: fr.f.Name, Message: fr.r.msgName(fr.f.Name, key), Dest: fr.dst, UID: uint32(uid), Label: label, Text: text}
	fr.r.log.Warn("Gmail label refused", "folder", lr.Folder, "message", lr.Message, "dest", lr.Dest, "uid", lr.UID, "label", lr.Label, "answer", lr.Text)
	fr.r.count(func(s *Stats) { s.LabelsRefused = append(s.LabelsRefused, lr) })
}

// uidSet writes sorted UIDs as an IMAP set with ranges.
func uidSet(uids []imap.UID) string {
	var sb strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			sb.WriteByte(':')
			sb.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return sb.String()
}
