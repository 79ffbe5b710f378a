package restore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Kinds of alteration Options.Verify tells apart.
const (
	AlteredHeader     = "header bytes" // the header differs (8-bit bytes replaced, a field added)
	AlteredLineEnds   = "line ends"    // bare LF made CRLF, a final CRLF added or removed
	AlteredFromQuotes = "From quoting" // body lines "From " stored as ">From "
	AlteredBody       = "body bytes"   // the body differs otherwise
	AlteredDate       = "date"         // INTERNALDATE not the one sent
	AlteredFlags      = "flags"        // flags or keywords not the ones sent
	AlteredSize       = "size"         // too large to compare byte for byte: size or SHA-256 differs
)

// Alteration is one message the destination stored other than sent.
type Alteration struct {
	Message string   `json:"message"` // as the Namer names it ("UID 4711")
	Kinds   []string `json:"kinds"`
}

// Refusal is one message the destination refused.
type Refusal struct {
	Message string `json:"message"`
	Text    string `json:"text"` // the server's answer
}

// verify fetches back the messages appended to this folder (by APPENDUID,
// else by a Message-ID search) and compares them with the source: SHA-256,
// size, flags and keywords, INTERNALDATE. Exact ones are counted; altered
// ones named with the kinds of change.
func (fr *folderRun) verify(check []appendedMsg) error {
	rep := &fr.report
	rep.Verified = true
	byUID := map[imap.UID]appendedMsg{}
	for _, a := range check {
		byUID[a.uid] = a
	}
	// Without APPENDUID: find them by Message-ID (and size, among several).
	for _, m := range fr.unsent {
		id := normID(m.msg.MessageID)
		if id == "" {
			rep.Unverified++
			continue
		}
		data, err := fr.cn.c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}}}, nil).Wait()
		if err != nil {
			return fmt.Errorf("UID SEARCH in %q: %w", fr.dst, err)
		}
		found := false
		for _, uid := range data.AllUIDs() {
			if _, used := byUID[uid]; !used {
				byUID[uid] = appendedMsg{uid: uid, key: m.msg.Key, size: m.msg.Size, flags: m.flags, msg: m.msg}
				found = true
				break
			}
		}
		if !found {
			rep.Unverified++
		}
	}
	if len(byUID) == 0 {
		return nil
	}
	uids := make([]imap.UID, 0, len(byUID))
	for u := range byUID {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	seen := map[imap.UID]bool{}
	sec := &imap.FetchItemBodySection{Peek: true}
	opt := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{sec}}
	err := fr.streamList(uids, opt, func(msg *imapclient.FetchMessageData, in func(imap.UID) bool) imap.UID {
		var got fetchedCopy
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				got.uid = it.UID
			case imapclient.FetchItemDataFlags:
				got.flags = it.Flags
			case imapclient.FetchItemDataInternalDate:
				got.date = it.Time.Unix()
			case imapclient.FetchItemDataRFC822Size:
				got.size = it.Size
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					got.readBody(it.Literal)
				}
			}
		}
		a, ok := byUID[got.uid]
		if !ok || !in(got.uid) || seen[got.uid] || got.sum == "" {
			return 0 // unsolicited, or no body
		}
		seen[got.uid] = true
		if kinds := compareCopy(a, &got); len(kinds) > 0 {
			rep.Altered = append(rep.Altered, Alteration{Message: fr.r.msgName(fr.f.Name, a.key), Kinds: kinds})
		} else {
			rep.Exact++
		}
		return got.uid
	})
	if err != nil {
		return fmt.Errorf("UID FETCH BODY.PEEK[] in %q: %w", fr.dst, err)
	}
	rep.Unverified += len(byUID) - len(seen)
	return nil
}

// fetchedCopy is what the destination holds of one message.
type fetchedCopy struct {
	uid   imap.UID
	flags []imap.Flag
	date  int64
	size  int64
	n     int64  // bytes of BODY[]
	sum   string // their SHA-256
	buf   []byte // the bytes, when small
}

func (c *fetchedCopy) readBody(r io.Reader) {
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &limitedBuffer{&buf, smallMessage}), r)
	if err != nil {
		return
	}
	c.n, c.sum = n, hex.EncodeToString(h.Sum(nil))
	if n <= smallMessage {
		c.buf = buf.Bytes()
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max + 1 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// compareCopy returns the kinds of alteration between the source message
// and the destination's copy (nil: exact).
func compareCopy(a appendedMsg, got *fetchedCopy) []string {
	var kinds []string
	m := a.msg
	if m.InternalDate.Unix() != got.date && !m.InternalDate.IsZero() {
		kinds = append(kinds, AlteredDate)
	}
	if len(missingFlags(a.flags, got.flags)) > 0 {
		kinds = append(kinds, AlteredFlags)
	}
	srcSum := m.SHA256
	if got.sum == srcSum && got.n == m.Size {
		return kinds
	}
	src := readSource(m)
	if src == nil || got.buf == nil {
		if srcSum == "" && src != nil {
			s := sha256.Sum256(src)
			if hex.EncodeToString(s[:]) == got.sum {
				return kinds
			}
		}
		return append(kinds, AlteredSize)
	}
	if bytes.Equal(src, got.buf) {
		return kinds
	}
	return append(kinds, classify(src, got.buf)...)
}

// readSource reads a small message's source bytes again (nil when large
// or unreadable).
func readSource(m Message) []byte {
	if m.Open == nil || m.Size > smallMessage {
		return nil
	}
	rc, err := m.Open()
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, smallMessage+1))
	if err != nil || int64(len(b)) != m.Size {
		return nil
	}
	return b
}

// classify names how dst differs from src: line ends are normalised
// first, then ">From " quoting undone, then header and body compared.
func classify(src, dst []byte) []string {
	var kinds []string
	if lineEnds(src) != lineEnds(dst) {
		kinds = append(kinds, AlteredLineEnds)
	}
	s, d := bytes.TrimRight(crlf(src), "\r\n"), bytes.TrimRight(crlf(dst), "\r\n")
	sh, sb := splitHeader(s)
	dh, db := splitHeader(d)
	if !bytes.Equal(sb, db) {
		if bytes.Equal(sb, unquoteFrom(db)) {
			kinds = append(kinds, AlteredFromQuotes)
		} else {
			kinds = append(kinds, AlteredBody)
		}
	}
	if !bytes.Equal(sh, dh) {
		kinds = append(kinds, AlteredHeader)
	}
	if len(kinds) == 0 {
		kinds = append(kinds, AlteredBody) // differs in a way not told apart
	}
	sort.Strings(kinds)
	return kinds
}

// lineEnds sums up a message's line ends: its bare LFs and how it ends.
func lineEnds(b []byte) [2]int {
	bare := bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n"))
	return [2]int{bare, len(b) - len(bytes.TrimRight(b, "\r\n"))}
}

// crlf makes every bare LF CRLF.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// splitHeader splits a CRLF message at its first empty line.
func splitHeader(b []byte) (hdr, body []byte) {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[:i+2], b[i+4:]
	}
	return b, nil
}

// unquoteFrom removes one '>' from body lines that are ">From " (or
// ">>From ", ...), undoing mbox quoting.
func unquoteFrom(b []byte) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, l := range lines {
		t := bytes.TrimLeft(l, ">")
		if len(t) < len(l) && bytes.HasPrefix(t, []byte("From ")) {
			lines[i] = l[1:]
		}
	}
	return bytes.Join(lines, nil)
}

// verifyLine is the verification's part of a report line.
func (fr *FolderReport) verifyLine() string {
	if !fr.Verified {
		return ""
	}
	kinds := map[string]int{}
	for _, a := range fr.Altered {
		for _, k := range a.Kinds {
			kinds[k]++
		}
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(ks)
	s := fmt.Sprintf("verified: %d exact, %d altered", fr.Exact, len(fr.Altered))
	if len(ks) > 0 {
		s += " (" + strings.Join(ks, ", ") + ")"
	}
	s += fmt.Sprintf(", %d refused", len(fr.Refused))
	if fr.Unverified > 0 {
		s += fmt.Sprintf(", %d not found to verify", fr.Unverified)
	}
	return s
}
