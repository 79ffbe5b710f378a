package crossserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// bin is the mailkeep binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailkeep-cross")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "mailkeep")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mailkeep/mailkeep/cmd/mailkeep").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mailkeep: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// mailkeep runs the binary with MAILKEEP_PASSWORD=password.
func mailkeep(t *testing.T, password string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MAILKEEP_PASSWORD="+password)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = time.Minute
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, so.String(), se.String()}
}

// restoreSummary is the part of restore --json the tests read.
type restoreSummary struct {
	Outcome         string   `json:"outcome"`
	Folders         int      `json:"folders"`
	Created         int      `json:"created_folders"`
	Appended        int      `json:"appended"`
	Skipped         int      `json:"skipped"`
	Damaged         int      `json:"damaged"`
	KeywordsDropped int      `json:"keywords_dropped"`
	Failures        []string `json:"failures"`
	Error           string   `json:"error"`
}

func parseSummary(t *testing.T, r result) restoreSummary {
	t.Helper()
	var s restoreSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("restore --json output: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return s
}

// endpoint is how mailkeep reaches one account.
type endpoint struct {
	url, password string
	extra         []string // --tls none, or --ca-file FILE
}

func (e endpoint) backup(t *testing.T, dir string) {
	t.Helper()
	args := append([]string{"backup", "--imap", e.url, "--archive", dir, "--quiet"}, e.extra...)
	if r := mailkeep(t, e.password, args...); r.code != 0 {
		t.Fatalf("backup of %s: exit %d\n%s%s", e.url, r.code, r.stdout, r.stderr)
	}
}

func (e endpoint) restore(t *testing.T, dir string, more ...string) (result, restoreSummary) {
	t.Helper()
	args := append([]string{"restore", "--imap", e.url, "--archive", dir, "--json"}, e.extra...)
	args = append(args, more...)
	r := mailkeep(t, e.password, args...)
	return r, parseSummary(t, r)
}

// seedMsg is one message of the cross-server corpus.
type seedMsg struct {
	name   string
	folder string // relative to the personal namespace, '/'-separated
	imaptest.NamedMsg
}

// seedFolders are the folders of the corpus, '/'-separated and relative to
// the personal namespace: nested, non-ASCII, '&', quotes, space.
var seedFolders = []string{"INBOX", "Sent", "Work/Projects/2024", "Archiv/Größe", "Tom & Jerry", `Quote "double" x`}

// extraKeywords are added to some messages: a label, Thunderbird's junk
// keywords, a mixed-case custom keyword.
var extraKeywords = [][]string{nil, {"$Label2"}, {"Junk"}, {"NonJunk", "$MDNSent"}, {"Project-X"}}

// seedCorpus is imaptest.Corpus spread over seedFolders, with more keywords.
func seedCorpus() []seedMsg {
	var out []seedMsg
	for i, m := range imaptest.Corpus() {
		m.Flags = append(slices.Clone(m.Flags), extraKeywords[i%len(extraKeywords)]...)
		out = append(out, seedMsg{name: m.Name, folder: seedFolders[i%len(seedFolders)], NamedMsg: m})
	}
	return out
}

// seed appends the corpus; folder names are joined with delim under prefix
// (INBOX itself stays INBOX).
func seed(t *testing.T, c *imapclient.Client, prefix string, delim rune) {
	t.Helper()
	for _, m := range seedCorpus() {
		imaptest.Append(t, c, nsName(m.folder, prefix, delim), m.Flags, m.Date, m.Body)
	}
}

// nsName turns a '/'-separated folder relative to the personal namespace
// into the server's name.
func nsName(rel, prefix string, delim rune) string {
	if rel == "INBOX" {
		return rel
	}
	return prefix + strings.ReplaceAll(rel, "/", string(delim))
}

// outcome is what became of one source message on the destination.
type outcome struct {
	folder string // source folder
	uid    uint32 // source UID
	sub    string // the message's Subject, to name it in reports
	kinds  []string
	lost   bool
}

func (o outcome) exact() bool { return !o.lost && len(o.kinds) == 0 }

func (o outcome) String() string {
	switch {
	case o.lost:
		return fmt.Sprintf("%s UID %d (%s): lost", o.folder, o.uid, o.sub)
	case len(o.kinds) == 0:
		return fmt.Sprintf("%s UID %d (%s): exact", o.folder, o.uid, o.sub)
	}
	return fmt.Sprintf("%s UID %d (%s): %s", o.folder, o.uid, o.sub, strings.Join(o.kinds, "; "))
}

// figures counts outcomes.
type figures struct{ exact, altered, lost int }

func count(outs []outcome) figures {
	var f figures
	for _, o := range outs {
		switch {
		case o.lost:
			f.lost++
		case o.exact():
			f.exact++
		default:
			f.altered++
		}
	}
	return f
}

func subject(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Subject: "); ok {
			return v
		}
	}
	return "?"
}

// normEOL turns every line end into LF, to match a message whose line ends
// a server changed.
func normEOL(b []byte) string {
	return string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
}

// compare matches every message of src (snapshot with bodies) to dst: in the
// folder mapName(folder) first, then anywhere. A message is matched by its
// bytes with line ends normalised; what differs beyond that is listed:
// bytes (line ends), flags (and how), INTERNALDATE, folder.
func compare(src, dst map[string][]imaptest.Msg, mapName func(string) string) []outcome {
	used := map[string]map[int]bool{}
	take := func(folder string, m imaptest.Msg, same func(a, b []byte) bool) (imaptest.Msg, bool) {
		best := -1
		for i, d := range dst[folder] {
			if used[folder][i] || !same(m.Body, d.Body) {
				continue
			}
			if best < 0 || d.SHA256 == m.SHA256 {
				best = i
			}
		}
		if best < 0 {
			return imaptest.Msg{}, false
		}
		if used[folder] == nil {
			used[folder] = map[int]bool{}
		}
		used[folder][best] = true
		return dst[folder][best], true
	}
	var outs []outcome
	for _, f := range sortedKeys(src) {
		want := mapName(f)
		for _, m := range src[f] {
			o := outcome{folder: f, uid: m.UID, sub: subject(m.Body)}
			var d imaptest.Msg
			ok := false
			// Same bytes up to line ends first, then the same Message-ID.
			for _, same := range []func(a, b []byte) bool{sameEOL, sameMessageID} {
				if d, ok = take(want, m, same); ok {
					break
				}
				for _, other := range sortedKeys(dst) {
					if d, ok = take(other, m, same); ok {
						o.kinds = append(o.kinds, fmt.Sprintf("folder %q instead of %q", other, want))
						break
					}
				}
				if ok {
					break
				}
			}
			if !ok {
				o.lost = true
				outs = append(outs, o)
				continue
			}
			if d.SHA256 != m.SHA256 {
				o.kinds = append(o.kinds, bytesDiff(m.Body, d.Body))
			}
			if k := flagDiff(m.Flags, d.Flags); k != "" {
				o.kinds = append(o.kinds, k)
			}
			if !m.InternalDate.Equal(d.InternalDate) {
				o.kinds = append(o.kinds, fmt.Sprintf("INTERNALDATE %s -> %s", m.InternalDate.Format(time.RFC3339), d.InternalDate.Format(time.RFC3339)))
			}
			outs = append(outs, o)
		}
	}
	return outs
}

func sameEOL(a, b []byte) bool { return normEOL(a) == normEOL(b) }

func sameMessageID(a, b []byte) bool {
	id := headerField(a, "Message-ID")
	return id != "" && id == headerField(b, "Message-ID")
}

func headerField(msg []byte, name string) string {
	for _, line := range strings.Split(string(msg), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// splitHeader returns the header section (with the blank line) and the body.
func splitHeader(msg []byte) ([]byte, []byte) {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4], msg[i+4:]
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+2], msg[i+2:]
	}
	return msg, nil
}

// bytesDiff names how the bytes of a message changed from a to b.
func bytesDiff(a, b []byte) string {
	switch {
	case sameEOL(a, b):
		return fmt.Sprintf("line ends changed (%d -> %d bytes)", len(a), len(b))
	case bytes.Equal(append(slices.Clone(a), '\r', '\n'), b):
		return "final CRLF added"
	}
	ha, ba := splitHeader(a)
	hb, bb := splitHeader(b)
	if bytes.Equal(ba, bb) && len(ha) == len(hb) {
		n := 0
		for i := range ha {
			if ha[i] != hb[i] {
				n++
			}
		}
		return fmt.Sprintf("%d header bytes rewritten (%q -> %q)", n, firstDiffLine(ha, hb), firstDiffLine(hb, ha))
	}
	return fmt.Sprintf("bytes changed (%d -> %d bytes)", len(a), len(b))
}

// firstDiffLine returns the first line of a that b does not have.
func firstDiffLine(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i, l := range la {
		if i >= len(lb) || lb[i] != l {
			return strings.TrimRight(l, "\r")
		}
	}
	return ""
}

// flagDiff describes how the flags changed, or returns "".
func flagDiff(a, b []string) string {
	if slices.Equal(a, b) {
		return ""
	}
	lower := func(l []string) []string {
		out := make([]string, len(l))
		for i, f := range l {
			out[i] = strings.ToLower(f)
		}
		sort.Strings(out)
		return out
	}
	if slices.Equal(lower(a), lower(b)) {
		return fmt.Sprintf("keyword case %v -> %v", a, b)
	}
	var lost, added []string
	for _, f := range a {
		if !slices.ContainsFunc(b, func(g string) bool { return strings.EqualFold(f, g) }) {
			lost = append(lost, f)
		}
	}
	for _, f := range b {
		if !slices.ContainsFunc(a, func(g string) bool { return strings.EqualFold(f, g) }) {
			added = append(added, f)
		}
	}
	return fmt.Sprintf("flags %v -> %v (lost %v, added %v)", a, b, lost, added)
}

func sortedKeys(m map[string][]imaptest.Msg) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nonEmpty drops empty folders (mox creates Archive, Drafts, Junk, Sent and
// Trash for every account).
func nonEmpty(snap map[string][]imaptest.Msg) map[string][]imaptest.Msg {
	out := map[string][]imaptest.Msg{}
	for k, v := range snap {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// report logs every outcome and returns the figures.
func report(t *testing.T, direction string, outs []outcome) figures {
	t.Helper()
	f := count(outs)
	t.Logf("%s: %d messages: %d exact, %d altered, %d lost", direction, len(outs), f.exact, f.altered, f.lost)
	for _, o := range outs {
		if !o.exact() {
			t.Logf("  %s", o)
		}
	}
	return f
}
