// Package maildir writes and reads Maildir folders crash-safely: each
// message is written to tmp/, given its INTERNALDATE as mtime and renamed
// into cur/ with its flags in the ":2," suffix; Sync makes a batch of them
// durable (data and renames) before the caller records them in the
// catalog: an fsync of each file written, issued in parallel so the file
// system commits them together, and one fsync of each directory changed.
// Only mailkeep's own writes are flushed, never the whole file system. A run killed before Sync leaves files under the same
// deterministic keys, which the next run's Deliver replaces.
//
// github.com/emersion/go-maildir renames without any sync, sets no mtime
// and cannot abort a failed write, hence this small package.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mailkeep/mailkeep/internal/safefs"
)

// Folder is one Maildir folder directory. It is not safe for concurrent
// use, and it assumes no other program writes mailkeep's keys into it.
type Folder struct {
	dir  string // root/rel
	root string // the trusted directory (the archive)
	rel  string // the folder below root; no symlink on the way
	// subs holds cur/, new/ and tmp/, opened once without following a
	// symlink; every file operation is relative to them (openat & co).
	subs map[string]*safefs.Dir
	// names maps a key to its file name ("cur/…" or "new/…"), loaded by
	// the first Deliver: about 100 bytes per message in the folder.
	names map[string]string
	// dups holds further names of keys stored more than once (a run
	// killed between a re-delivery's rename and the old file's removal).
	dups map[string][]string
	buf  []byte
	// unsynced holds the files delivered since the last sync, still open
	// (a rename by SetFlags does not lose them); at most maxUnsynced.
	unsynced []*os.File
	// dirty names the sub-directories ("cur", "new") whose entries
	// changed since the last Sync.
	dirty map[string]bool
}

// maxUnsynced bounds the open files a batch holds: reaching it fsyncs
// them (data only; the directories wait for Sync).
const maxUnsynced = 256

// syncParallel is how many fsyncs are in flight at once: enough for the
// file system to commit them in one journal transaction.
const syncParallel = 64

// OpenFolder opens the Maildir folder dir, creating (mode 0700) dir, its
// missing parents and dir/{cur,new,tmp}, and for a Maildir++ sub-folder
// (sub) the empty "maildirfolder" marker, when absent. It fsyncs the
// parent of every directory or file it creates, so the folder survives a
// crash once OpenFolder returns. The nearest existing directory above dir
// is trusted; below it nothing may be a symlink (see OpenFolderIn).
func OpenFolder(dir string, sub bool) (*Folder, error) {
	root := filepath.Dir(dir)
	for {
		if _, err := os.Stat(root); err == nil || filepath.Dir(root) == root {
			break
		}
		root = filepath.Dir(root)
	}
	rel, err := safefs.Rel(root, dir)
	if err != nil {
		return nil, fmt.Errorf("maildir %s: %w", dir, err)
	}
	return OpenFolderIn(root, rel, sub)
}

// OpenFolderIn is OpenFolder of the folder rel below the trusted directory
// root (the archive). Neither the folder, nor a directory on the way to
// it, nor its cur/, new/ and tmp/, nor a message file may be a symlink or
// a special file: each is refused with a *safefs.UnsafeError naming it,
// and nothing is read or written through it. Directories are created
// 0700 and files 0600 whatever the umask.
func OpenFolderIn(root, rel string, sub bool) (*Folder, error) {
	dir := filepath.Join(root, rel)
	var created []string // directories whose entries changed
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := safefs.MkdirAll(root, filepath.Join(rel, s), 0o700, &created); err != nil {
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	if sub {
		marker := filepath.Join(rel, "maildirfolder")
		if _, err := safefs.Lstat(root, marker); errors.Is(err, fs.ErrNotExist) {
			f, err := safefs.OpenFile(root, marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("maildir %s: %w", dir, err)
			}
			f.Close()
			created = append(created, dir)
		} else if err != nil {
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	for i, d := range created {
		if slices.Contains(created[:i], d) {
			continue
		}
		r, err := safefs.Rel(root, d)
		if err == nil {
			err = safefs.SyncDir(root, r)
		}
		if err != nil {
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	rd, err := safefs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("maildir %s: %w", dir, err)
	}
	defer rd.Close()
	fd := &Folder{dir: dir, root: root, rel: rel, subs: map[string]*safefs.Dir{}}
	for _, s := range []string{"cur", "new", "tmp"} {
		d, err := rd.OpenDir(filepath.Join(rel, s))
		if err != nil {
			fd.Close()
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
		fd.subs[s] = d
	}
	return fd, nil
}

// Close releases the folder's directories. A Folder that is not closed is
// released by the garbage collector.
func (f *Folder) Close() error {
	for _, t := range f.unsynced {
		t.Close()
	}
	f.unsynced = nil
	for k, d := range f.subs {
		d.Close()
		delete(f.subs, k)
	}
	return nil
}

// at splits a "cur/…" or "new/…" (or "tmp/…") name into its open
// directory and base name.
func (f *Folder) at(name string) (*safefs.Dir, string, error) {
	sub, base, _ := strings.Cut(name, "/")
	d := f.subs[sub]
	if d == nil || base == "" || strings.Contains(base, "/") {
		return nil, "", fmt.Errorf("maildir %s: bad file name %q", f.dir, name)
	}
	return d, base, nil
}

// Dir returns the folder's directory.
func (f *Folder) Dir() string { return f.dir }

// KeyOf returns the key of a message file name, with or without its
// "cur/" or "new/" directory: the base name before the ":2," info.
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
	f.dups = map[string][]string{}
	for _, n := range names {
		k := KeyOf(n)
		if _, ok := f.names[k]; ok {
			f.dups[k] = append(f.dups[k], n)
			continue
		}
		f.names[k] = n
	}
	return nil
}

// checkKey rejects keys that are not one plain file-name element.
func checkKey(key string) error {
	if key == "" || key[0] == '.' || len(key) > 240 || strings.ContainsAny(key, "/:\x00") {
		return fmt.Errorf("maildir: bad message key %q", key)
	}
	return nil
}

// checkName rejects names that are not "cur/…" or "new/…" message files.
func checkName(name string) error {
	dir, base, ok := strings.Cut(name, "/")
	if !ok || dir != "cur" && dir != "new" || base == "" || base[0] == '.' || strings.ContainsAny(base, "/\x00") {
		return fmt.Errorf("maildir: bad message file name %q", name)
	}
	return nil
}

// Deliver stores the message read from r under key (the stable base name of
// its file, which the caller chooses: mailkeep uses
// "<unix INTERNALDATE>.M<UIDVALIDITY>U<UID>.mailkeep" for IMAP and
// "<unix>.P<16 hex digits of SHA-256(UIDL)>.mailkeep" for POP3). It streams
// r into tmp/<key> through a fixed 64 KiB buffer, sets the file's access and
// modification times to mtime (the INTERNALDATE) and renames it to
// cur/<key>:2,<FlagLetters(flags)>. It returns that name, relative to the
// folder, and the message size.
//
// A file already stored under key, with any flags, in cur/ or new/ (a copy
// a killed run left behind, not in the catalog) is replaced, never kept as
// a duplicate. On error nothing is left in tmp/ and nothing new in cur/.
// Neither the data nor the rename is durable before the next Sync.
func (f *Folder) Deliver(key string, flags []string, mtime time.Time, r io.Reader) (name string, n int64, err error) {
	if err := checkKey(key); err != nil {
		return "", 0, err
	}
	if err := f.loadNames(); err != nil {
		return "", 0, fmt.Errorf("maildir %s: %w", f.dir, err)
	}
	tmp := f.subs["tmp"]
	defer func() {
		if err != nil {
			tmp.Remove(key)
			err = fmt.Errorf("maildir %s: delivering %s: %w", f.dir, key, err)
		}
	}()
	// A tmp file left by a killed run is removed first, so that a file
	// planted there is never opened (O_EXCL below).
	if err := tmp.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", 0, err
	}
	t, err := tmp.OpenFile(key, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	if f.buf == nil {
		f.buf = make([]byte, 64<<10)
	}
	n, err = io.CopyBuffer(onlyWriter{t}, r, f.buf)
	if err == nil {
		err = setMtime(t, mtime)
	}
	if err != nil {
		t.Close()
		return "", 0, err
	}
	name = "cur/" + key + ":2," + FlagLetters(flags)
	if err := safefs.RenameBetween(tmp, key, f.subs["cur"], name[len("cur/"):]); err != nil {
		t.Close()
		return "", 0, err
	}
	f.markDirty("cur")
	f.unsynced = append(f.unsynced, t)
	old := f.dups[key]
	if prev, ok := f.names[key]; ok {
		old = append(old, prev)
	}
	for _, o := range old {
		if o == name {
			continue
		}
		if err := f.remove(o); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// The new file is in place; the caller may retry.
			f.names[key] = name
			return "", 0, fmt.Errorf("removing the older copy %s: %w", o, err)
		}
	}
	delete(f.dups, key)
	f.names[key] = name
	if len(f.unsynced) >= maxUnsynced {
		if err := f.syncFiles(); err != nil {
			return "", 0, err
		}
	}
	return name, n, nil
}

// onlyWriter hides *os.File's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

func (f *Folder) markDirty(sub string) {
	if f.dirty == nil {
		f.dirty = map[string]bool{}
	}
	f.dirty[sub] = true
}

// syncFiles fsyncs and closes the files delivered since the last call,
// syncParallel at a time: the file system groups concurrent fsyncs into
// one journal commit, where one after the other each waits for its own.
func (f *Folder) syncFiles() error {
	files := f.unsynced
	f.unsynced = nil
	errs := make([]error, len(files))
	var g errgroup.Group
	g.SetLimit(syncParallel)
	for i, t := range files {
		g.Go(func() error {
			// Every file is closed, whatever the others do: errs keeps
			// each one's error and the first (by order) is returned.
			errs[i] = t.Sync()
			if err := t.Close(); errs[i] == nil {
				errs[i] = err
			}
			return nil
		})
	}
	g.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("maildir %s: fsync %s: %w", f.dir, files[i].Name(), err)
		}
	}
	return nil
}

// Sync makes delivered messages durable, data and directory entries: an
// fsync of every file delivered since the last Sync (in parallel) and one
// of each directory whose entries changed (deliveries, flag renames,
// removals). Nothing else on the file system is flushed.
func (f *Folder) Sync() error {
	if err := f.syncFiles(); err != nil {
		return err
	}
	for _, sub := range []string{"cur", "new"} {
		if !f.dirty[sub] {
			continue
		}
		if err := f.subs[sub].Sync(); err != nil {
			return fmt.Errorf("maildir %s: fsync %s/: %w", f.dir, sub, err)
		}
		delete(f.dirty, sub)
	}
	return nil
}

// SetFlags renames the message file name ("cur/…" or "new/…") so that its
// info suffix carries flags, moving it to cur/, and returns the new name. A
// missing file gives an error wrapping fs.ErrNotExist. The rename is
// durable after the next Sync.
func (f *Folder) SetFlags(name string, flags []string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	key := KeyOf(name)
	nn := "cur/" + key + ":2," + FlagLetters(flags)
	d, base, err := f.at(name)
	if err != nil {
		return "", err
	}
	if _, err := d.StatRegular(base); err != nil {
		return "", fmt.Errorf("maildir %s: setting flags of %s: %w", f.dir, name, err)
	}
	if nn == name {
		return name, nil
	}
	if err := safefs.RenameBetween(d, base, f.subs["cur"], nn[len("cur/"):]); err != nil {
		return "", fmt.Errorf("maildir %s: setting flags of %s: %w", f.dir, name, err)
	}
	f.markDirty("cur")
	f.markDirty(name[:strings.IndexByte(name, '/')])
	if f.names != nil {
		f.names[key] = nn
	}
	return nn, nil
}

// Find returns the current file name of the message stored under key,
// whatever its flags, for a name recorded before a rename that a crash
// kept out of the catalog. No such message gives an error wrapping
// fs.ErrNotExist.
func (f *Folder) Find(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if f.names == nil {
		if err := f.loadNames(); err != nil {
			return "", fmt.Errorf("maildir %s: %w", f.dir, err)
		}
	}
	if n, ok := f.names[key]; ok {
		if d, base, err := f.at(n); err == nil && f.exists(d, base) {
			return n, nil
		}
	}
	// The cache may be stale (SetFlags from another Folder): look again.
	f.names, f.dups = nil, nil
	if err := f.loadNames(); err != nil {
		return "", fmt.Errorf("maildir %s: %w", f.dir, err)
	}
	if n, ok := f.names[key]; ok {
		return n, nil
	}
	return "", fmt.Errorf("maildir %s: message %s: %w", f.dir, key, fs.ErrNotExist)
}

// Open opens a message file by its name relative to the folder ("cur/…" or
// "new/…"). A symlink or special file there is refused
// (*safefs.UnsafeError).
func (f *Folder) Open(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d, base, err := f.at(name)
	if err != nil {
		return nil, err
	}
	return d.Open(base)
}

func (f *Folder) exists(d *safefs.Dir, base string) bool {
	_, err := d.Lstat(base)
	return err == nil
}

func (f *Folder) remove(name string) error {
	d, base, err := f.at(name)
	if err != nil {
		return err
	}
	f.markDirty(name[:strings.IndexByte(name, '/')])
	return d.Remove(base)
}

// Remove removes a message file by its name relative to the folder (a
// symlink there is removed, never followed).
func (f *Folder) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return f.remove(name)
}

// CleanTmp removes the files in tmp/ whose names end in ".mailkeep": a
// killed run's partial deliveries. Other programs' files stay.
func (f *Folder) CleanTmp() error {
	ents, err := f.subs["tmp"].ReadDir(".")
	if err != nil {
		return fmt.Errorf("maildir %s: %w", f.dir, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".mailkeep") && !e.IsDir() {
			if err := f.subs["tmp"].Remove(e.Name()); err != nil {
				return fmt.Errorf("maildir %s: %w", f.dir, err)
			}
		}
	}
	return nil
}

// Scan lists message files in cur/ and new/ ("cur/…", "new/…"), sorted.
func (f *Folder) Scan() ([]string, error) {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := f.subs[sub].ReadDir(".")
		if err != nil {
			return nil, fmt.Errorf("maildir %s: %w", f.dir, err)
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
