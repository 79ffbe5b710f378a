package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/restore"
)

// altering is a session that stores messages as the servers of issue 12
// do, chosen by a word in the message: ALTER-HEADER replaces 8-bit header
// bytes with 'X' (Cyrus), ALTER-CRLF adds a final CRLF (Courier),
// ALTER-FROM quotes body "From " lines (UW), ALTER-DATE stores now as
// INTERNALDATE (Dovecot, for a date in the future), REFUSE-ME is refused.
type altering struct{ imapserver.Session }

func (s altering) Append(mb string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	o2 := *o
	hdr, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	switch {
	case bytes.Contains(b, []byte("REFUSE-ME")):
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "message refused by policy"}
	case bytes.Contains(b, []byte("ALTER-HEADER")):
		h := slices.Clone(hdr)
		for i, c := range h {
			if c >= 0x80 {
				h[i] = 'X'
			}
		}
		b = slices.Concat(h, []byte("\r\n\r\n"), body)
	case bytes.Contains(b, []byte("ALTER-CRLF")):
		b = append(b, "\r\n"...)
	case bytes.Contains(b, []byte("ALTER-FROM")):
		b = slices.Concat(hdr, []byte("\r\n\r\n"), bytes.ReplaceAll(body, []byte("\r\nFrom "), []byte("\r\n>From ")))
	case bytes.Contains(b, []byte("ALTER-DATE")):
		o2.Time = time.Now()
	}
	return s.Session.Append(mb, &sizedReader{bytes.NewReader(b)}, &o2)
}

// TestVerify: --verify fetches every appended message back and says per
// folder which arrived exact, which altered and how, which were refused,
// naming each; on go-imap's server scripted as the servers of issue 12,
// and on Dovecot, which stores bare LF line ends as CRLF.
func TestVerify(t *testing.T) {
	date := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	msg := func(i int, word, extra string) []byte {
		return []byte(fmt.Sprintf("Message-ID: <v%d@verify>\r\nSubject: %s %s\r\n\r\nbody %d\r\nFrom the start\r\n", i, word, extra, i))
	}
	t.Run("memimap", func(t *testing.T) {
		for _, uidplus := range []bool{true, false} {
			t.Run(fmt.Sprintf("uidplus=%v", uidplus), func(t *testing.T) {
				caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralPlus: {}}
				if uidplus {
					caps[imap.CapUIDPlus] = struct{}{}
				}
				addr := memServer(t, caps, func(s imapserver.Session) imapserver.Session { return altering{s} })
				src := newSource()
				src.folder("INBOX", '/', "")
				words := []string{"plain", "ALTER-HEADER", "ALTER-CRLF", "ALTER-FROM", "ALTER-DATE", "REFUSE-ME", "plain", "plain"}
				for i, w := range words {
					extra := ""
					if w == "ALTER-HEADER" {
						extra = "Größe"
					}
					src.add("INBOX", msg(i, w, extra), []string{`\Seen`, "$Kw"}, date)
				}
				st, err := target{addr, "dst", true}.run(context.Background(), src, newProgress(), restore.Options{Verify: true})
				if err != nil || len(st.Failures) != 1 {
					t.Fatalf("restore: %v %v", err, st.Failures)
				}
				if len(st.Reports) != 1 {
					t.Fatalf("reports %+v", st.Reports)
				}
				r := st.Reports[0]
				want := []restore.Alteration{
					{Message: "INBOX#1", Kinds: []string{restore.AlteredHeader}},
					{Message: "INBOX#2", Kinds: []string{restore.AlteredLineEnds}},
					{Message: "INBOX#3", Kinds: []string{restore.AlteredFromQuotes}},
					{Message: "INBOX#4", Kinds: []string{restore.AlteredDate}},
				}
				if !r.Verified || r.Exact != 3 || r.Unverified != 0 || fmt.Sprint(r.Altered) != fmt.Sprint(want) {
					t.Errorf("report %+v; want 3 exact and altered %v", r, want)
				}
				if len(r.Refused) != 1 || r.Refused[0].Message != "INBOX#5" || !strings.Contains(r.Refused[0].Text, "message refused by policy") {
					t.Errorf("refused %+v", r.Refused)
				}
				line := r.String()
				for _, w := range []string{"verified: 3 exact, 4 altered (From quoting: 1, date: 1, header bytes: 1, line ends: 1), 1 refused", "message INBOX#5 refused: NO message refused by policy", "message INBOX#1 altered: header bytes"} {
					if !strings.Contains(line, w) {
						t.Errorf("report line %q lacks %q", line, w)
					}
				}
			})
		}
	})
	t.Run("dovecot", func(t *testing.T) {
		dv := dovecottest.Start(t, nil)
		addUsers(t, dv, "dst")
		src := newSource()
		src.folder("INBOX", '/', "")
		src.add("INBOX", msg(1, "plain", ""), []string{`\Seen`}, date)
		src.add("INBOX", []byte("Message-ID: <lf@verify>\nSubject: bare LF\n\nbody\n"), nil, date)
		src.add("INBOX", msg(3, "future", ""), nil, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		st, err := target{dv.IMAPAddr, "dst", false}.run(context.Background(), src, newProgress(), restore.Options{Verify: true})
		noErr(t, "restore", st, err)
		r := st.Reports[0]
		want := "[{INBOX#1 [line ends]} {INBOX#2 [date]}]"
		if r.Exact != 1 || fmt.Sprint(r.Altered) != want || r.SizeDiffers != 1 || r.Checked != 3 || r.Vanished != 0 {
			t.Errorf("report %+v; want altered %s", r, want)
		}
	})
}
