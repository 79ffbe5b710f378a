package quirkimap_test

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/quirkimap"
)

const user, pass = "u", "p-W0rd"

var date = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func msg(subject string) []byte {
	return []byte("From: a@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@x>\r\n\r\nbody\r\n")
}

// only returns the single message of folder.
func only(t *testing.T, snap map[string][]imaptest.Msg, folder string) imaptest.Msg {
	t.Helper()
	if len(snap[folder]) != 1 {
		t.Fatalf("%s holds %d messages, want 1 (folders %v)", folder, len(snap[folder]), snap)
	}
	return snap[folder][0]
}

// rawAppend appends body to folder over a raw connection and returns the
// tagged response line of the APPEND.
func rawAppend(t *testing.T, addr, folder string, flags []string, body []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	read := func(tag string) string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if strings.HasPrefix(line, tag+" ") {
				return strings.TrimRight(line, "\r\n")
			}
		}
	}
	read("*")
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	if l := read("a"); !strings.HasPrefix(l, "a OK") {
		t.Fatal(l)
	}
	fmt.Fprintf(c, "b APPEND %s (%s) {%d+}\r\n%s\r\n", folder, strings.Join(flags, " "), len(body), body)
	return read("b")
}

// TestDropKeywordsOnSelected: keywords vanish on APPEND into the folder this
// connection has selected; other connections and folders keep them, and a
// STORE afterwards works.
func TestDropKeywordsOnSelected(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{DropKeywordsOnSelected: true})
	c := imaptest.Dial(t, s.Addr, user, pass)
	imaptest.Create(t, c, "Other")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uid := imaptest.Append(t, c, "INBOX", []string{`\Seen`, "$Label1", "Junk"}, date, msg("selected"))
	imaptest.Append(t, c, "Other", []string{`\Seen`, "$Label1"}, date, msg("other"))
	c2 := imaptest.Dial(t, s.Addr, user, pass)
	snap := imaptest.Snapshot(t, c2, false)
	if got := only(t, snap, "INBOX").Flags; !slices.Equal(got, []string{`\Seen`}) {
		t.Errorf("selected folder: flags %v, want only \\Seen", got)
	}
	if got := only(t, snap, "Other").Flags; !slices.Equal(got, []string{"$label1", `\Seen`}) {
		t.Errorf("other folder: flags %v, want $label1 \\Seen", got)
	}
	// STORE keeps keywords.
	var set imap.UIDSet
	set.AddNum(imap.UID(uid))
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$Label1"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if got := only(t, imaptest.Snapshot(t, c2, false), "INBOX").Flags; !slices.Equal(got, []string{"$label1", `\Seen`}) {
		t.Errorf("after STORE: flags %v", got)
	}
}

// TestUnknownKeywords: a keyword the folder does not know is not stored and
// the APPEND answers OK "Unknown flag: ..."; after a STORE taught it the
// folder, APPEND keeps it.
func TestUnknownKeywords(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{UnknownKeywords: true})
	line := rawAppend(t, s.Addr, "INBOX", []string{`\Seen`, "Junk"}, msg("first"))
	if !strings.HasPrefix(line, "b OK [APPENDUID ") || !strings.HasSuffix(line, "] Unknown flag: Junk") {
		t.Errorf("APPEND answered %q, want OK [APPENDUID ...] Unknown flag: Junk", line)
	}
	c := imaptest.Dial(t, s.Addr, user, pass)
	if got := only(t, imaptest.Snapshot(t, c, false), "INBOX").Flags; !slices.Equal(got, []string{`\Seen`}) {
		t.Errorf("flags %v, want only \\Seen", got)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var set imap.UIDSet
	set.AddNum(1)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"Junk"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	line = rawAppend(t, s.Addr, "INBOX", []string{"Junk"}, msg("second"))
	if !strings.HasSuffix(line, "] APPEND completed") {
		t.Errorf("second APPEND answered %q", line)
	}
	snap := imaptest.Snapshot(t, c, false)
	for i, m := range snap["INBOX"] {
		if !slices.Contains(m.Flags, "junk") {
			t.Errorf("message %d: flags %v, want junk", i+1, m.Flags)
		}
	}
}

// TestEightBitHeaders: 8-bit header bytes become 'X', the body keeps them.
func TestEightBitHeaders(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{EightBitHeaders: true})
	c := imaptest.Dial(t, s.Addr, user, pass)
	body := []byte("From: J\xc3\xb6rg <j@example.org>\r\nSubject: Gr\xc3\xb6\xc3\x9fe\r\n\r\nK\xc3\xb6ln\r\n")
	imaptest.Append(t, c, "INBOX", nil, date, body)
	got := only(t, imaptest.Snapshot(t, c, true), "INBOX").Body
	want := "From: JXXrg <j@example.org>\r\nSubject: GrXXXXe\r\n\r\nK\xc3\xb6ln\r\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestAddFinalCRLF: a message without a final line end gets CRLF; one with
// it is unchanged.
func TestAddFinalCRLF(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{AddFinalCRLF: true})
	c := imaptest.Dial(t, s.Addr, user, pass)
	noEOL := []byte("From: a@example.org\r\nSubject: x\r\n\r\nno line end")
	imaptest.Append(t, c, "INBOX", nil, date, noEOL)
	imaptest.Append(t, c, "Other", nil, date, msg("with"))
	snap := imaptest.Snapshot(t, c, true)
	if got := only(t, snap, "INBOX"); string(got.Body) != string(noEOL)+"\r\n" || got.Size != int64(len(noEOL)+2) {
		t.Errorf("got %q (size %d)", got.Body, got.Size)
	}
	if got := only(t, snap, "Other").Body; string(got) != string(msg("with")) {
		t.Errorf("a message ending in CRLF changed: %q", got)
	}
}

// TestFutureDateNow: an INTERNALDATE after the server's clock becomes that
// clock; a past one stays.
func TestFutureDateNow(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := quirkimap.Start(t, user, pass, quirkimap.Options{FutureDateNow: true, Now: func() time.Time { return now }})
	c := imaptest.Dial(t, s.Addr, user, pass)
	imaptest.Append(t, c, "INBOX", nil, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), msg("future"))
	imaptest.Append(t, c, "Other", nil, date, msg("past"))
	snap := imaptest.Snapshot(t, c, false)
	if got := only(t, snap, "INBOX").InternalDate; !got.Equal(now) {
		t.Errorf("future date stored as %v, want %v", got, now)
	}
	if got := only(t, snap, "Other").InternalDate; !got.Equal(date) {
		t.Errorf("past date stored as %v, want %v", got, date)
	}
}

// TestRefuseHeader: the marked message gets NO [CANNOT] with the header's
// value; others are stored.
func TestRefuseHeader(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{RefuseHeader: "X-Refuse"})
	line := rawAppend(t, s.Addr, "INBOX", nil, []byte("From: a@example.org\r\nX-Refuse: virus found\r\n\r\nbody\r\n"))
	if line != "b NO [CANNOT] virus found" {
		t.Errorf("APPEND answered %q", line)
	}
	line = rawAppend(t, s.Addr, "INBOX", nil, msg("fine"))
	if !strings.HasPrefix(line, "b OK") {
		t.Errorf("unmarked APPEND answered %q", line)
	}
	c := imaptest.Dial(t, s.Addr, user, pass)
	if got := only(t, imaptest.Snapshot(t, c, true), "INBOX").Body; string(got) != string(msg("fine")) {
		t.Errorf("INBOX holds %q", got)
	}
}

// TestDotNamespace: NAMESPACE (("INBOX." ".")), LIST with '.', CREATE
// outside INBOX. refused.
func TestDotNamespace(t *testing.T) {
	s := quirkimap.Start(t, user, pass, quirkimap.Options{DotNamespace: true})
	c := imaptest.Dial(t, s.Addr, user, pass)
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "INBOX." || ns.Personal[0].Delim != '.' {
		t.Errorf("personal namespace %+v", ns.Personal)
	}
	if err := c.Create("Sent", nil).Wait(); err == nil {
		t.Error("CREATE Sent outside INBOX. succeeded")
	}
	imaptest.Append(t, c, "INBOX.Work.Sub", []string{`\Seen`}, date, msg("deep"))
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		if l.Delim != '.' {
			t.Errorf("%q has delimiter %q", l.Mailbox, l.Delim)
		}
		names = append(names, l.Mailbox)
	}
	if !slices.Equal(names, []string{"INBOX", "INBOX.Work.Sub"}) {
		t.Errorf("LIST: %v", names)
	}
	if list, _ := c.List("", "INBOX.%", nil).Collect(); len(list) != 0 {
		t.Errorf("LIST INBOX.%% matched %v (INBOX.Work does not exist)", list)
	}
	only(t, imaptest.Snapshot(t, c, false), "INBOX.Work.Sub")
}
