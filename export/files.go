package export

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/internal/durable"
)

// fileOut writes one file per message (Maildir, eml): each is streamed
// into a temporary file, given the INTERNALDATE as mtime, and renamed to
// its final name in batches once durable (see batch).
type fileOut struct {
	// names returns a message's temporary and final paths.
	names func(m *catalog.Message, flags []string, seq int) (tmp, final string, err error)
	buf   []byte
	b     batch
	// the message being written
	tmp, final string
	size       int64
}

func (o *fileOut) Put(m *catalog.Message, flags []string, seq int, r io.Reader) error {
	var err error
	o.tmp, o.final, err = o.names(m, flags, seq)
	if err != nil {
		o.tmp = ""
		return err
	}
	f, err := os.OpenFile(o.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		o.tmp = ""
		return err
	}
	o.size, err = io.CopyBuffer(onlyWriter{f}, r, o.buf)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s: %w", o.tmp, cerr)
	}
	if err != nil {
		return err
	}
	if err := os.Chtimes(o.tmp, m.InternalDate, m.InternalDate); err != nil {
		return err
	}
	return nil
}

func (o *fileOut) Keep() error {
	tmp := o.tmp
	o.tmp = ""
	return o.b.add(tmp, o.final, o.size)
}

func (o *fileOut) Drop() error {
	if o.tmp == "" {
		return nil
	}
	err := os.Remove(o.tmp)
	o.tmp = ""
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (o *fileOut) Close() error { return o.b.flush() }

func (o *fileOut) Abort() {
	o.Drop()
	o.b.abort()
}

// onlyWriter hides *os.File's ReadFrom so that CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// newMaildirOut writes a folder into the Maildir++ tree at to, where the
// archive's layout puts it (INBOX at the root, "Work/Projects" in
// ".Work.Projects"), in cur/ under the archive's own file names:
// "<unix INTERNALDATE>.M<UIDVALIDITY>U<UID>.mailkeep:2,<flags>" (POP3:
// ".P<hash of UIDL>"). Keywords become Dovecot's lower-case letters, a
// for the first keyword met in the folder, b for the next..., listed in
// the folder's dovecot-keywords file; it is rewritten (durably) before any
// message carrying a new letter gets its final name. Maildir has 26
// letters: further keywords are not exported.
func newMaildirOut(to string, comps []string, buf []byte) (*fileOut, error) {
	rel := layout.MaildirPath(comps)
	dir := filepath.Join(to, rel)
	if err := makeMaildir(dir, rel != ""); err != nil {
		return nil, err
	}
	kw := &keywordLetters{path: filepath.Join(dir, "dovecot-keywords")}
	return &fileOut{buf: buf, names: func(m *catalog.Message, flags []string, _ int) (string, string, error) {
		key := maildirKey(m)
		letters, err := kw.letters(flags)
		if err != nil {
			return "", "", err
		}
		return filepath.Join(dir, "tmp", key), filepath.Join(dir, "cur", key+":2,"+maildir.FlagLetters(flags)+letters), nil
	}}, nil
}

// keywordLetters assigns a Maildir folder's keywords their letters, as
// Dovecot's dovecot-keywords file records them ("0 $Label1" is a).
type keywordLetters struct {
	path string
	kws  []string
}

// letters returns the sorted keyword letters of flags, writing the
// keywords file first when a keyword is new.
func (k *keywordLetters) letters(flags []string) (string, error) {
	var b []byte
	grew := false
	for _, f := range flags {
		if f == "" || f[0] == '\\' {
			continue
		}
		i := slices.Index(k.kws, f)
		if i < 0 {
			if len(k.kws) == 26 {
				continue
			}
			k.kws = append(k.kws, f)
			i, grew = len(k.kws)-1, true
		}
		if c := byte('a' + i); !slices.Contains(b, c) {
			b = append(b, c)
		}
	}
	if grew {
		var sb strings.Builder
		for i, w := range k.kws {
			fmt.Fprintf(&sb, "%d %s\n", i, w)
		}
		if err := durable.WriteFile(k.path, []byte(sb.String()), 0o600, 0o700); err != nil {
			return "", fmt.Errorf("writing %s: %w", k.path, err)
		}
	}
	slices.Sort(b)
	return string(b), nil
}

// makeMaildir creates dir/{cur,new,tmp} and, for a Maildir++ sub-folder,
// the "maildirfolder" marker.
func makeMaildir(dir string, sub bool) error {
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := mkdirAll(filepath.Join(dir, s)); err != nil {
			return err
		}
	}
	if !sub {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(dir)
}

func maildirKey(m *catalog.Message) string {
	if m.UIDL != "" {
		h := sha256.Sum256([]byte(m.UIDL))
		return fmt.Sprintf("%d.P%s.mailkeep", m.InternalDate.Unix(), hex.EncodeToString(h[:8]))
	}
	return fmt.Sprintf("%d.M%dU%d.mailkeep", m.InternalDate.Unix(), m.UIDValidity, m.UID)
}

// newEMLOut writes a folder as a directory of .eml files: "Work/Projects"
// is the directory Work/Projects, and its messages are named
// "<6-digit sequence>-<UID>.eml" (POP3: "-P<hash of UIDL>"), the sequence
// counting the folder's selected messages in archive order from 1.
func newEMLOut(to string, comps []string, buf []byte) (*fileOut, error) {
	dir := filepath.Join(to, emlDir(comps))
	if err := mkdirAll(dir); err != nil {
		return nil, err
	}
	return &fileOut{buf: buf, names: func(m *catalog.Message, _ []string, seq int) (string, string, error) {
		name := emlName(m, seq)
		return filepath.Join(dir, "."+name+".tmp"), filepath.Join(dir, name), nil
	}}, nil
}

func emlName(m *catalog.Message, seq int) string {
	if m.UIDL != "" {
		h := sha256.Sum256([]byte(m.UIDL))
		return fmt.Sprintf("%06d-P%s.eml", seq, hex.EncodeToString(h[:8]))
	}
	return fmt.Sprintf("%06d-%d.eml", seq, m.UID)
}

// emlDir maps a folder to its directory: each component escaped by
// layout.EscapeComponent, and the last '.' of a component ending in
// ".eml" escaped as %2E, so that no directory can be taken for (or
// collide with) a message file. A literal '%' is always escaped, so this
// stays injective.
func emlDir(comps []string) string {
	parts := make([]string, len(comps))
	for i, c := range comps {
		e := layout.EscapeComponent(c)
		if strings.HasSuffix(e, ".eml") {
			e = e[:len(e)-4] + "%2Eeml"
		}
		parts[i] = e
	}
	return filepath.Join(parts...)
}
