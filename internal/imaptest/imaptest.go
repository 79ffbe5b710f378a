// Package imaptest holds client-side IMAP helpers shared by tests: logging
// in, creating folders, appending messages, taking a snapshot of a whole
// account and comparing two snapshots, plus a corpus of awkward messages and
// folder names. It works against any server, in particular dovecottest and
// memimap.
package imaptest

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Dial connects to addr without TLS, logs in as user and registers a LOGOUT
// and close with t.Cleanup. It fails the test on error.
func Dial(t testing.TB, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("imaptest: dialing %s: %v", addr, err)
	}
	return login(t, c, addr, user, pass)
}

func login(t testing.TB, c *imapclient.Client, addr, user, pass string) *imapclient.Client {
	t.Helper()
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		t.Fatalf("imaptest: logging in to %s as %q: %v", addr, user, err)
	}
	t.Cleanup(func() {
		// The test may have logged out or closed already; errors are moot.
		done := make(chan struct{})
		go func() {
			c.Logout().Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		c.Close()
		forget(c)
	})
	return c
}

// DialTLS is [Dial] over implicit TLS (IMAPS), trusting only the PEM
// certificates in caFile, such as dovecottest's CACertFile.
func DialTLS(t testing.TB, addr, caFile, user, pass string) *imapclient.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("imaptest: no certificate in %s", caFile)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: host}})
	if err != nil {
		t.Fatalf("imaptest: dialing %s with TLS: %v", addr, err)
	}
	return login(t, c, addr, user, pass)
}

// Msg is a message as a server holds it.
type Msg struct {
	UID uint32
	// Flags are sorted and exclude \Recent.
	Flags []string
	// InternalDate is in UTC.
	InternalDate time.Time
	// Size is RFC822.SIZE as reported by the server.
	Size int64
	// SHA256 is the hex SHA-256 of BODY[].
	SHA256 string
	// Body is BODY[], only when asked for.
	Body []byte
}

// known remembers, per client, folders that exist, so that Append creates a
// folder only once.
var known = struct {
	sync.Mutex
	m map[*imapclient.Client]map[string]bool
}{m: map[*imapclient.Client]map[string]bool{}}

func forget(c *imapclient.Client) {
	known.Lock()
	delete(known.m, c)
	known.Unlock()
}

func isKnown(c *imapclient.Client, folder string) bool {
	known.Lock()
	defer known.Unlock()
	return known.m[c][folder]
}

func setKnown(c *imapclient.Client, folder string, ok bool) {
	known.Lock()
	defer known.Unlock()
	if known.m[c] == nil {
		known.m[c] = map[string]bool{}
	}
	known.m[c][folder] = ok
}

// Create creates folder; a folder that already exists is fine. Parents are
// not created (servers differ: Dovecot shows a missing parent as
// \NonExistent, imapmemserver not at all). It fails the test on error.
func Create(t testing.TB, c *imapclient.Client, folder string) {
	t.Helper()
	if err := create(c, folder); err != nil {
		t.Fatal(err)
	}
}

func create(c *imapclient.Client, folder string) error {
	if strings.EqualFold(folder, "INBOX") {
		return nil
	}
	err := c.Create(folder, nil).Wait()
	var ierr *imap.Error
	if err != nil && !(errors.As(err, &ierr) && (ierr.Code == imap.ResponseCodeAlreadyExists || strings.Contains(strings.ToLower(ierr.Text), "already exists"))) {
		return fmt.Errorf("imaptest: creating folder %q: %w", folder, err)
	}
	setKnown(c, folder, true)
	return nil
}

// Append appends body to folder, creating the folder if needed, and returns
// the new UID (from UIDPLUS) or 0. A zero date lets the server choose the
// internal date. It fails the test on error.
func Append(t testing.TB, c *imapclient.Client, folder string, flags []string, date time.Time, body []byte) uint32 {
	t.Helper()
	uid, err := appendMsg(c, folder, flags, date, bytes.NewReader(body), int64(len(body)))
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeTryCreate {
		// The folder was deleted behind our back.
		setKnown(c, folder, false)
		uid, err = appendMsg(c, folder, flags, date, bytes.NewReader(body), int64(len(body)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// AppendReader is [Append] for a message of size bytes streamed from r, such
// as [BigMessage].
func AppendReader(t testing.TB, c *imapclient.Client, folder string, flags []string, date time.Time, r io.Reader, size int64) uint32 {
	t.Helper()
	uid, err := appendMsg(c, folder, flags, date, r, size)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// TryAppend appends body to folder as it is (no CREATE first, no flags,
// the server's date) and returns the server's answer: for tests of
// APPENDs a server refuses.
func TryAppend(c *imapclient.Client, folder string, body []byte) error {
	cmd := c.Append(folder, int64(len(body)), nil)
	if _, err := cmd.Write(body); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

func appendMsg(c *imapclient.Client, folder string, flags []string, date time.Time, r io.Reader, size int64) (uint32, error) {
	if !isKnown(c, folder) {
		if err := create(c, folder); err != nil {
			return 0, err
		}
	}
	opt := &imap.AppendOptions{Time: date}
	for _, f := range flags {
		opt.Flags = append(opt.Flags, imap.Flag(f))
	}
	cmd := c.Append(folder, size, opt)
	n, werr := io.Copy(cmd, r)
	cerr := cmd.Close()
	data, err := cmd.Wait()
	switch {
	case err != nil:
		return 0, fmt.Errorf("imaptest: appending to %q: %w", folder, err)
	case werr != nil:
		return 0, fmt.Errorf("imaptest: appending to %q: writing message: %w", folder, werr)
	case cerr != nil:
		return 0, fmt.Errorf("imaptest: appending to %q: %w", folder, cerr)
	case n != size:
		return 0, fmt.Errorf("imaptest: appending to %q: message has %d bytes, %d announced", folder, n, size)
	}
	return uint32(data.UID), nil
}

// Snapshot returns every selectable folder (by UTF-8 name) with its messages
// in UID order. Bodies are fetched with BODY.PEEK[] and hashed while
// streaming; they are kept only when withBodies is set. Folders are
// examined read-only, so nothing on the server changes. It fails the test on
// error.
func Snapshot(t testing.TB, c *imapclient.Client, withBodies bool) map[string][]Msg {
	t.Helper()
	snap, err := snapshot(c, withBodies)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func snapshot(c *imapclient.Client, withBodies bool) (map[string][]Msg, error) {
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("imaptest: listing folders: %w", err)
	}
	snap := make(map[string][]Msg)
	for _, mb := range list {
		if slices.ContainsFunc(mb.Attrs, func(a imap.MailboxAttr) bool {
			return strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) ||
				strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent))
		}) {
			continue
		}
		msgs, err := folderMsgs(c, mb.Mailbox, withBodies)
		if err != nil {
			return nil, err
		}
		snap[mb.Mailbox] = msgs
	}
	if c.Mailbox() != nil {
		if err := c.Unselect().Wait(); err != nil {
			return nil, fmt.Errorf("imaptest: unselecting: %w", err)
		}
	}
	return snap, nil
}

func folderMsgs(c *imapclient.Client, folder string, withBodies bool) ([]Msg, error) {
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("imaptest: examining %q: %w", folder, err)
	}
	msgs := []Msg{}
	if sel.NumMessages == 0 {
		return msgs, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	cmd := c.Fetch(all, &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		RFC822Size:   true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	})
	var ferr error
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var msg Msg
		var sawBody bool
		for item := m.Next(); item != nil; item = m.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				msg.UID = uint32(item.UID)
			case imapclient.FetchItemDataFlags:
				msg.Flags = []string{}
				for _, f := range item.Flags {
					if !strings.EqualFold(string(f), `\Recent`) {
						msg.Flags = append(msg.Flags, string(f))
					}
				}
				sort.Strings(msg.Flags)
			case imapclient.FetchItemDataInternalDate:
				msg.InternalDate = item.Time.UTC()
			case imapclient.FetchItemDataRFC822Size:
				msg.Size = item.Size
			case imapclient.FetchItemDataBodySection:
				sawBody = true
				h := sha256.New()
				var w io.Writer = h
				var buf bytes.Buffer
				if withBodies {
					w = io.MultiWriter(h, &buf)
				}
				if item.Literal != nil {
					if _, err := io.Copy(w, item.Literal); err != nil && ferr == nil {
						ferr = fmt.Errorf("imaptest: reading body of UID %d in %q: %w", msg.UID, folder, err)
					}
				}
				msg.SHA256 = hex.EncodeToString(h.Sum(nil))
				if withBodies {
					msg.Body = buf.Bytes()
				}
			}
		}
		if msg.UID == 0 || !sawBody {
			// An unsolicited FETCH (e.g. a flag change by another
			// session), not an answer to ours.
			continue
		}
		msgs = append(msgs, msg)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("imaptest: fetching %q: %w", folder, err)
	}
	if ferr != nil {
		return nil, ferr
	}
	if uint32(len(msgs)) != sel.NumMessages {
		return nil, fmt.Errorf("imaptest: fetching %q: got %d messages, EXAMINE said %d", folder, len(msgs), sel.NumMessages)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	return msgs, nil
}

// Diff compares snapshot a with snapshot b and describes the differences,
// one per line; it returns "" when they are equal. Folder names of a are
// passed through mapName (nil means unchanged) before looking them up in b,
// e.g. to add the prefix a restore put in front. Within a folder messages
// are compared as a multiset of (SHA256, Flags, InternalDate); UIDs, order
// and the case of flags are ignored, dates are compared to the second.
func Diff(a, b map[string][]Msg, mapName func(string) string) string {
	if mapName == nil {
		mapName = func(s string) string { return s }
	}
	var out []string
	mapped := make(map[string]string, len(a)) // b name -> a name
	for _, an := range sortedKeys(a) {
		bn := mapName(an)
		if prev, dup := mapped[bn]; dup {
			out = append(out, fmt.Sprintf("folders %q and %q both map to %q", prev, an, bn))
			continue
		}
		mapped[bn] = an
		bm, ok := b[bn]
		if !ok {
			out = append(out, fmt.Sprintf("folder %q (from %q) missing (%d messages)", bn, an, len(a[an])))
			continue
		}
		out = append(out, diffMsgs(bn, a[an], bm)...)
	}
	for _, bn := range sortedKeys(b) {
		if _, ok := mapped[bn]; !ok {
			out = append(out, fmt.Sprintf("folder %q unexpected (%d messages)", bn, len(b[bn])))
		}
	}
	return strings.Join(out, "\n")
}

func sortedKeys(m map[string][]Msg) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// msgKey identifies a message for Diff. Flags are compared without regard to
// case, as IMAP defines them.
func msgKey(m Msg) string {
	flags := make([]string, len(m.Flags))
	for i, f := range m.Flags {
		flags[i] = strings.ToLower(f)
	}
	sort.Strings(flags)
	return fmt.Sprintf("sha256=%s flags=[%s] date=%s", m.SHA256, strings.Join(flags, " "), m.InternalDate.UTC().Format(time.RFC3339))
}

func diffMsgs(folder string, a, b []Msg) []string {
	count := map[string]int{}
	uidA := map[string][]uint32{}
	uidB := map[string][]uint32{}
	for _, m := range a {
		k := msgKey(m)
		count[k]++
		uidA[k] = append(uidA[k], m.UID)
	}
	for _, m := range b {
		k := msgKey(m)
		count[k]--
		uidB[k] = append(uidB[k], m.UID)
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var missing, extra []string
	for _, k := range keys {
		switch n := count[k]; {
		case n > 0:
			missing = append(missing, fmt.Sprintf("folder %q: %d missing: %s (UIDs in a: %v)", folder, n, k, uidA[k]))
		case n < 0:
			extra = append(extra, fmt.Sprintf("folder %q: %d unexpected: %s (UIDs in b: %v)", folder, -n, k, uidB[k]))
		}
	}
	out := append(missing, extra...)
	return out
}
