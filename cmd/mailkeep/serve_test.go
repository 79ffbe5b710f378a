package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/archiveimap"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// serveFolders are the folders the serve tests fill on Dovecot.
var serveFolders = []string{"INBOX", "Work/Größe & \"more\"", "Archive/2014"}

// serveCorpus puts the shared corpus (with flags and keywords) into a few
// folders of a fresh Dovecot account.
func serveCorpus(t *testing.T) (*dovecottest.Server, *imapclient.Client) {
	t.Helper()
	dv := startDovecot(t)
	// Dovecot rereads its user file when its mtime changes: add every
	// user before the first login (TestServeTwoArchives uses bob).
	dv.AddUser(t, "bob", "bob-pass")
	c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
	flagSets := [][]string{{`\Seen`}, nil, {`\Seen`, `\Flagged`}, {`\Answered`, "$Label1"}, {`\Seen`, "Keyword_x"}}
	for i, m := range imaptest.Corpus() {
		imaptest.Append(t, c, serveFolders[i%len(serveFolders)], flagSets[i%len(flagSets)], time.Date(2014, 1, 1+i, 10, 0, i, 0, time.UTC), m.Body)
	}
	return dv, c
}

func backupTo(t *testing.T, dv *dovecottest.Server, dir string, extra ...string) {
	t.Helper()
	args := append([]string{"backup", "--imap", "imap://" + user + "@" + dv.IMAPAddr, "--tls", "none", "--archive", dir, "--quiet"}, extra...)
	if r := mailkeep(t, pwEnv(), args...); r.code != 0 {
		t.Fatalf("backup exit %d: %s", r.code, r.stderr)
	}
}

// startServe runs "mailkeep serve" on a free loopback port and returns
// its address; at cleanup it sends SIGTERM and checks a clean exit 0.
func startServe(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stderr)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "mailkeep serve: listening on ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("serve did not start: %q %v", line, err)
	}
	var rest bytes.Buffer
	copied := make(chan struct{})
	go func() { rest.ReadFrom(br); close(copied) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		<-copied
		if err != nil {
			t.Errorf("serve after SIGTERM: %v (stderr %s)", err, rest.String())
		}
	})
	return strings.TrimSpace(strings.TrimPrefix(line, "mailkeep serve: listening on "))
}

// TestServeMatchesDovecot: every folder and message of a backup, served,
// looks as on Dovecot (UIDs, flags, keywords, INTERNALDATE, size, SHA-256)
// for every archive format, through go-imap's client and Python's imaplib.
func TestServeMatchesDovecot(t *testing.T) {
	dv, c := serveCorpus(t)
	want := imaptest.Snapshot(t, c, false)
	searches := []string{"ALL", "SEEN", "UNSEEN", "FLAGGED", "KEYWORD $Label1", "LARGER 1500", "SMALLER 800",
		"SINCE 5-Jan-2014", "BEFORE 5-Jan-2014", "UID 2:4", "NOT SEEN", "OR FLAGGED ANSWERED", "SUBJECT hello", "FROM alice", "TEXT the"}
	py := func(addr string) string {
		t.Helper()
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.Command("python3", append([]string{"testdata/serve_imaplib.py", host, port, user, pass}, searches...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("imaplib against %s: %v\n%s", addr, err, out)
		}
		return string(out)
	}
	pyWant := py(dv.IMAPAddr)
	for _, format := range []string{"mbox.zst", "mbox.gz", "mbox", "maildir"} {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "arch")
			backupTo(t, dv, dir, "--format", format)
			addr := startServe(t, nil, "--archive", dir)
			sc := imaptest.Dial(t, addr, "anyone", "anything")
			if d := imaptest.Diff(want, imaptest.Snapshot(t, sc, false), nil); d != "" {
				t.Errorf("served archive differs from Dovecot:\n%s", d)
			}
			if got := py(addr); got != pyWant {
				t.Errorf("imaplib: served\n%s\nDovecot\n%s", got, pyWant)
			}
		})
	}
}

// fetchAll fetches items of every message of a folder, by UID.
func fetchAll(t *testing.T, c *imapclient.Client, folder string, opt *imap.FetchOptions) []*imapclient.FetchMessageBuffer {
	t.Helper()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %q: %v", folder, err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, opt).Collect()
	if err != nil {
		t.Fatalf("fetch in %q: %v", folder, err)
	}
	return msgs
}

func bodyKind(bs imap.BodyStructure) string {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		var parts []string
		for _, p := range bs.Children {
			parts = append(parts, bodyKind(p))
		}
		return "multipart/" + strings.ToLower(bs.Subtype) + "(" + strings.Join(parts, ",") + ")"
	case *imap.BodyStructureSinglePart:
		return strings.ToLower(bs.Type + "/" + bs.Subtype)
	}
	return "?"
}

// TestServeFetchSections: BODY[HEADER], BODY[TEXT], part and partial
// sections, ENVELOPE and BODYSTRUCTURE of every message as Dovecot gives
// them.
func TestServeFetchSections(t *testing.T) {
	dv, c := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	sc := imaptest.Dial(t, startServe(t, nil, "--archive", dir), user, "x")
	sections := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, Peek: true},
		{Specifier: imap.PartSpecifierText, Peek: true},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 7, Size: 50}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 100000, Size: 1000}},
		{Specifier: imap.PartSpecifierText, Peek: true, Partial: &imap.SectionPartial{Offset: 5, Size: 30}},
		{Part: []int{1}, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "Message-ID"}, Peek: true},
	}
	opt := &imap.FetchOptions{UID: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: sections}
	n := 0
	for _, folder := range serveFolders {
		want := fetchAll(t, c, folder, opt)
		got := fetchAll(t, sc, folder, opt)
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages served, %d on Dovecot", folder, len(got), len(want))
		}
		for i := range want {
			w, g := want[i], got[i]
			if g.UID != w.UID {
				t.Fatalf("%s: message %d has uid %d, want %d", folder, i+1, g.UID, w.UID)
			}
			for _, s := range sections {
				if wb, gb := w.FindBodySection(s), g.FindBodySection(s); !bytes.Equal(wb, gb) {
					t.Errorf("%s uid %d %s<%v>: served %q, Dovecot %q", folder, w.UID, s.Specifier, s.Partial, clipBytes(gb), clipBytes(wb))
				}
				n++
			}
			if g.Envelope == nil || g.Envelope.Subject != w.Envelope.Subject || g.Envelope.MessageID != w.Envelope.MessageID ||
				fmt.Sprint(g.Envelope.From) != fmt.Sprint(w.Envelope.From) || !g.Envelope.Date.Equal(w.Envelope.Date) {
				t.Errorf("%s uid %d ENVELOPE: served %+v, Dovecot %+v", folder, w.UID, g.Envelope, w.Envelope)
			}
			if bodyKind(g.BodyStructure) != bodyKind(w.BodyStructure) {
				t.Errorf("%s uid %d BODYSTRUCTURE: served %s, Dovecot %s", folder, w.UID, bodyKind(g.BodyStructure), bodyKind(w.BodyStructure))
			}
		}
	}
	t.Logf("%d sections compared", n)
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// TestServeReadOnly: every write answers NO and changes nothing, in the
// session or in the archive.
func TestServeReadOnly(t *testing.T) {
	dv, _ := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	before := mailkeep(t, nil, "ls", "--archive", dir, "--folder", "INBOX")
	sc := imaptest.Dial(t, startServe(t, nil, "--archive", dir), user, "x")
	if _, err := sc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var one imap.UIDSet
	one.AddNum(1)
	refused := map[string]error{
		"STORE":   sc.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted, imap.FlagSeen}}, nil).Close(),
		"COPY":    func() error { _, err := sc.Copy(one, "Archive/2014").Wait(); return err }(),
		"MOVE":    func() error { _, err := sc.Move(one, "Archive/2014").Wait(); return err }(),
		"EXPUNGE": sc.Expunge().Close(),
		"CREATE":  sc.Create("New", nil).Wait(),
		"DELETE":  sc.Delete("Archive/2014").Wait(),
		"RENAME":  sc.Rename("Archive/2014", "Old", nil).Wait(),
		"APPEND": func() error {
			a := sc.Append("INBOX", 3, nil)
			a.Write([]byte("x\r\n"))
			a.Close()
			_, err := a.Wait()
			return err
		}(),
	}
	for cmd, err := range refused {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
			t.Errorf("%s: %v, want NO", cmd, err)
		}
	}
	msgs := fetchAll(t, sc, "INBOX", &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{}}})
	for _, m := range msgs {
		if m.UID == 1 && (slices.Contains(m.Flags, imap.FlagDeleted)) {
			t.Errorf("uid 1 flags after a refused STORE: %v", m.Flags)
		}
	}
	if err := sc.Unselect().Wait(); err != nil {
		t.Errorf("UNSELECT: %v", err)
	}
	sc.Logout().Wait()
	if after := mailkeep(t, nil, "ls", "--archive", dir, "--folder", "INBOX"); after.stdout != before.stdout {
		t.Errorf("archive changed by a client:\n%s\n%s", before.stdout, after.stdout)
	}
	if r := mailkeep(t, nil, "verify", "--archive", dir); r.code != 0 {
		t.Errorf("verify after serving: %d %s", r.code, r.stderr)
	}
}

// TestServeAsOfAndExpunged: --as-of serves the archive as it was; messages
// expunged on the server appear only under Expunged/ with
// --include-expunged.
func TestServeAsOfAndExpunged(t *testing.T) {
	dv, c := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	first := imaptest.Snapshot(t, c, false)
	// On the server: expunge INBOX uid 1, flag uid 2, add a message.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var u1, u2 imap.UIDSet
	u1.AddNum(1)
	u2.AddNum(2)
	if err := c.Store(u1, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(u2, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Unselect().Wait()
	imaptest.Append(t, c, "INBOX", nil, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), []byte("Subject: later\r\n\r\nlater\r\n"))
	now := imaptest.Snapshot(t, c, false)
	backupTo(t, dv, dir)
	// As of the second run's start: what the first run stored.
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := a.Cat.Runs(t.Context())
	a.Close()
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	mid := runs[0].Started
	if runs[1].Started.After(mid) {
		mid = runs[1].Started
	}

	sc := imaptest.Dial(t, startServe(t, nil, "--archive", dir), user, "x")
	if d := imaptest.Diff(now, imaptest.Snapshot(t, sc, false), nil); d != "" {
		t.Errorf("served now differs from the server:\n%s", d)
	}
	sc = imaptest.Dial(t, startServe(t, nil, "--archive", dir, "--as-of", mid.Format(time.RFC3339Nano)), user, "x")
	if d := imaptest.Diff(first, imaptest.Snapshot(t, sc, false), nil); d != "" {
		t.Errorf("served --as-of differs from the server then:\n%s", d)
	}
	sc = imaptest.Dial(t, startServe(t, nil, "--archive", dir, "--include-expunged"), user, "x")
	got := imaptest.Snapshot(t, sc, false)
	exp := got["Expunged/INBOX"]
	delete(got, "Expunged/INBOX")
	for name, msgs := range got {
		if strings.HasPrefix(name, "Expunged/") {
			if len(msgs) != 0 {
				t.Errorf("%s: %d messages, want none", name, len(msgs))
			}
			delete(got, name)
		}
	}
	if d := imaptest.Diff(now, got, nil); d != "" {
		t.Errorf("live folders with --include-expunged differ:\n%s", d)
	}
	if len(exp) != 1 || exp[0].SHA256 != first["INBOX"][0].SHA256 {
		t.Errorf("Expunged/INBOX: %+v, want the expunged %+v", exp, first["INBOX"][0])
	}
}

// TestServeRefusesInsecureListen: beyond loopback, TLS and a password are
// required; LOGIN before STARTTLS is refused when TLS is set.
func TestServeRefusesInsecureListen(t *testing.T) {
	dv, _ := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:0"},
		{"--listen", ":0"},
		{"--listen", "0.0.0.0:0", "--tls-cert", dv.CACertFile, "--tls-key", filepath.Join(dv.Dir, "key.pem")},
	} {
		r := mailkeep(t, nil, append([]string{"serve", "--archive", dir}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--tls-cert, --tls-key and a password") {
			t.Errorf("serve %v: exit %d %q, want a refusal", args, r.code, r.stderr)
		}
	}
	addr := startServe(t, []string{servePasswordEnv + "=" + pass}, "--archive", dir, "--tls-cert", dv.CACertFile, "--tls-key", filepath.Join(dv.Dir, "key.pem"))
	plain, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Login(user, pass).Wait(); err == nil {
		t.Error("LOGIN before STARTTLS accepted")
	}
	pem, err := os.ReadFile(dv.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	for _, pw := range []string{"wrong", pass} {
		tc, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		err = tc.Login(user, pw).Wait()
		if pw == pass && err != nil {
			t.Errorf("LOGIN after STARTTLS: %v", err)
		}
		if pw != pass && err == nil {
			t.Error("a wrong password logged in")
		}
		if err == nil {
			if _, err := tc.Select("INBOX", nil).Wait(); err != nil {
				t.Errorf("select after STARTTLS and LOGIN: %v", err)
			}
		}
		tc.Close()
	}
}

// mbsyncPull pulls every folder of an IMAP server into a new Maildir tree
// with mbsync and returns the tree and how long it took.
func mbsyncPull(t *testing.T, addr, password string) (string, time.Duration) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	base := t.TempDir()
	local := filepath.Join(base, "mail") + "/"
	conf := fmt.Sprintf(`IMAPAccount acct
Host %s
Port %s
User %s
Pass %s
TLSType None
AuthMechs LOGIN

IMAPStore far
Account acct

MaildirStore near
Path %s
Inbox %sINBOX
SubFolders Verbatim

Channel pull
Far :far:
Near :near:
Patterns *
Create Near
Sync Pull
SyncState *
`, host, port, user, password, local, local)
	if strings.HasPrefix(mbsyncVersion(t), "1.4") {
		conf = strings.Replace(conf, "TLSType None", "SSLType None", 1)
	}
	if err := os.Mkdir(local, 0o700); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(base, "mbsyncrc")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command("mbsync", "-q", "-c", cf, "-a").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("mbsync from %s: %v\n%s", addr, err, out)
	}
	return local, took
}

func mbsyncVersion(t *testing.T) string {
	out, err := exec.Command("mbsync", "--version").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mbsync (isync) is not installed: %v", err)
		}
		t.Skipf("mbsync (isync) is not installed (scripts/install-test-deps): %v", err)
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return v
}

var tuidRE = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

// maildirContents lists a Maildir tree pulled by mbsync: per folder, the
// messages' SHA-256 and Maildir flag letters, sorted.
func maildirContents(t *testing.T, root string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		sub := filepath.Base(filepath.Dir(p))
		if sub != "cur" && sub != "new" {
			return nil
		}
		folder, _ := filepath.Rel(root, filepath.Dir(filepath.Dir(p)))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// mbsync stores with LF line ends and adds its own random
		// X-TUID field: drop that field; both pulls change line ends alike.
		b = tuidRE.ReplaceAll(b, nil)
		flags := ""
		if _, f, ok := strings.Cut(d.Name(), ":2,"); ok {
			flags = f
		}
		got[folder] = append(got[folder], fmt.Sprintf("%x %s", sha256.Sum256(b), flags))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		slices.Sort(v)
	}
	return got
}

// TestServeMbsync: mbsync pulls the whole served archive into a Maildir,
// every message byte-exact with its flags, as it pulls it from Dovecot; it
// logs both times (the target: serve within 2x of Dovecot).
func TestServeMbsync(t *testing.T) {
	mbsyncVersion(t)
	dv, c := serveCorpus(t)
	// A corpus big enough to time: 1,000 more messages of 1 to 40 KB.
	for i := range 1000 {
		var b bytes.Buffer
		b.ReadFrom(imaptest.BigMessage(1000 + i*397%40000))
		flags := [][]string{{`\Seen`}, nil, {`\Seen`, `\Flagged`}, {`\Answered`}}[i%4]
		imaptest.Append(t, c, serveFolders[i%len(serveFolders)], flags, time.Date(2015, 1, 1, 0, 0, i, 0, time.UTC), b.Bytes())
	}
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	addr := startServe(t, nil, "--archive", dir)

	fromDovecot, tDovecot := mbsyncPull(t, dv.IMAPAddr, pass)
	fromServe, tServe := mbsyncPull(t, addr, "anything")
	want, got := maildirContents(t, fromDovecot), maildirContents(t, fromServe)
	n := 0
	for folder, msgs := range want {
		n += len(msgs)
		if !slices.Equal(msgs, got[folder]) {
			t.Errorf("%s: mbsync from serve got %d messages, from Dovecot %d, or they differ in bytes or flags", folder, len(got[folder]), len(msgs))
			for i := range min(len(msgs), len(got[folder])) {
				if msgs[i] != got[folder][i] {
					t.Logf("first difference: from serve %s, from Dovecot %s", got[folder][i], msgs[i])
					break
				}
			}
		}
	}
	if len(got) != len(want) || n < 1000 {
		t.Errorf("folders: from serve %d, from Dovecot %d; %d messages", len(got), len(want), n)
	}
	t.Logf("mbsync pull of %d messages: Dovecot %v, mailkeep serve %v (%.2fx)", n, tDovecot.Round(time.Millisecond), tServe.Round(time.Millisecond), float64(tServe)/float64(tDovecot))
}

// TestServeTwoArchives: the configured accounts appear as top-level
// folders; a POP3 archive is served with stable synthetic UIDs.
func TestServeTwoArchives(t *testing.T) {
	dv, c := serveCorpus(t)
	bc := imaptest.Dial(t, dv.IMAPAddr, "bob", "bob-pass")
	for i, m := range imaptest.Corpus()[:5] {
		imaptest.Append(t, bc, "INBOX", nil, time.Date(2019, 1, 1, 0, 0, i, 0, time.UTC), m.Body)
	}
	wantAlice, wantBob := imaptest.Snapshot(t, c, false), imaptest.Snapshot(t, bc, false)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "alice.pw"), []byte(pass+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "bob.pw"), []byte("bob-pass\n"), 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`archive_root = %q

[[account]]
name = "alice"
imap = "imap://alice@%s"
tls = "none"
password_file = "alice.pw"

[[account]]
name = "bob"
pop3 = "pop3://bob@%s"
tls = "none"
password_file = "bob.pw"
format = "maildir"
`, filepath.Join(dir, "archives"), dv.IMAPAddr, dv.POP3Addr)), 0o600)
	if r := mailkeep(t, nil, "backup", "--config", cfg, "--quiet"); r.code != 0 {
		t.Fatalf("backup: %d %s", r.code, r.stderr)
	}
	bobView := func() (uint32, []imaptest.Msg) {
		sc := imaptest.Dial(t, startServe(t, nil, "--config", cfg), user, "x")
		got := imaptest.Snapshot(t, sc, false)
		if d := imaptest.Diff(wantAlice, got, func(s string) string { return "alice/" + s }); !strings.HasPrefix(d, `folder "bob/INBOX" unexpected`) {
			t.Errorf("alice's folders:\n%s", d)
		}
		st, err := sc.Status("bob/INBOX", &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		list, _ := sc.List("", "%", nil).Collect()
		if len(list) != 2 {
			t.Errorf("top level: %v, want alice and bob", list)
		}
		return st.UIDValidity, got["bob/INBOX"]
	}
	v1, bob1 := bobView()
	v2, bob2 := bobView()
	if v1 == 0 || v1 != v2 || len(bob1) != 5 || fmt.Sprint(bob1) != fmt.Sprint(bob2) {
		t.Errorf("POP3 archive served unstably: uidvalidity %d then %d, %v then %v", v1, v2, bob1, bob2)
	}
	var want, got []string
	for _, m := range wantBob["INBOX"] {
		want = append(want, m.SHA256)
	}
	for _, m := range bob1 {
		got = append(got, m.SHA256)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("bob's POP3 archive: served %v, server has %v", got, want)
	}
}

// TestServeIndexedSearchAndBackupMeanwhile: with index.db, text searches
// come from the full-text index and agree with Dovecot's for whole words;
// many clients at once; a backup runs while serve is up (no lock taken)
// and what it committed shows at the next SELECT.
func TestServeIndexedSearchAndBackupMeanwhile(t *testing.T) {
	dv, c := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	if r := mailkeep(t, nil, "index", "--archive", dir); r.code != 0 {
		t.Fatalf("index: %d %s", r.code, r.stderr)
	}
	addr := startServe(t, nil, "--archive", dir)
	criteria := []*imap.SearchCriteria{
		{Text: []string{"escaped"}},
		{Body: []string{"line"}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "lines"}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "alice"}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "mailkeep.test"}}},
		{Not: []imap.SearchCriteria{{Text: []string{"escaped"}}}, Flag: []imap.Flag{imap.FlagSeen}},
	}
	uidSearch := func(cl *imapclient.Client, folder string, crit *imap.SearchCriteria) ([]imap.UID, error) {
		if _, err := cl.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return nil, err
		}
		d, err := cl.UIDSearch(crit, nil).Wait()
		if err != nil {
			return nil, fmt.Errorf("search %+v in %s: %w", crit, folder, err)
		}
		return d.AllUIDs(), nil
	}
	var want [][]imap.UID
	for _, f := range serveFolders {
		for _, crit := range criteria {
			uids, err := uidSearch(c, f, crit)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, uids)
		}
	}
	// Eight clients at once, each searching every folder.
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			sc, err := imapclient.DialInsecure(addr, nil)
			if err == nil {
				err = sc.Login(user, "x").Wait()
			}
			if err != nil {
				errs <- err.Error()
				return
			}
			defer sc.Close()
			i := 0
			for _, f := range serveFolders {
				for _, crit := range criteria {
					got, err := uidSearch(sc, f, crit)
					if err != nil || fmt.Sprint(got) != fmt.Sprint(want[i]) {
						errs <- fmt.Sprintf("%s %+v: served %v (%v), Dovecot %v", f, *crit, got, err, want[i])
						return
					}
					i++
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}

	// A backup while serve runs; a session that selected before it keeps
	// its snapshot, a new SELECT sees the new message.
	sc := imaptest.Dial(t, addr, user, "x")
	old, err := sc.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	imaptest.Append(t, c, "INBOX", nil, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), []byte("Subject: new\r\n\r\nnew\r\n"))
	backupTo(t, dv, dir)
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := sc.Fetch(all, &imap.FetchOptions{UID: true}).Collect()
	if err != nil || uint32(len(msgs)) != old.NumMessages {
		t.Errorf("old session after a backup: %d messages, %v; want its snapshot of %d", len(msgs), err, old.NumMessages)
	}
	now, err := sc.Select("INBOX", nil).Wait()
	if err != nil || now.NumMessages != old.NumMessages+1 {
		t.Errorf("new SELECT after a backup: %+v %v, want %d messages", now, err, old.NumMessages+1)
	}
}

// TestServeMemoryBound: with a 4 KB bound, a 300 KB message still streams
// whole and in parts (BODY[], partial, BODY[TEXT], BODYSTRUCTURE), while a
// part section, which needs the message in hand, answers NO.
func TestServeMemoryBound(t *testing.T) {
	dv, c := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	want := imaptest.Snapshot(t, c, true)
	srv, err := archiveimap.New(t.Context(), archiveimap.Config{Archives: []archiveimap.Source{{Dir: dir}}, MaxBuffered: 4096, MaxHeader: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	}()
	sc := imaptest.Dial(t, ln.Addr().String(), user, "x")
	var big imaptest.Msg
	var folder string
	for f, msgs := range want {
		for _, m := range msgs {
			if m.Size > 100000 {
				big, folder = m, f
			}
		}
	}
	if big.Size == 0 {
		t.Fatal("no large message in the corpus")
	}
	if _, err := sc.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var uid imap.UIDSet
	uid.AddNum(imap.UID(big.UID))
	whole := &imap.FetchItemBodySection{Peek: true}
	part := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 200000, Size: 50000}}
	text := &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierText}
	msgs, err := sc.Fetch(uid, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}, BodySection: []*imap.FetchItemBodySection{whole, part, text}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch of a %d-byte message: %v", big.Size, err)
	}
	if got := msgs[0].FindBodySection(whole); !bytes.Equal(got, big.Body) {
		t.Errorf("BODY[]: %d bytes, want the %d archived", len(got), len(big.Body))
	}
	if got := msgs[0].FindBodySection(part); !bytes.Equal(got, big.Body[200000:250000]) {
		t.Errorf("BODY[]<200000.50000>: %d bytes differ", len(got))
	}
	if got := msgs[0].FindBodySection(text); !bytes.HasSuffix(big.Body, got) || len(got) < 290000 {
		t.Errorf("BODY[TEXT]: %d bytes", len(got))
	}
	if msgs[0].BodyStructure == nil {
		t.Error("no BODYSTRUCTURE")
	}
	_, err = sc.Fetch(uid, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true}}}).Collect()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
		t.Errorf("BODY[1] over the bound: %v, want NO", err)
	}
}

// TestServeInterrupt: SIGINT closes the listener and open connections
// (a client in IDLE among them) and serve exits 0.
func TestServeInterrupt(t *testing.T) {
	dv, _ := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--archive", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	addr := strings.TrimSpace(strings.TrimPrefix(line, "mailkeep serve: listening on "))
	sc := imaptest.Dial(t, addr, user, "x")
	if _, err := sc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := sc.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGINT: %v, want exit 0", err)
	}
	if err := idle.Wait(); err == nil {
		t.Error("IDLE still running after serve stopped")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still listening after SIGINT")
	}
}

// TestServeMutt: mutt, driven in tmux, opens a served folder, limits it
// with a server-side body search (=b) and shows a message.
func TestServeMutt(t *testing.T) {
	for _, tool := range []string{"mutt", "tmux"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/install-test-deps)", tool)
			}
			t.Skipf("%s is not installed (scripts/install-test-deps)", tool)
		}
	}
	dv, _ := serveCorpus(t)
	dir := filepath.Join(t.TempDir(), "arch")
	backupTo(t, dv, dir)
	addr := startServe(t, nil, "--archive", dir)
	base := t.TempDir()
	rc := filepath.Join(base, "muttrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`set imap_user = "alice"
set imap_pass = "anything"
set ssl_starttls = no
set ssl_force_tls = no
set folder = "imap://%s/"
set spoolfile = "+Archive/2014"
set header_cache = ""
set message_cachedir = ""
set mail_check = 3600
set imap_keepalive = 3600
set mark_old = no
set move = no
set pager_stop = yes
set sort = date
`, addr)), 0o600)
	sock := filepath.Join(base, "tmux.sock")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-x", "160", "-y", "40", "env", "HOME="+base, "TERM=xterm", "mutt", "-n", "-F", rc)
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	// A terminal has no event to wait on: poll its screen.
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			screen := tmux("capture-pane", "-p")
			if ok(screen) {
				return screen
			}
			if time.Now().After(deadline) {
				t.Fatalf("mutt: waiting for %s; screen:\n%s", what, screen)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the folder index", func(s string) bool {
		return strings.Contains(s, "no final newline") && strings.Contains(s, "From lines")
	})
	tmux("send-keys", "l", "=b escaped", "Enter")
	waitFor("the limited index", func(s string) bool {
		return strings.Contains(s, "From lines") && !strings.Contains(s, "no final newline")
	})
	tmux("send-keys", "Enter")
	waitFor("the message", func(s string) bool { return strings.Contains(s, ">>From escaped twice.") })
}
