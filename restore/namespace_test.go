package restore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// nsTree is a folder tree (in a '/' server's names) with awkward names,
// and its names on a server with namespace "INBOX." and delimiter '.'.
var nsTree = map[string]string{
	"INBOX":                 "INBOX",
	"Sent":                  "INBOX.Sent",
	"INBOX/Child":           "INBOX.Child",
	"Other/Child":           "INBOX.Other.Child",
	"Work/Projects/2026/Q1": "INBOX.Work.Projects.2026.Q1",
	"Größe & Co":            "INBOX.Größe & Co",
	`Say "hi" & <bye>`:      `INBOX.Say "hi" & <bye>`,
	"Ünïcødé/日本語":           "INBOX.Ünïcødé.日本語",
}

// fillTree puts two messages (flags, keywords, dates) in every folder of
// names on the account.
func fillTree(t *testing.T, addr, user string, names []string) {
	t.Helper()
	c := imaptest.Dial(t, addr, user, pass)
	defer c.Close()
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.FixedZone("", -3*3600))
	for i, n := range names {
		for j := 0; j < 2; j++ {
			body := fmt.Sprintf("Message-ID: <ns%d.%d@t>\r\nSubject: %s %d\r\n\r\nin %s\r\n", i, j, n, j, n)
			imaptest.Append(t, c, n, []string{`\Seen`, "$Label" + fmt.Sprint(j)}[:1+j], date.Add(time.Duration(i*10+j)*time.Minute), []byte(body))
		}
	}
}

// TestNamespaceMapping restores between a server with namespace "" and
// delimiter '/' (Dovecot's default) and one with namespace "INBOX." and
// delimiter '.' (as Cyrus and Courier), both ways: INBOX.Sent becomes Sent
// and back, INBOX stays INBOX, every message arrives where it belongs.
// The namespace is recorded at backup time; an archive without the record
// (from before it was kept) gets it inferred from its folder names.
func TestNamespaceMapping(t *testing.T) {
	plain := dovecottest.Start(t, nil)
	cyr := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	addUsers(t, plain, "src", "back", "inferred", "prefixed")
	addUsers(t, cyr, "dst")
	var names []string
	for n := range nsTree {
		names = append(names, n)
	}
	fillTree(t, plain.IMAPAddr, "src", names)
	want := nonEmpty(imaptest.Snapshot(t, imaptest.Dial(t, plain.IMAPAddr, "src", pass), false))
	if len(want) != len(nsTree) {
		t.Fatalf("source holds %v", keys(want))
	}
	snap := func(dv *dovecottest.Server, user string) map[string][]imaptest.Msg {
		return nonEmpty(imaptest.Snapshot(t, imaptest.Dial(t, dv.IMAPAddr, user, pass), false))
	}
	checkNS := func(dir, prefix string, delim rune) {
		t.Helper()
		a, err := archive.Open(dir, archive.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		p, d, ok, err := a.Cat.SourceNamespace(t.Context())
		if err != nil || !ok || p != prefix || d != delim {
			t.Fatalf("recorded namespace %q %q %v %v; want %q %q", p, d, ok, err, prefix, delim)
		}
	}

	dirA := t.TempDir()
	backup(t, plain.IMAPAddr, "src", dirA, archive.MboxZstd)
	checkNS(dirA, "", '/')
	st, err := doRestore(t, dirA, cyr.IMAPAddr, "dst", restoreOpts{})
	noErr(t, "'/' to 'INBOX.'", st, err)
	if d := imaptest.Diff(want, snap(cyr, "dst"), func(n string) string { return nsTree[n] }); d != "" {
		t.Fatalf("'/' to 'INBOX.':\n%s\nfolders: %v", d, keys(snap(cyr, "dst")))
	}

	dirB := t.TempDir()
	backup(t, cyr.IMAPAddr, "dst", dirB, archive.Maildir)
	checkNS(dirB, "INBOX.", '.')
	st, err = doRestore(t, dirB, plain.IMAPAddr, "back", restoreOpts{})
	noErr(t, "'INBOX.' to '/'", st, err)
	// On a server whose namespace is INBOX's children, INBOX/Child and
	// Child are one name: it comes back as Child.
	back := func(n string) string {
		if n == "INBOX/Child" {
			return "Child"
		}
		return n
	}
	if d := imaptest.Diff(want, snap(plain, "back"), back); d != "" {
		t.Fatalf("'INBOX.' to '/':\n%s\nfolders: %v", d, keys(snap(plain, "back")))
	}

	// --prefix: everything under one folder, relative names below it.
	st, err = doRestore(t, dirB, plain.IMAPAddr, "prefixed", restoreOpts{Options: restore.Options{Prefix: "Restored/2026"}})
	noErr(t, "'INBOX.' to '/' under a prefix", st, err)
	if d := imaptest.Diff(want, snap(plain, "prefixed"), func(n string) string { return "Restored/2026/" + back(n) }); d != "" {
		t.Fatalf("'INBOX.' to '/' under a prefix:\n%s\nfolders: %v", d, keys(snap(plain, "prefixed")))
	}

	// An archive from before the namespace was recorded.
	a, err := archive.Open(dirB, archive.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cat.DB().Exec(`DELETE FROM meta WHERE key='source_namespace'`); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := a.Cat.SourceNamespace(t.Context()); ok {
		t.Fatal("namespace still recorded")
	}
	a.Close()
	st, err = doRestore(t, dirB, plain.IMAPAddr, "inferred", restoreOpts{})
	noErr(t, "'INBOX.' to '/', inferred", st, err)
	if d := imaptest.Diff(want, snap(plain, "inferred"), back); d != "" {
		t.Fatalf("'INBOX.' to '/', namespace inferred:\n%s", d)
	}
}
