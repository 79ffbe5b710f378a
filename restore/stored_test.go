package restore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// dropping is a session that stores flags as UW IMAP does: an APPEND into
// the folder the session has selected loses its keywords, and so does an
// APPEND of keywords the folder does not know yet ("OK Unknown flag"):
// here every APPEND drops its keywords. A STORE sets them, except
// "$Never", which the folder never keeps.
type dropping struct {
	imapserver.Session
	selected       string
	intoSelected   *atomic.Int32
	appendsWithKws *atomic.Int32
}

func (s *dropping) Select(mb string, o *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := s.Session.Select(mb, o)
	if err == nil {
		s.selected = mb
	}
	return d, err
}

func (s *dropping) Unselect() error {
	s.selected = ""
	return s.Session.Unselect()
}

func (s *dropping) Append(mb string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	if mb == s.selected {
		s.intoSelected.Add(1)
	}
	o2 := *o
	o2.Flags = slices.DeleteFunc(slices.Clone(o.Flags), func(f imap.Flag) bool { return !strings.HasPrefix(string(f), `\`) })
	if len(o2.Flags) != len(o.Flags) {
		s.appendsWithKws.Add(1)
	}
	return s.Session.Append(mb, r, &o2)
}

func (s *dropping) Store(w *imapserver.FetchWriter, set imap.NumSet, f *imap.StoreFlags, o *imap.StoreOptions) error {
	f2 := *f
	f2.Flags = slices.DeleteFunc(slices.Clone(f.Flags), func(fl imap.Flag) bool { return fl == "$Never" })
	return s.Session.Store(w, set, &f2, o)
}

// TestFlagsThatArrive: keywords a server drops on APPEND are set again
// with STORE after it, batched per folder, and the report names what the
// folder still did not keep; no APPEND goes into the folder its connection
// has selected.
func TestFlagsThatArrive(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%v", raw), func(t *testing.T) {
			var into, withKws atomic.Int32
			addr := memServer(t, memCaps, func(s imapserver.Session) imapserver.Session {
				return &dropping{Session: s, intoSelected: &into, appendsWithKws: &withKws}
			})
			src := newSource()
			date := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)
			never := 0
			for _, f := range []string{"INBOX", "Work"} {
				src.folder(f, '/', "")
				for i := 0; i < 12; i++ {
					flags := []string{`\Seen`}
					switch i % 4 {
					case 1:
						flags = append(flags, "$Work", "Custom_kw")
					case 2:
						flags = append(flags, "$Never", "$Work")
						never++
					case 3:
						flags = append(flags, `\Flagged`, "$Label1")
					}
					src.add(f, []byte(fmt.Sprintf("Message-ID: <%s%d@arrive>\r\nSubject: %d\r\n\r\nbody\r\n", f, i, i)), flags, date.Add(time.Duration(i)*time.Minute))
				}
			}
			tg := target{addr, "dst", raw}
			// A first message in INBOX makes the engine select it before
			// appending.
			c := imaptest.Dial(t, addr, "dst", pass)
			imaptest.Append(t, c, "INBOX", nil, date, []byte("Subject: already there\r\n\r\nx\r\n"))
			c.Close()
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{})
			noErr(t, "restore", st, err)
			if n := into.Load(); n != 0 {
				t.Errorf("%d APPENDs into the selected folder", n)
			}
			if withKws.Load() == 0 {
				t.Fatal("no APPEND carried keywords: the test tests nothing")
			}
			want := src.want(imaptest.MemIMAP, func(f string) bool { return f == "$Never" })
			got := tg.snapshot(t)
			got["INBOX"] = slices.DeleteFunc(got["INBOX"], func(m imaptest.Msg) bool { return m.Size < 30 })
			if d := imaptest.Diff(want, got, nil); d != "" {
				t.Fatalf("destination:\n%s", d)
			}
			if len(st.Reports) != 2 {
				t.Fatalf("reports: %+v", st.Reports)
			}
			lost := 0
			for _, r := range st.Reports {
				// 9 of 12 carry keywords; the 3 with $Never keep their $Work
				// but not $Never: not repaired in full.
				if r.Appended != 12 || r.Checked != 12 || r.FlagsRepaired != 6 || r.SizeDiffers != 0 || r.Vanished != 0 {
					t.Errorf("report %+v", r)
				}
				lost += r.FlagsLost["$Never"]
				if !strings.Contains(r.String(), "flags not kept: $Never (3 messages)") {
					t.Errorf("report line %q", r.String())
				}
			}
			if lost != never {
				t.Errorf("$Never lost on %d messages, want %d", lost, never)
			}
		})
	}
}
