package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// maildirFolder verifies one folder of a Maildir archive: each catalogued
// message's file, then the files of the folder the catalog does not list.
func (v *verifier) maildirFolder(f *catalog.Folder) error {
	s := &mdScan{v: v, f: f, buf: make([]byte, 64<<10), h: sha256.New(), want: map[string]string{}, found: map[string]string{}}
	err := eachMsg(v.ctx, v.a.Cat, f, func(m *msg, _ int64) error {
		if err := v.canceled(); err != nil {
			return err
		}
		s.check(m)
		return nil
	})
	if err != nil {
		return err
	}
	s.strays()
	return nil
}

// mdScan verifies one Maildir folder.
type mdScan struct {
	v   *verifier
	f   *catalog.Folder
	buf []byte
	h   hash.Hash
	// want maps each catalogued key to its catalogued name ("cur/…");
	// found maps a key whose catalogued file is missing to the file that
	// holds it under another name.
	want, found map[string]string
	listed      map[string][]string // key -> names in cur/ and new/, loaded on demand
}

// rel makes a folder-relative name ("cur/x") archive-relative.
func (s *mdScan) rel(name string) string { return filepath.Join(s.f.Path, name) }

// folderName is m.file relative to the folder ("cur/…").
func (s *mdScan) folderName(file string) string {
	return path.Join(filepath.Base(filepath.Dir(file)), filepath.Base(file))
}

func (s *mdScan) check(m *msg) {
	defer s.v.checked(s.f.Name, m.size)
	key := maildir.KeyOf(m.file)
	s.want[key] = s.folderName(m.file)
	fh, err := safefs.Open(s.v.a.Dir, m.file)
	if errors.Is(err, fs.ErrNotExist) {
		fh, err = s.findElsewhere(m, key)
	}
	if err != nil {
		kind := Unreadable
		if errors.Is(err, fs.ErrNotExist) {
			kind = Missing
		}
		s.v.add(m.finding(s.f, kind, err.Error()), true)
		return
	}
	defer fh.Close()
	h := s.h
	h.Reset()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{fh}, s.buf)
	switch {
	case err != nil:
		s.v.add(m.finding(s.f, Unreadable, fmt.Sprintf("after %d bytes: %v", n, err)), true)
	case n != m.size:
		s.v.add(m.finding(s.f, Size, fmt.Sprintf("the file has %d bytes, the catalog says %d", n, m.size)), true)
	default:
		if sum := hex.EncodeToString(h.Sum(nil)); sum != m.sha {
			s.v.add(m.finding(s.f, Checksum, fmt.Sprintf("the file hashes to %s, the catalog says %s", sum, m.sha)), true)
		}
	}
}

// findElsewhere looks for a message whose catalogued file is gone: a
// backup running beside verify may have renamed it (flags), or another
// program did (then the catalog is wrong, and cat and restore fail).
func (s *mdScan) findElsewhere(m *msg, key string) (*os.File, error) {
	if cur, err := currentFile(s.v.ctx, s.v.a.Cat, m.id); err == nil && cur != m.file {
		m.file = cur
		s.want[key] = s.folderName(cur)
		if fh, err := safefs.Open(s.v.a.Dir, cur); err == nil {
			return fh, nil
		}
	}
	names := s.list()[key]
	if len(names) == 0 {
		return nil, fmt.Errorf("the message file is missing: %w", fs.ErrNotExist)
	}
	s.found[key] = names[0]
	if s.v.isPending() {
		s.v.add(m.finding(s.f, Renamed, fmt.Sprintf("the catalog names %s but the message is in %s: renamed by the backup that is running (or was interrupted)", m.file, s.rel(names[0]))), false)
	} else {
		s.v.add(m.finding(s.f, Renamed, fmt.Sprintf("the catalog names %s but the message is in %s (renamed outside mailkeep; cat and restore look for the catalogued name)", m.file, s.rel(names[0]))), true)
	}
	return safefs.Open(s.v.a.Dir, s.rel(names[0]))
}

// list returns the folder's message files by key.
func (s *mdScan) list() map[string][]string {
	if s.listed != nil {
		return s.listed
	}
	s.listed = map[string][]string{}
	for _, sub := range []string{"cur", "new"} {
		for _, name := range s.readDir(sub) {
			s.listed[maildir.KeyOf(name)] = append(s.listed[maildir.KeyOf(name)], sub+"/"+name)
		}
	}
	return s.listed
}

// readDir lists the entries of a sub-directory of the folder; a missing
// directory is empty (its messages are reported missing one by one).
func (s *mdScan) readDir(sub string) []string {
	ents, err := safefs.ReadDir(s.v.a.Dir, filepath.Join(s.f.Path, sub))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.v.add(Finding{Folder: s.f.Name, File: s.rel(sub), Kind: Unreadable, Detail: err.Error()}, true)
		}
		return nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// strays reports the files in the folder's cur/, new/ and tmp/ that the
// catalog does not account for.
func (s *mdScan) strays() {
	list := s.list()
	keys := make([]string, 0, len(list))
	for k := range list {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		for _, name := range list[key] {
			want, ok := s.want[key]
			switch {
			case ok && (name == want || name == s.found[key]):
			case ok:
				s.v.add(Finding{Folder: s.f.Name, File: s.rel(name), Kind: Stray, Detail: fmt.Sprintf("a second copy of the message catalogued as %s", s.rel(want))}, true)
			case strings.HasSuffix(key, ".mailkeep") && s.v.isPending():
				s.v.add(Finding{Folder: s.f.Name, File: s.rel(name), Kind: Leftover, Detail: "delivered by a backup that has not committed it (running or interrupted); the next backup keeps or removes it"}, false)
			default:
				s.v.add(Finding{Folder: s.f.Name, File: s.rel(name), Kind: Stray, Detail: "a message file the catalog does not list"}, true)
			}
		}
	}
	for _, name := range s.readDir("tmp") {
		if strings.HasSuffix(name, ".mailkeep") {
			s.v.add(Finding{Folder: s.f.Name, File: s.rel("tmp/" + name), Kind: Leftover, Detail: "a partial delivery of an interrupted or running backup; the next backup of this folder removes it"}, false)
			continue
		}
		s.v.add(Finding{Folder: s.f.Name, File: s.rel("tmp/" + name), Kind: Stray, Detail: "a file the catalog does not account for"}, true)
	}
}
