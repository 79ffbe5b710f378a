package crossserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// checkRestore asserts what is correct today in every direction: the
// restore ran to the end (exit 0, outcome ok, all 17 messages appended,
// nothing refused) and every message arrived with its exact bytes,
// INTERNALDATE and flags, keywords compared without regard to case (mox
// stores keywords in lower case, $Forwarded, $Junk, $NotJunk, $Phishing and
// $MDNSent excepted: a server's choice that IMAP allows, since flags are
// case-insensitive; it is logged by report). When folders is set, every
// message is also in the folder of the same name relative to the personal
// namespace.
func checkRestore(t *testing.T, outs []outcome, r result, sum restoreSummary, folders bool) {
	t.Helper()
	if r.code != 0 || sum.Outcome != "ok" || sum.Appended != len(seedCorpus()) || len(sum.Failures) != 0 {
		t.Errorf("restore: exit %d, summary %+v\n%s", r.code, sum, r.stderr)
	}
	if len(outs) != len(seedCorpus()) {
		t.Errorf("compared %d messages, the corpus has %d", len(outs), len(seedCorpus()))
	}
	for _, o := range outs {
		if o.lost {
			t.Errorf("%s", o)
			continue
		}
		for _, k := range o.kinds {
			switch {
			case strings.HasPrefix(k, "keyword case "):
			case strings.HasPrefix(k, "folder "):
				if folders {
					t.Errorf("%s UID %d (%s): %s", o.folder, o.uid, o.sub, k)
				}
			default:
				t.Errorf("%s UID %d (%s): %s", o.folder, o.uid, o.sub, k)
			}
		}
	}
}

func checkMoxArrival(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	checkRestore(t, outs, r, sum, true)
}

func checkCycle(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	checkRestore(t, outs, r, sum, true)
}

func checkMoxToDovecot(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	checkRestore(t, outs, r, sum, true)
	// Nothing at all changes on the way from mox to Dovecot.
	if f := count(outs); f.exact != len(outs) {
		t.Errorf("mox -> dovecot: %d of %d messages exact, want all", f.exact, len(outs))
	}
}

// checkDotNamespace: INBOX.Work.Projects.2024 from a Cyrus-like source
// lands in mox's Work/Projects/2024 (issue 12, "Namespace prefix kept").
func checkDotNamespace(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	// Restore maps the source's "INBOX." namespace onto mox's "": every
	// message lands in its folder relative to the namespace.
	checkRestore(t, outs, r, sum, true)
}

// checkMoxToDotDovecot: restore maps the source's "" namespace onto the
// destination's "INBOX." one (Work/Projects/2024 -> INBOX.Work.Projects.2024)
// and everything arrives exact.
func checkMoxToDotDovecot(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	checkRestore(t, outs, r, sum, true)
	if f := count(outs); f.exact != len(outs) {
		t.Errorf("%d of %d messages exact, want all", f.exact, len(outs))
	}
}

// checkNasty pins what mox does with awkward folder names, and that restore
// says so:
//   - mox v0.0.15 cannot parse a backslash escaped in a quoted string
//     ("Back\\slash"): it answers BAD to the CREATE. Restore goes on with
//     the other folders, exits 3 ("partial") and names the folder; the one
//     message in it is not restored.
//   - mox spells INBOX's children "Inbox/...": INBOX/Child arrives as
//     Inbox/Child (the same folder to mox, another name to a byte compare).
//
// Every other message arrives exact in its folder.
func checkNasty(t *testing.T, outs []outcome, r result, sum restoreSummary) {
	t.Helper()
	if r.code != 3 || sum.Outcome != "partial" || len(sum.Failures) != 1 ||
		!strings.HasPrefix(sum.Failures[0], `folder "Back\\slash": CREATE "Back\\slash": imap: BAD `) {
		t.Errorf("restore: exit %d, %+v, want exit 3, partial, one failure for folder Back\\slash\n%s", r.code, sum, r.stderr)
	}
	for _, o := range outs {
		want := "exact"
		switch o.folder {
		case `Back\slash`:
			want = "lost"
		case "INBOX/Child":
			want = `folder "Inbox/Child" instead of "INBOX/Child"`
		}
		if got := strings.TrimPrefix(o.String(), fmt.Sprintf("%s UID %d (%s): ", o.folder, o.uid, o.sub)); got != want {
			t.Errorf("%s UID %d: %s, want %s", o.folder, o.uid, got, want)
		}
	}
	if len(outs) != len(imaptest.NastyFolders('/')) {
		t.Errorf("compared %d messages, want %d", len(outs), len(imaptest.NastyFolders('/')))
	}
}
