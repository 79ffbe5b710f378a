package crossserver

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/memimap"
	"github.com/mailkeep/mailkeep/internal/quirkimap"
)

const qUser, qPass = "q", "q-Pa55word"

// quirkSeed is the small source account of the quirk tests, on memimap
// (which, unlike Dovecot, keeps a future INTERNALDATE).
var quirkSeed = []struct {
	folder string
	flags  []string
	date   time.Time
	body   string
}{
	{"INBOX", []string{`\Seen`, "$label1", "junk"}, time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC),
		"From: a@example.org\r\nSubject: keywords\r\nMessage-ID: <kw@x>\r\n\r\nbody\r\n"},
	{"INBOX", nil, time.Date(2021, 1, 3, 3, 4, 5, 0, time.UTC),
		"From: J\xc3\xb6rg <j@example.org>\r\nSubject: Gr\xc3\xb6\xc3\x9fe\r\nMessage-ID: <8bit@x>\r\n\r\nK\xc3\xb6ln\r\n"},
	{"INBOX", []string{`\Flagged`}, time.Date(2021, 1, 4, 3, 4, 5, 0, time.UTC),
		"From: a@example.org\r\nSubject: no final line end\r\nMessage-ID: <noeol@x>\r\n\r\nlast line"},
	{"INBOX", nil, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC),
		"From: a@example.org\r\nSubject: from the future\r\nMessage-ID: <future@x>\r\n\r\nbody\r\n"},
	{"Work", []string{"$label1"}, time.Date(2021, 1, 5, 3, 4, 5, 0, time.UTC),
		"From: a@example.org\r\nSubject: refuse me\r\nX-Refuse: policy violation\r\nMessage-ID: <refuse@x>\r\n\r\nbody\r\n"},
	{"Work", []string{`\Answered`, "project-x"}, time.Date(2021, 1, 6, 3, 4, 5, 0, time.UTC),
		"From: a@example.org\r\nSubject: work keyword\r\nMessage-ID: <work@x>\r\n\r\nbody\r\n"},
}

// quirkArchive backs up the quirk seed from memimap and returns the archive
// and the source snapshot.
func quirkArchive(t *testing.T) (string, map[string][]imaptest.Msg) {
	t.Helper()
	src := memimap.Start(t, qUser, qPass)
	c := imaptest.Dial(t, src.Addr, qUser, qPass)
	for _, m := range quirkSeed {
		imaptest.Append(t, c, m.folder, m.flags, m.date, []byte(m.body))
	}
	snap := imaptest.Snapshot(t, c, true)
	arch := filepath.Join(t.TempDir(), "src")
	endpoint{url: "imap://" + qUser + "@" + src.Addr, password: qPass, extra: []string{"--tls", "none"}}.backup(t, arch)
	return arch, snap
}

// TestRestoreOntoQuirks restores the same archive onto quirkimap with one
// behaviour at a time (with --verify) and pins, per behaviour, what
// arrives and what restore reports: keywords the server dropped are
// repaired by STORE, every alteration the server made is named with its
// kind, refusals are named by folder and UID.
func TestRestoreOntoQuirks(t *testing.T) {
	arch, src := quirkArchive(t)
	clock := time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)
	dotNS := func(f string) string {
		if f == "INBOX" {
			return f
		}
		return "INBOX." + strings.ReplaceAll(f, "/", ".")
	}
	refused := `^folder "Work": message UID 1: APPEND to "Work" refused: imap: NO \[CANNOT\] policy violation$`
	tests := []struct {
		name string
		opt  quirkimap.Options
		// prefill puts an unrelated message in the destination's INBOX
		// first, so that restore has to look before it appends.
		prefill bool
		dst     func(string) string
		// altered lists every message that does not arrive exact, as
		// outcome.String() gives it: the server's doing, whatever restore
		// reports.
		altered []string
		// verified: the kinds of alteration restore --verify names.
		verified []string
		// today*: what restore reports.
		todayExit            int
		todayOutcome         string
		todayKeywordsDropped int
		todayFailures        []string // regular expressions, one per failure
	}{
		{name: "plain", todayOutcome: "ok"},
		// Restore appends on a connection that has nothing selected, so
		// UW's drop on the selected folder does not bite.
		{name: "uw-selected", opt: quirkimap.Options{DropKeywordsOnSelected: true}, todayOutcome: "ok"},
		{name: "uw-selected-prefilled", opt: quirkimap.Options{DropKeywordsOnSelected: true}, prefill: true, todayOutcome: "ok"},
		// UW's "OK Unknown flag": the keywords are set again by STORE
		// after the APPEND and arrive.
		{name: "uw-unknown-flag", opt: quirkimap.Options{UnknownKeywords: true}, todayOutcome: "ok"},
		// Server alterations: the bytes arrive changed (nothing a client
		// can do), and --verify names each with its kind.
		{name: "cyrus-8bit-header", opt: quirkimap.Options{EightBitHeaders: true}, altered: []string{
			`INBOX UID 2 (Größe): 6 header bytes rewritten ("From: Jörg <j@example.org>" -> "From: JXXrg <j@example.org>")`,
		}, verified: []string{"message UID 2 altered: header bytes"}, todayOutcome: "ok"},
		{name: "courier-final-crlf", opt: quirkimap.Options{AddFinalCRLF: true}, altered: []string{
			`INBOX UID 3 (no final line end): final CRLF added`,
		}, verified: []string{"message UID 3 altered: line ends"}, todayOutcome: "ok"},
		{name: "dovecot-future-date", opt: quirkimap.Options{FutureDateNow: true, Now: func() time.Time { return clock }}, altered: []string{
			`INBOX UID 4 (from the future): INTERNALDATE 2030-06-01T12:00:00Z -> 2026-01-15T09:30:00Z`,
		}, verified: []string{"message UID 4 altered: date"}, todayOutcome: "ok"},
		// The refusal is reported (exit 3, partial), named by folder and
		// UID.
		{name: "refuse-one", opt: quirkimap.Options{RefuseHeader: "X-Refuse"}, altered: []string{
			`Work UID 1 (refuse me): lost`,
		}, todayExit: 3, todayOutcome: "partial", todayFailures: []string{refused}},
		// Source namespace "" with '/', destination "INBOX." with '.':
		// Work lands in INBOX.Work, as it should.
		{name: "dot-namespace", opt: quirkimap.Options{DotNamespace: true}, dst: dotNS, todayOutcome: "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := quirkimap.Start(t, qUser, qPass, tc.opt)
			c := imaptest.Dial(t, q.Addr, qUser, qPass)
			if tc.prefill {
				imaptest.Append(t, c, "INBOX", nil, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), []byte("From: x@example.org\r\nSubject: already there\r\nMessage-ID: <there@x>\r\n\r\nx\r\n"))
			}
			e := endpoint{url: "imap://" + qUser + "@" + q.Addr, password: qPass, extra: []string{"--tls", "none"}}
			r, sum := e.restore(t, arch, "--verify")
			t.Logf("restore: exit %d, %+v\nstderr: %s", r.code, sum, strings.TrimSpace(r.stderr))
			mapName := tc.dst
			if mapName == nil {
				mapName = identity
			}
			got := imaptest.Snapshot(t, c, true)
			if tc.prefill {
				got["INBOX"] = got["INBOX"][1:]
			}
			outs := compare(src, nonEmpty(got), mapName)
			report(t, "memimap -> quirkimap "+tc.name, outs)
			var altered []string
			for _, o := range outs {
				if !o.exact() {
					altered = append(altered, o.String())
				}
			}
			if !slices.Equal(altered, tc.altered) {
				t.Errorf("not exact on the destination:\n got %q\nwant %q", altered, tc.altered)
			}
			for _, w := range tc.verified {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("restore --verify does not report %q:\n%s", w, r.stderr)
				}
			}
			if len(outs) != len(quirkSeed) {
				t.Errorf("compared %d messages, want %d", len(outs), len(quirkSeed))
			}
			failuresOK := len(sum.Failures) == len(tc.todayFailures)
			for i := 0; failuresOK && i < len(sum.Failures); i++ {
				failuresOK = regexp.MustCompile(tc.todayFailures[i]).MatchString(sum.Failures[i])
			}
			if r.code != tc.todayExit || sum.Outcome != tc.todayOutcome || sum.KeywordsDropped != tc.todayKeywordsDropped || !failuresOK {
				t.Errorf("restore reports exit %d, outcome %q, keywords_dropped %d, failures %q; pinned: exit %d, %q, %d, %q",
					r.code, sum.Outcome, sum.KeywordsDropped, sum.Failures, tc.todayExit, tc.todayOutcome, tc.todayKeywordsDropped, tc.todayFailures)
			}
		})
	}
}
