package crossserver

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/moxtest"
)

const dvPass = "dv-Pa55word"

func moxEndpoint(m *moxtest.Server, tls bool) endpoint {
	u := url.QueryEscape(m.User) // "mox%40localhost"
	if tls {
		return endpoint{url: "imaps://" + u + "@" + m.TLSAddr, password: m.Password, extra: []string{"--ca-file", m.CACertFile}}
	}
	return endpoint{url: "imap://" + u + "@" + m.Addr, password: m.Password, extra: []string{"--tls", "none"}}
}

func dovecotEndpoint(dv *dovecottest.Server, user string) endpoint {
	return endpoint{url: "imap://" + user + "@" + dv.IMAPAddr, password: dvPass, extra: []string{"--tls", "none"}}
}

func identity(s string) string { return s }

// TestDovecotToMox backs up a Dovecot account, restores it into mox, backs
// mox up again (over IMAPS) and restores that into a second, empty Dovecot
// account. Every message is compared on mox and at the end of the cycle.
func TestDovecotToMox(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "alice", dvPass)
	dv.AddUser(t, "bob", dvPass)
	mx := moxtest.Start(t)

	ac := imaptest.Dial(t, dv.IMAPAddr, "alice", dvPass)
	seed(t, ac, "", '/')
	src := imaptest.Snapshot(t, ac, true)

	arch := filepath.Join(t.TempDir(), "dovecot")
	dovecotEndpoint(dv, "alice").backup(t, arch)
	r, sum := moxEndpoint(mx, false).restore(t, arch)
	t.Logf("restore into mox: exit %d, %+v", r.code, sum)
	onMox := imaptest.Snapshot(t, mx.Dial(t), true)
	outs := compare(src, nonEmpty(onMox), identity)
	report(t, "dovecot -> mox", outs)
	checkMoxArrival(t, outs, r, sum)

	// A second restore finds everything already on mox.
	r, sum = moxEndpoint(mx, false).restore(t, arch)
	if r.code != 0 || sum.Appended != 0 || sum.Skipped != len(seedCorpus()) {
		t.Errorf("second restore into mox: exit %d, %+v\n%s", r.code, sum, r.stderr)
	}

	// mox -> Dovecot again: the whole cycle.
	arch2 := filepath.Join(t.TempDir(), "mox")
	moxEndpoint(mx, true).backup(t, arch2)
	r, sum = dovecotEndpoint(dv, "bob").restore(t, arch2)
	t.Logf("restore of mox's backup into dovecot: exit %d, %+v", r.code, sum)
	back := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "bob", dvPass), true)
	outs = compare(src, nonEmpty(back), identity)
	report(t, "dovecot -> mox -> dovecot", outs)
	checkCycle(t, outs, r, sum)
}

// TestMoxToDovecot backs up mox over IMAPS and restores into Dovecot.
func TestMoxToDovecot(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "alice", dvPass)
	mx := moxtest.Start(t)

	mc := mx.Dial(t)
	seed(t, mc, "", '/')
	src := imaptest.Snapshot(t, mc, true)

	arch := filepath.Join(t.TempDir(), "mox")
	moxEndpoint(mx, true).backup(t, arch)
	if r := mailkeep(t, "", "ls", "--archive", arch); r.code != 0 || !strings.Contains(r.stdout, "INBOX") {
		t.Errorf("ls of mox's archive: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	} else {
		t.Logf("mox's archive:\n%s", r.stdout)
	}
	r, sum := dovecotEndpoint(dv, "alice").restore(t, arch)
	t.Logf("restore into dovecot: exit %d, %+v", r.code, sum)
	onDv := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "alice", dvPass), true)
	outs := compare(nonEmpty(src), nonEmpty(onDv), identity)
	report(t, "mox -> dovecot", outs)
	checkMoxToDovecot(t, outs, r, sum)
}

// TestDovecotDotNamespaceToMox: the source is a Dovecot configured as Cyrus
// and Courier are (personal namespace "INBOX.", delimiter '.'); on mox
// (namespace "", delimiter '/') INBOX.Work.Projects belongs in
// Work/Projects.
func TestDovecotDotNamespaceToMox(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.CyrusLike())
	dv.AddUser(t, "alice", dvPass)
	mx := moxtest.Start(t)

	ac := imaptest.Dial(t, dv.IMAPAddr, "alice", dvPass)
	seed(t, ac, "INBOX.", '.')
	src := imaptest.Snapshot(t, ac, true)

	arch := filepath.Join(t.TempDir(), "dovecot")
	dovecotEndpoint(dv, "alice").backup(t, arch)
	r, sum := moxEndpoint(mx, true).restore(t, arch) // over IMAPS
	t.Logf("restore into mox: exit %d, %+v", r.code, sum)
	onMox := imaptest.Snapshot(t, mx.Dial(t), true)
	rel := func(f string) string {
		if f == "INBOX" {
			return f
		}
		return strings.ReplaceAll(strings.TrimPrefix(f, "INBOX."), ".", "/")
	}
	outs := compare(src, nonEmpty(onMox), rel)
	report(t, "dovecot(INBOX. .) -> mox", outs)
	checkDotNamespace(t, outs, r, sum)
}

// TestMoxToDovecotDotNamespace: mox (namespace "" with '/') restored into a
// Dovecot configured as Cyrus and Courier are ("INBOX." with '.').
func TestMoxToDovecotDotNamespace(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.CyrusLike())
	dv.AddUser(t, "alice", dvPass)
	mx := moxtest.Start(t)

	mc := mx.Dial(t)
	seed(t, mc, "", '/')
	src := imaptest.Snapshot(t, mc, true)

	arch := filepath.Join(t.TempDir(), "mox")
	moxEndpoint(mx, true).backup(t, arch)
	r, sum := dovecotEndpoint(dv, "alice").restore(t, arch)
	t.Logf("restore into dovecot(INBOX. .): exit %d, %+v", r.code, sum)
	onDv := imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, "alice", dvPass), true)
	dot := func(f string) string { return nsName(f, "INBOX.", '.') }
	outs := compare(nonEmpty(src), nonEmpty(onDv), dot)
	report(t, "mox -> dovecot(INBOX. .)", outs)
	checkMoxToDotDovecot(t, outs, r, sum)
}

// TestDovecotToMoxNastyFolders restores one message in each of
// imaptest.NastyFolders (non-ASCII, spaces, '&', quotes, backslash,
// brackets, 8 levels, INBOX/Child) from Dovecot into mox.
func TestDovecotToMoxNastyFolders(t *testing.T) {
	dv := dovecottest.Start(t, nil)
	dv.AddUser(t, "alice", dvPass)
	mx := moxtest.Start(t)

	ac := imaptest.Dial(t, dv.IMAPAddr, "alice", dvPass)
	for i, f := range imaptest.NastyFolders('/') {
		body := fmt.Sprintf("From: a@example.org\r\nSubject: in %s\r\nMessage-ID: <nasty-%d@x>\r\n\r\nbody\r\n", f, i)
		imaptest.Append(t, ac, f, []string{`\Seen`}, time.Date(2022, 1, 1, 0, 0, i, 0, time.UTC), []byte(body))
	}
	src := imaptest.Snapshot(t, ac, true)

	arch := filepath.Join(t.TempDir(), "dovecot")
	dovecotEndpoint(dv, "alice").backup(t, arch)
	r, sum := moxEndpoint(mx, false).restore(t, arch)
	t.Logf("restore into mox: exit %d, %+v\n%s", r.code, sum, r.stderr)
	onMox := imaptest.Snapshot(t, mx.Dial(t), true)
	outs := compare(nonEmpty(src), nonEmpty(onMox), identity)
	report(t, "dovecot nasty folders -> mox", outs)
	checkNasty(t, outs, r, sum)
}
