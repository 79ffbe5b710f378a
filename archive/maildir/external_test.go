package maildir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// need returns the path of an external program, skipping the test when it
// is missing, unless CI is set, where that is a failure.
func need(t *testing.T, prog string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (CI is set, so this is a failure)", prog)
	}
	t.Skipf("%s not found", prog)
	return ""
}

// readerScript prints, as JSON, what Python's mailbox.Maildir reads.
const readerScript = `
import base64, json, mailbox, sys
md = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = {}
for key in md.keys():
    msg = md.get_message(key)
    out[key] = {"bytes": base64.b64encode(md.get_bytes(key)).decode(),
                "flags": msg.get_flags(), "date": msg.get_date(),
                "subdir": msg.get_subdir()}
json.dump(out, sys.stdout)
`

// TestPythonReadsMaildir reads the folder back with an independent
// implementation, Python's mailbox.Maildir.
func TestPythonReadsMaildir(t *testing.T) {
	py := need(t, "python3", "/root/.pyenv/shims/python3")
	dir := t.TempDir()
	deliverSamples(t, dir)
	cmd := exec.Command(py, "-c", readerScript, dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var got map[string]struct {
		Bytes  []byte
		Flags  string
		Date   float64
		Subdir string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python3 output: %v", err)
	}
	if len(got) != len(samples) {
		t.Errorf("python3 read %d messages, want %d", len(got), len(samples))
	}
	for _, s := range samples {
		m, ok := got[s.key]
		if !ok {
			t.Errorf("python3 did not find %s", s.key)
			continue
		}
		if !bytes.Equal(m.Bytes, s.body) {
			t.Errorf("%s: python3 read %d bytes that differ from the %d written", s.key, len(m.Bytes), len(s.body))
		}
		if m.Flags != FlagLetters(s.flags) || m.Subdir != "cur" {
			t.Errorf("%s: python3 flags %q in %s, want %q in cur", s.key, m.Flags, m.Subdir, FlagLetters(s.flags))
		}
		if int64(m.Date) != s.date.Unix() {
			t.Errorf("%s: python3 date %v, want %v", s.key, m.Date, s.date.Unix())
		}
	}
}

// TestDovecotReadsMaildir checks that Dovecot (doveadm, 2.3 syntax) reads
// the folder: every message's bytes, flags and received date.
func TestDovecotReadsMaildir(t *testing.T) {
	doveadm := need(t, "doveadm")
	root := t.TempDir()
	dir := filepath.Join(root, "Maildir")
	deliverSamples(t, dir)

	// Dovecot refuses mail access as root: run it as nobody then.
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534
		// t.TempDir's parent is 0700: let nobody through to root.
		if err := os.Chmod(filepath.Dir(root), 0o711); err != nil {
			t.Fatal(err)
		}
		err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, "dovecot.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, `mail_location = maildir:%s
base_dir = %s/run
state_dir = %s/state
log_path = /dev/stderr
ssl = no
mail_uid = %d
mail_gid = %d
first_valid_uid = 1
first_valid_gid = 1
`, dir, root, root, uid, gid), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(doveadm, append([]string{"-c", conf}, args...)...)
		cmd.Env = append(os.Environ(), "USER=mailkeep", "HOME="+root, "TZ=UTC")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("doveadm %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	// "search" prints "<mailbox guid> <uid>" per message.
	uids := strings.Fields(string(run("search", "mailbox", "INBOX", "all")))
	if len(uids) != 2*len(samples) {
		t.Fatalf("doveadm found %d messages, want %d", len(uids)/2, len(samples))
	}
	head := regexp.MustCompile(`(?s)^flags: ([^\n]*)\ndate\.received: ([^\n]*)\ntext:\n`)
	found := map[string]bool{}
	for i := 1; i < len(uids); i += 2 {
		out := run("fetch", "flags date.received text", "mailbox", "INBOX", "uid", uids[i])
		m := head.FindSubmatch(out)
		if m == nil {
			t.Fatalf("doveadm fetch uid %s: unexpected output %.200q", uids[i], out)
		}
		body := out[len(m[0]):]
		for _, s := range samples {
			if !bytes.Equal(body, s.body) {
				continue
			}
			found[s.key] = true
			var flags []string
			for f := range strings.FieldsSeq(string(m[1])) {
				if f != `\Recent` {
					flags = append(flags, f)
				}
			}
			// Dovecot reads the info letters D F R S T; it ignores P,
			// which mailkeep writes for $Forwarded (the catalog keeps it).
			want := strings.ReplaceAll(FlagLetters(s.flags), "P", "")
			if FlagLetters(flags) != want {
				t.Errorf("%s: Dovecot flags %q, want %q", s.key, m[1], want)
			}
			date := s.date.UTC().Format(time.DateTime)
			if string(m[2]) != date {
				t.Errorf("%s: Dovecot date.received %s, want %s", s.key, m[2], date)
			}
		}
	}
	for _, s := range samples {
		if !found[s.key] {
			t.Errorf("Dovecot returned no message with the bytes of %s (%s bytes)", s.key, strconv.Itoa(len(s.body)))
		}
	}
}
