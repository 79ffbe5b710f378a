package imaptest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
)

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

type server struct {
	name   string
	kind   imaptest.Kind
	delim  rune
	prefix string
	start  func(t *testing.T) (addr string)
}

var servers = []server{
	{"dovecot", imaptest.Dovecot, '/', "", func(t *testing.T) string {
		s := dovecottest.Start(t, nil)
		s.AddUser(t, "u", "p")
		return s.IMAPAddr
	}},
	{"dovecot-dot", imaptest.Dovecot, '.', "INBOX.", func(t *testing.T) string {
		s := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
		s.AddUser(t, "u", "p")
		return s.IMAPAddr
	}},
	{"memimap", imaptest.MemIMAP, memimap.Delim, "", func(t *testing.T) string {
		return memimap.Start(t, "u", "p").Addr
	}},
}

func flagsEqualFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestCorpusRoundTrip appends the corpus to INBOX and every nasty folder and
// checks that a snapshot returns what was appended, up to the documented
// server quirks.
func TestCorpusRoundTrip(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			c := imaptest.Dial(t, srv.start(t), "u", "p")
			folders := []string{"INBOX"}
			for _, f := range imaptest.NastyFolders(srv.delim) {
				folders = append(folders, srv.prefix+f)
			}
			if testing.Short() {
				folders = folders[:6]
			}
			corpus := imaptest.Corpus()
			for _, f := range folders {
				imaptest.Create(t, c, f)
			}
			for _, f := range folders {
				for _, m := range corpus {
					if uid := imaptest.Append(t, c, f, m.Flags, m.Date, m.Body); uid == 0 {
						t.Fatalf("no UID from APPEND to %q", f)
					}
				}
			}
			snap := imaptest.Snapshot(t, c, true)
			if len(snap) != len(folders) {
				t.Errorf("snapshot has %d folders, want %d: %q", len(snap), len(folders), keys(snap))
			}
			for _, f := range folders {
				got, ok := snap[f]
				if !ok {
					t.Errorf("folder %q missing from snapshot; have %q", f, keys(snap))
					continue
				}
				if len(got) != len(corpus) {
					t.Errorf("folder %q: %d messages, want %d", f, len(got), len(corpus))
					continue
				}
				for i, m := range corpus {
					g := got[i]
					want := imaptest.WantBody(srv.kind, m.Body)
					if g.SHA256 != hashOf(want) || !bytes.Equal(g.Body, want) {
						t.Errorf("%q %s: got body %q, want %q", f, m.Name, trunc(g.Body), trunc(want))
					}
					wantSize := int64(len(want))
					if srv.kind == imaptest.MemIMAP {
						wantSize = int64(len(m.Body))
					}
					if g.Size != wantSize {
						t.Errorf("%q %s: size %d, want %d", f, m.Name, g.Size, wantSize)
					}
					if !g.InternalDate.Equal(m.Date) || g.InternalDate.Location() != time.UTC {
						t.Errorf("%q %s: date %v, want %v in UTC", f, m.Name, g.InternalDate, m.Date)
					}
					wantFlags := append([]string{}, m.Flags...)
					sortStrings(wantFlags)
					if !flagsEqualFold(g.Flags, wantFlags) {
						t.Errorf("%q %s: flags %q, want %q", f, m.Name, g.Flags, wantFlags)
					}
					if i > 0 && g.UID <= got[i-1].UID {
						t.Errorf("%q: UIDs not ascending: %d after %d", f, g.UID, got[i-1].UID)
					}
				}
			}
			// Without bodies: same hashes, no bodies kept.
			lean := imaptest.Snapshot(t, c, false)
			if d := imaptest.Diff(snap, lean, nil); d != "" {
				t.Errorf("snapshot without bodies differs:\n%s", d)
			}
			for f, msgs := range lean {
				for _, m := range msgs {
					if m.Body != nil {
						t.Fatalf("%q UID %d: body kept although not asked for", f, m.UID)
					}
				}
			}
		})
	}
}

// TestWantBodyQuirks pins down which corpus messages each server alters, so
// that a change of server behaviour shows up here.
func TestWantBodyQuirks(t *testing.T) {
	altered := map[imaptest.Kind][]string{
		imaptest.Dovecot: {"bare-lf", "mixed-eol"},
		imaptest.MemIMAP: {"bare-lf", "from-envelope-line", "headers-only-no-eol", "mixed-eol"},
	}
	for kind, want := range altered {
		var got []string
		for _, m := range imaptest.Corpus() {
			if !bytes.Equal(imaptest.WantBody(kind, m.Body), m.Body) {
				got = append(got, m.Name)
			}
		}
		sortStrings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s alters %q, want %q", kind, got, want)
		}
	}
	if b := imaptest.WantBody(imaptest.MemIMAP, []byte("From x Sat Jan  3 01:05:34 1996\r\nSubject: a\r\n\r\nb\r\n")); len(b) != 0 {
		t.Errorf("memimap envelope-line message = %q, want empty", b)
	}
}

// TestCrossServerDiff appends the same messages to Dovecot (with the INBOX.
// namespace) and memimap and compares the snapshots through a name mapping.
func TestCrossServerDiff(t *testing.T) {
	t.Parallel()
	dv := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	dv.AddUser(t, "u", "p")
	dc := imaptest.Dial(t, dv.IMAPAddr, "u", "p")
	mc := imaptest.Dial(t, memimap.Start(t, "u", "p").Addr, "u", "p")

	var same []imaptest.NamedMsg
	for _, m := range imaptest.Corpus() {
		if bytes.Equal(imaptest.WantBody(imaptest.Dovecot, m.Body), imaptest.WantBody(imaptest.MemIMAP, m.Body)) {
			same = append(same, m)
		}
	}
	for _, f := range []string{"Archiv", "Archiv/Größe"} {
		for _, m := range same {
			imaptest.Append(t, mc, f, m.Flags, m.Date, m.Body)
			imaptest.Append(t, dc, "INBOX."+strings.ReplaceAll(f, "/", "."), m.Flags, m.Date, m.Body)
		}
	}
	date := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	imaptest.Append(t, mc, "INBOX", nil, date, same[0].Body)
	imaptest.Append(t, dc, "INBOX", nil, date, same[0].Body)
	mapName := func(s string) string {
		if s == "INBOX" {
			return s
		}
		return "INBOX." + strings.ReplaceAll(s, "/", ".")
	}
	ms, ds := imaptest.Snapshot(t, mc, false), imaptest.Snapshot(t, dc, false)
	if d := imaptest.Diff(ms, ds, mapName); d != "" {
		t.Errorf("memimap and Dovecot differ:\n%s", d)
	}
	// A changed flag on one side must show up.
	if _, err := dc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var one imap.UIDSet
	one.AddNum(imap.UID(ds["INBOX"][0].UID))
	if err := dc.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	ds2 := imaptest.Snapshot(t, dc, false)
	d := imaptest.Diff(ms, ds2, mapName)
	if !strings.Contains(d, `folder "INBOX": 1 missing: `) || !strings.Contains(d, `folder "INBOX": 1 unexpected: `) || !strings.Contains(d, `flags=[\flagged]`) || strings.Count(d, "\n") != 1 {
		t.Errorf("Diff after STORE \\Flagged = %q, want one missing and one unexpected INBOX message", d)
	}
	if d := imaptest.Diff(ms, ds, nil); !strings.Contains(d, `folder "Archiv" (from "Archiv") missing`) || !strings.Contains(d, `folder "INBOX.Archiv" unexpected`) {
		t.Errorf("Diff without mapping = %q, want missing and unexpected folders", d)
	}
}

// TestAppendRecreatesFolder checks that Append copes with a folder deleted
// after it was created once, and that Create accepts existing folders.
func TestAppendRecreatesFolder(t *testing.T) {
	t.Parallel()
	c := imaptest.Dial(t, memimap.Start(t, "u", "p").Addr, "u", "p")
	body := imaptest.Corpus()[0].Body
	imaptest.Append(t, c, "X", nil, time.Time{}, body)
	imaptest.Create(t, c, "X")
	imaptest.Create(t, c, "INBOX")
	if err := c.Delete("X").Wait(); err != nil {
		t.Fatal(err)
	}
	uid := imaptest.Append(t, c, "X", nil, time.Time{}, body)
	snap := imaptest.Snapshot(t, c, false)
	if n := len(snap["X"]); n != 1 || snap["X"][0].UID != uid {
		t.Errorf("X holds %+v, want the one message with UID %d", snap["X"], uid)
	}
}

func TestDialTLS(t *testing.T) {
	t.Parallel()
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "u", "p")
	c := imaptest.DialTLS(t, dv.IMAPSAddr, dv.CACertFile, "u", "p")
	uid := imaptest.Append(t, c, "INBOX", nil, time.Time{}, imaptest.Corpus()[0].Body)
	if snap := imaptest.Snapshot(t, c, false); len(snap["INBOX"]) != 1 || snap["INBOX"][0].UID != uid {
		t.Errorf("INBOX over TLS = %+v, want the appended message", snap["INBOX"])
	}
}

// TestSnapshotSkipsNonSelectable creates a child without its parent on
// Dovecot, where the parent is listed as \NonExistent.
func TestSnapshotSkipsNonSelectable(t *testing.T) {
	t.Parallel()
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "u", "p")
	c := imaptest.Dial(t, dv.IMAPAddr, "u", "p")
	imaptest.Create(t, c, "Parent/Child")
	snap := imaptest.Snapshot(t, c, false)
	if _, ok := snap["Parent"]; ok {
		t.Errorf("snapshot lists the non-selectable parent: %q", keys(snap))
	}
	if msgs, ok := snap["Parent/Child"]; !ok || len(msgs) != 0 {
		t.Errorf("snapshot = %v, want empty Parent/Child", snap)
	}
}

// TestBigMessageAppend streams a large BigMessage to both servers without
// holding it and checks the hash the snapshot computes.
func TestBigMessageAppend(t *testing.T) {
	n := 20 << 20
	if testing.Short() {
		n = 2 << 20
	}
	h := sha256.New()
	if _, err := io.Copy(h, imaptest.BigMessage(n)); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	for _, srv := range []server{servers[0], servers[2]} {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			c := imaptest.Dial(t, srv.start(t), "u", "p")
			date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			imaptest.AppendReader(t, c, "Big", []string{`\Seen`}, date, imaptest.BigMessage(n), int64(n))
			snap := imaptest.Snapshot(t, c, false)
			got := snap["Big"]
			if len(got) != 1 || got[0].SHA256 != want || got[0].Size != int64(n) || !got[0].InternalDate.Equal(date) {
				t.Errorf("Big = %+v, want one message of %d bytes with sha256 %s", got, n, want)
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func keys(m map[string][]imaptest.Msg) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sortStrings(k)
	return k
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}
