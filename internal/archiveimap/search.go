package archiveimap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/mailkeep/mailkeep/archive/textindex"
)

// indexFields maps the IMAP header searches the full-text index answers
// to its query fields.
var indexFields = map[string]string{"subject": "subject", "from": "from", "to": "to", "cc": "cc", "bcc": "bcc"}

// Search answers from the catalog (sequence and UID sets, flags,
// INTERNALDATE, size) and, for TEXT, BODY and SUBJECT/FROM/TO/CC/BCC,
// from the archive's full-text index when it has one (word and phrase
// matches, as "mailkeep search"; BODY then reads only the index's hits to
// leave out matches in the header). Without an index, and for other header
// fields and SENTBEFORE/SENTSINCE, the messages' headers (and for TEXT and
// BODY their text parts) are read, one message at a time.
func (ss *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	snap := ss.sel
	if snap == nil {
		return nil, noSelection()
	}
	sr := &searcher{s: ss.s, ss: ss, snap: snap, hits: map[string]map[string]bool{}}
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i := range snap.msgs {
		e := &snap.msgs[i]
		seq := uint32(i + 1)
		ok, err := sr.match(seq, e, criteria, &msgCache{})
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		num := seq
		if kind == imapserver.NumKindUID {
			num = uint32(e.uid)
		}
		seqs.AddNum(seq)
		uids.AddNum(e.uid)
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return &data, nil
}

type searcher struct {
	s    *Server
	ss   *session
	snap *snapshot
	hits map[string]map[string]bool // "field\x00value" → message keys
}

type msgCache struct {
	header *textproto.Header
	text   map[string]bool
}

func msgKey(uidValidity, uid uint32, uidl string) string {
	if uidl != "" {
		return "l:" + uidl
	}
	return fmt.Sprintf("u:%d/%d", uidValidity, uid)
}

func (sr *searcher) match(seq uint32, e *entry, c *imap.SearchCriteria, mc *msgCache) (bool, error) {
	for _, set := range c.SeqNum {
		st := staticSeq(set, uint32(len(sr.snap.msgs)))
		if !st.Contains(seq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		max := uint32(0)
		if n := len(sr.snap.msgs); n > 0 {
			max = uint32(sr.snap.msgs[n-1].uid)
		}
		st := staticUID(set, max)
		if !st.Contains(e.uid) {
			return false, nil
		}
	}
	if !matchDate(e.m.InternalDate, c.Since, c.Before) {
		return false, nil
	}
	for _, f := range c.Flag {
		if !hasFlag(e.flags, f) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(e.flags, f) {
			return false, nil
		}
	}
	if c.Larger != 0 && e.m.Size <= c.Larger {
		return false, nil
	}
	if c.Smaller != 0 && e.m.Size >= c.Smaller {
		return false, nil
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		h, err := sr.header(e, mc)
		if err != nil {
			return false, err
		}
		t, err := (&mail.Header{Header: gomessage.Header{Header: *h}}).Date()
		if err != nil || !matchDate(t, c.SentSince, c.SentBefore) {
			return false, nil
		}
	}
	for _, hf := range c.Header {
		key := strings.ToLower(hf.Key)
		if f, ok := indexFields[key]; ok && sr.snap.mb.ar.ix != nil && hf.Value != "" {
			ok, err := sr.indexed(e, f, hf.Value)
			if err != nil || !ok {
				return false, err
			}
			continue
		}
		h, err := sr.header(e, mc)
		if err != nil {
			return false, err
		}
		mh := gomessage.Header{Header: *h}
		if !matchHeaderFields(mh.FieldsByKey(hf.Key), hf.Value) {
			return false, nil
		}
	}
	for i, list := range [][]string{c.Text, c.Body} {
		isText := i == 0
		for _, v := range list {
			if v == "" {
				continue
			}
			var ok bool
			var err error
			if sr.snap.mb.ar.ix != nil {
				// The index has no body-only field: BODY takes its
				// hits as candidates and checks their bodies.
				ok, err = sr.indexed(e, "", v)
				if ok && err == nil && !isText {
					ok, err = sr.scan(e, v, false, mc)
				}
			} else {
				ok, err = sr.scan(e, v, isText, mc)
			}
			if err != nil || !ok {
				return false, err
			}
		}
	}
	for i := range c.Not {
		ok, err := sr.match(seq, e, &c.Not[i], mc)
		if err != nil || ok {
			return false, err
		}
	}
	for _, or := range c.Or {
		a, err := sr.match(seq, e, &or[0], mc)
		if err != nil {
			return false, err
		}
		if a {
			continue
		}
		b, err := sr.match(seq, e, &or[1], mc)
		if err != nil || !b {
			return false, err
		}
	}
	return true, nil
}

// indexed asks the full-text index once per search and term for the
// folder's messages matching it.
func (sr *searcher) indexed(e *entry, field, value string) (bool, error) {
	k := field + "\x00" + value
	set, ok := sr.hits[k]
	if !ok {
		ar := sr.snap.mb.ar
		q := textindex.And{textindex.Term{Field: field, Value: value}, textindex.Term{Field: "folder", Value: sr.snap.mb.folder}}
		hits, err := ar.ix.Search(context.Background(), filepath.Join(ar.a.Dir, "catalog.db"), q, 0)
		if err != nil {
			return false, fmt.Errorf("archive %s folder %q: %w", ar.a.Dir, sr.snap.mb.folder, err)
		}
		set = make(map[string]bool, len(hits))
		for _, h := range hits {
			set[msgKey(h.UIDValidity, h.UID, h.UIDL)] = true
		}
		sr.hits[k] = set
	}
	m := e.m
	return set[msgKey(m.UIDValidity, m.UID, m.UIDL)], nil
}

func (sr *searcher) header(e *entry, mc *msgCache) (*textproto.Header, error) {
	if mc.header != nil {
		return mc.header, nil
	}
	r := &msgReader{s: sr.s, ss: sr.ss, e: e, snap: sr.snap}
	raw, err := r.getHeader()
	if err != nil {
		return nil, fmt.Errorf("folder %q uid %d: %w", sr.snap.mb.folder, e.m.UID, err)
	}
	h := parseHeader(raw)
	mc.header = &h
	return mc.header, nil
}

// scan looks for v in a message's text parts (and header for TEXT), for
// archives without a full-text index. Messages above the bound are read
// only as far as the bound.
func (sr *searcher) scan(e *entry, v string, withHeader bool, mc *msgCache) (bool, error) {
	k := fmt.Sprintf("%t\x00%s", withHeader, v)
	if ok, done := mc.text[k]; done {
		return ok, nil
	}
	rc, err := sr.ss.open(sr.snap, e.m)
	if err != nil {
		return false, fmt.Errorf("folder %q uid %d: %w", sr.snap.mb.folder, e.m.UID, err)
	}
	defer rc.Close()
	ent, err := gomessage.Read(io.LimitReader(rc, sr.s.cfg.MaxBuffered))
	ok := false
	if ent != nil {
		ok = matchEntity(ent, strings.ToLower(v), withHeader, 0)
	}
	_ = err // a message that does not parse is searched as far as it does
	if mc.text == nil {
		mc.text = map[string]bool{}
	}
	mc.text[k] = ok
	return ok, nil
}

func matchEntity(e *gomessage.Entity, lower string, withHeader bool, depth int) bool {
	if withHeader {
		f := e.Header.Fields()
		for f.Next() {
			if v, err := f.Text(); err == nil && strings.Contains(strings.ToLower(v), lower) {
				return true
			}
		}
	}
	if mr := e.MultipartReader(); mr != nil {
		if depth > 20 {
			return false
		}
		for {
			p, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(p, lower, withHeader, depth+1) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	// Stream the part through a window so that a match across reads is
	// found without holding the part.
	br := bufio.NewReader(e.Body)
	var tail []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		chunk := append(tail, bytes.ToLower(buf[:n])...)
		if bytes.Contains(chunk, []byte(lower)) {
			return true
		}
		if keep := len(lower) - 1; len(chunk) > keep {
			tail = append([]byte(nil), chunk[len(chunk)-keep:]...)
		}
		if err != nil {
			return false
		}
	}
}

func matchHeaderFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

func matchDate(t, since, before time.Time) bool {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && t.Before(since) {
		return false
	}
	if !before.IsZero() && !t.Before(before) {
		return false
	}
	return true
}
