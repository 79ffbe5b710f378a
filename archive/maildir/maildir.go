// Package maildir writes and reads Maildir folders crash-safely: each
// message is written to tmp/, given its INTERNALDATE as mtime and renamed
// into cur/ with its flags in the ":2," suffix; Sync makes a batch of them
// durable (data and renames) with one syncfs before the caller records them
// in the catalog. github.com/emersion/go-maildir
// renames without fsync, sets no mtime and cannot abort a failed write,
// hence this small package.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Folder is one Maildir folder directory.
type Folder struct {
	dir   string
	names map[string]string // key -> current name ("cur/…"), loaded on first Deliver
	buf   []byte
}

// OpenFolder creates dir/{cur,new,tmp} (and, for a Maildir++ sub-folder,
// the "maildirfolder" marker) when missing.
func OpenFolder(dir string, sub bool) (*Folder, error) {
	created := false
	for _, s := range []string{"cur", "new", "tmp"} {
		p := filepath.Join(dir, s)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, fmt.Errorf("maildir %s: %w", dir, err)
			}
			created = true
		}
	}
	if sub {
		marker := filepath.Join(dir, "maildirfolder")
		if _, err := os.Stat(marker); os.IsNotExist(err) {
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				return nil, fmt.Errorf("maildir %s: %w", dir, err)
			}
		}
	}
	if created {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	return &Folder{dir: dir}, nil
}

// Dir returns the folder's directory.
func (f *Folder) Dir() string { return f.dir }

// KeyOf returns the stable part of a message file name (before ":2,").
func KeyOf(name string) string {
	name = filepath.Base(name)
	if i := strings.Index(name, ":2,"); i >= 0 {
		return name[:i]
	}
	return name
}

func (f *Folder) loadNames() error {
	if f.names != nil {
		return nil
	}
	names, err := f.Scan()
	if err != nil {
		return err
	}
	f.names = make(map[string]string, len(names))
	for _, n := range names {
		f.names[KeyOf(n)] = n
	}
	return nil
}

// Deliver streams r into a new message file named key plus the info
// suffix of flags, with mtime as its modification time, and returns its
// name relative to the folder ("cur/…") and its size. The message is
// durable after the next Sync. A message already
// stored under the same key (a copy a killed run left uncommitted) is
// replaced, never duplicated. On error nothing is left behind.
func (f *Folder) Deliver(key string, flags []string, mtime time.Time, r io.Reader) (string, int64, error) {
	if strings.ContainsAny(key, "/:\x00") || key == "" || key[0] == '.' {
		return "", 0, fmt.Errorf("maildir: bad key %q", key)
	}
	if err := f.loadNames(); err != nil {
		return "", 0, err
	}
	tmp := filepath.Join(f.dir, "tmp", key)
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", 0, err
	}
	if f.buf == nil {
		f.buf = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(onlyWriter{t}, r, f.buf)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, mtime, mtime)
	}
	name := "cur/" + key + ":2," + FlagLetters(flags)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(f.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	if old, ok := f.names[key]; ok && old != name {
		if err := os.Remove(filepath.Join(f.dir, old)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", 0, err
		}
	}
	f.names[key] = name
	return name, n, nil
}

// onlyWriter hides *os.File's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// Sync makes delivered messages durable, data and directory entries: one
// syncfs(2) of the file system holding the folder instead of an fsync per
// message (thousands of fsyncs cost more than the whole download).
func (f *Folder) Sync() error {
	d, err := os.Open(filepath.Join(f.dir, "cur"))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", f.dir, err)
	}
	return nil
}

// SetFlags renames a message (name relative to the folder) so its info
// suffix carries flags, and returns the new name.
func (f *Folder) SetFlags(name string, flags []string) (string, error) {
	key := KeyOf(name)
	nn := "cur/" + key + ":2," + FlagLetters(flags)
	if nn == name {
		return name, nil
	}
	if err := os.Rename(filepath.Join(f.dir, name), filepath.Join(f.dir, nn)); err != nil {
		return "", err
	}
	if f.names != nil {
		f.names[key] = nn
	}
	return nn, nil
}

// Open opens a message by its name relative to the folder.
func (f *Folder) Open(name string) (*os.File, error) {
	return os.Open(filepath.Join(f.dir, name))
}

// CleanTmp removes mailkeep's leftovers in tmp/ (a killed run's).
func (f *Folder) CleanTmp() error {
	ents, err := os.ReadDir(filepath.Join(f.dir, "tmp"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".mailkeep") {
			if err := os.Remove(filepath.Join(f.dir, "tmp", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Scan lists message files in cur/ and new/ ("cur/…", "new/…"), sorted.
func (f *Folder) Scan() ([]string, error) {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(f.dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, sub+"/"+e.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

var letters = []struct {
	flag   string
	letter byte
}{{`\Draft`, 'D'}, {`\Flagged`, 'F'}, {`$Forwarded`, 'P'}, {`\Answered`, 'R'}, {`\Seen`, 'S'}, {`\Deleted`, 'T'}}

// FlagLetters maps IMAP flags to Maildir info letters (D F P R S T, in
// ASCII order). Keywords have no letter; the catalog keeps them.
func FlagLetters(flags []string) string {
	var b []byte
	for _, l := range letters {
		for _, f := range flags {
			if strings.EqualFold(f, l.flag) {
				b = append(b, l.letter)
				break
			}
		}
	}
	return string(b)
}

// ParseFlagLetters maps Maildir info letters back to IMAP flags.
func ParseFlagLetters(info string) []string {
	var out []string
	for _, l := range letters {
		if strings.IndexByte(info, l.letter) >= 0 {
			out = append(out, l.flag)
		}
	}
	return out
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
