package export_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/export"
	"github.com/mailkeep/mailkeep/internal/archivetest"
	"github.com/mailkeep/mailkeep/internal/gmaillabels"
)

// gmsg is a message of a test Gmail archive: src and its labels.
type gmsg struct {
	src
	labels []string
}

const (
	gAll   = archivetest.GmailAll
	gSpam  = archivetest.GmailSpam
	gTrash = archivetest.GmailTrash
)

// gmailMessages is a Gmail account as the Gmail backup stores it: All
// Mail, Spam and Trash, each message once with its labels.
func gmailMessages() []gmsg {
	var out []gmsg
	uids := map[string]uint32{}
	add := func(folder string, flags []string, labels ...string) {
		uids[folder]++
		i := len(out)
		body := []byte(fmt.Sprintf("Message-ID: <g%d@export>\r\nSubject: labels %d\r\n\r\nbody %d\r\nFrom here\r\n", i, i, i))
		out = append(out, gmsg{src{folder, uids[folder], body, flags, time.Date(2014, 5, 6, 7, i, 0, 0, time.UTC)}, labels})
	}
	add(gAll, []string{`\Seen`}, `\Inbox`, "Work", "Famille/Enfants é")
	add(gAll, []string{`\Seen`}, `\Sent`, `\Important`, "Work")
	add(gAll, nil, `\Starred`)
	add(gAll, []string{`\Seen`, "$Forwarded"})
	add(gAll, nil, `\Inbox`)
	add(gSpam, nil)
	add(gTrash, []string{`\Seen`}, "Work")
	return out
}

// buildGmail writes msgs into a new archive with their labels, as the
// Gmail backup records them (catalog.SetGmail).
func buildGmail(t *testing.T, format archive.Format, msgs []gmsg) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	ms := make([]archivetest.GmailMessage, len(msgs))
	for i, m := range msgs {
		ms[i] = archivetest.GmailMessage{Folder: m.folder, UID: m.uid, Flags: m.flags, Date: m.date, Labels: m.labels, Body: m.body}
	}
	archivetest.GmailArchive(t, dir, archive.Options{Format: format, FrameSize: 16 << 10}, 42, ms)
	return dir
}

// gmailPaths is where each format puts the folders of a Gmail export.
var gmailPaths = map[export.Format]map[string]string{
	export.Mbox: {"INBOX": "INBOX.mbox", gAll: "[Gmail]/All Mail.mbox", gSpam: "[Gmail]/Spam.mbox", gTrash: "[Gmail]/Trash.mbox",
		"[Gmail]/Sent Mail": "[Gmail]/Sent Mail.mbox", "Work": "Work.mbox", "Famille/Enfants é": "Famille/Enfants é.mbox"},
	export.Maildir: {"INBOX": ".", gAll: ".[Gmail].All Mail", gSpam: ".[Gmail].Spam", gTrash: ".[Gmail].Trash",
		"[Gmail]/Sent Mail": ".[Gmail].Sent Mail", "Work": ".Work", "Famille/Enfants é": ".Famille.Enfants é"},
	export.EML: {"INBOX": "INBOX", gAll: "[Gmail]/All Mail", gSpam: "[Gmail]/Spam", gTrash: "[Gmail]/Trash",
		"[Gmail]/Sent Mail": "[Gmail]/Sent Mail", "Work": "Work", "Famille/Enfants é": "Famille/Enfants é"},
}

// TestGmailLabels exports a Gmail archive with labels as folders (a copy
// of each message in a folder per label, \Starred as \Flagged, All Mail
// keeping the messages without a user label) and as keywords (each
// message once, its labels as $label- keywords: dovecot-keywords in
// Maildir, X-Keywords in mbox), and reads the result back with Python's
// mailbox module.
func TestGmailLabels(t *testing.T) {
	msgs := gmailMessages()
	dir := buildGmail(t, archive.MboxZstd, msgs)
	// Folders: each output folder's messages in archive order.
	var folders []src
	order := []string{gAll, gSpam, gTrash, "INBOX", "Work", "Famille/Enfants é", "[Gmail]/Sent Mail"}
	for _, out := range order {
		for _, m := range msgs {
			s := m.src
			s.flags = gmaillabels.Flags(m.flags, m.labels)
			in := false
			switch {
			case out == m.folder:
				in = m.folder != gAll || !gmaillabels.HasUser(m.labels)
			case m.folder == gAll:
				for _, l := range m.labels {
					if name, _, ok := gmaillabels.Folder(l); ok && name == out {
						in = true
					}
				}
			}
			if in {
				s.folder = out
				folders = append(folders, s)
			}
		}
	}
	var keywords []src
	for _, m := range msgs {
		s := m.src
		s.flags = gmaillabels.WithKeywords(m.flags, m.labels)
		keywords = append(keywords, s)
	}
	for _, format := range []export.Format{export.Mbox, export.Maildir, export.EML} {
		for _, tc := range []struct {
			mode string
			want []src
		}{{"", folders}, {"keywords", keywords}} {
			t.Run(fmt.Sprintf("%s/%s", format, tc.mode), func(t *testing.T) {
				to := filepath.Join(t.TempDir(), "out")
				st, err := runExport(t, dir, to, export.Options{Format: format, Labels: tc.mode})
				if err != nil || st.Skipped != 0 {
					t.Fatalf("export: %+v %v", st, err)
				}
				if st.Messages != len(tc.want) {
					t.Errorf("exported %d messages, want %d", st.Messages, len(tc.want))
				}
				checkAt(t, format, to, tc.want, gmailPaths[format])
				if tc.mode == "keywords" && format != export.EML {
					file := map[export.Format]string{export.Mbox: "[Gmail]/All Mail.mbox", export.Maildir: ".[Gmail].All Mail/dovecot-keywords"}[format]
					b, err := os.ReadFile(filepath.Join(to, file))
					if err != nil || !strings.Contains(string(b), "$label-Famille/Enfants+20+C3+A9") || !strings.Contains(string(b), "$label-+5CInbox") {
						t.Errorf("%s: no label keywords: %v\n%s", file, err, b)
					}
				}
			})
		}
	}
	// A selection names label folders too.
	to := filepath.Join(t.TempDir(), "work")
	st, err := runExport(t, dir, to, export.Options{Format: export.EML, Folders: []string{"Work"}})
	if err != nil || st.Folders != 1 || st.Messages != 2 {
		t.Fatalf("--folder Work: %+v %v", st, err)
	}
}
