package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/archive/mboxrd"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// ReindexStats says what Reindex found and did.
type ReindexStats struct {
	Format Format
	// MovedAside names the old catalog files, renamed (never deleted).
	MovedAside []string
	// Replayed counts the journal's transactions applied.
	Replayed int
	// JournalDamaged counts journal lines skipped (checksum failed);
	// NoJournal is set when there was no journal at all.
	JournalDamaged int
	NoJournal      bool
	Folders        int
	// Known counts messages whose catalog rows came back from the journal
	// (UID or UIDL, flags, keywords, dates, expunge state) and whose bytes
	// were found where the rows say.
	Known int
	// Found counts messages that only the files know: they get rows with
	// what the files tell (size, checksum, date, headers, Maildir flags),
	// without UID, UIDL or keywords.
	Found int
	// Missing counts rows from the journal whose bytes were not found where
	// they say (verify names them).
	Missing int
	// Problems are files or parts of files that could not be read; they
	// are left as they are.
	Problems []string
}

// Reindex rebuilds the catalog of the archive in dir from its journal and
// its mail files, which stay untouched. An existing catalog is moved aside
// (catalog.db.old-<time>, with its -wal and -shm). It takes the archive
// lock like a backup.
func Reindex(ctx context.Context, dir string, now time.Time) (*ReindexStats, error) {
	st := &ReindexStats{}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("archive %s: not a directory", dir)
	}
	lf, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	dbPath := filepath.Join(dir, "catalog.db")
	jPath := filepath.Join(dir, JournalName)
	stamp := now.UTC().Format("20060102T150405Z")
	for _, suf := range []string{"", "-wal", "-shm"} {
		p := dbPath + suf
		if _, err := os.Lstat(p); err == nil {
			to := dbPath + ".old-" + stamp + suf
			if err := os.Rename(p, to); err != nil {
				return nil, fmt.Errorf("archive %s: moving the old catalog aside: %w", dir, err)
			}
			st.MovedAside = append(st.MovedAside, to)
		}
	}
	cat, err := catalog.Open(dbPath)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	defer cat.Close()
	if _, err := os.Lstat(jPath); errors.Is(err, os.ErrNotExist) {
		st.NoJournal = true
	} else {
		n, js, err := cat.Replay(ctx, jPath, 0)
		if err != nil {
			return nil, fmt.Errorf("archive %s: replaying the journal: %w", dir, err)
		}
		st.Replayed, st.JournalDamaged = n, js.Damaged
	}
	if _, err := cat.AttachJournal(ctx, jPath); err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	format, err := cat.Meta(ctx, "format")
	if err != nil {
		return nil, err
	}
	if format == "" {
		f, err := detectFormat(dir)
		if err != nil {
			return nil, err
		}
		format = string(f)
		if err := cat.SetMeta(ctx, "format", format); err != nil {
			return nil, err
		}
	}
	st.Format = Format(format)
	a := &Archive{Dir: dir, Format: st.Format, Cat: cat}
	trusted := !st.NoJournal && st.JournalDamaged == 0
	run, err := cat.BeginRun(ctx, "reindex", "files", now)
	if err != nil {
		return nil, err
	}
	if err := a.reindexFiles(ctx, run, trusted, st); err != nil {
		return nil, err
	}
	outcome := "ok"
	if len(st.Problems) > 0 {
		outcome = "partial"
	}
	if err := cat.EndRun(ctx, catalog.Run{ID: run, Ended: time.Now(), Outcome: outcome, Fetched: st.Found}); err != nil {
		return nil, err
	}
	return st, nil
}

// detectFormat tells an archive's format from its files.
func detectFormat(dir string) (Format, error) {
	if ents, err := os.ReadDir(filepath.Join(dir, "maildir")); err == nil && len(ents) > 0 {
		return Maildir, nil
	}
	var found Format
	err := filepath.WalkDir(filepath.Join(dir, "mbox"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return nil
		}
		for _, f := range []Format{MboxZstd, MboxGzip, Mbox} {
			if d.Type().IsRegular() && strings.HasSuffix(d.Name(), "."+string(f)) {
				found = f
				return filepath.SkipAll
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", fmt.Errorf("archive %s: no mail files and no journal: nothing to rebuild a catalog from", dir)
	}
	return found, nil
}

// folderFiles lists the folders the files hold: archive-relative path ->
// folder name (for folders no catalog row names).
func (a *Archive) folderFiles(st *ReindexStats) (map[string]string, error) {
	out := map[string]string{}
	if a.Format == Maildir {
		root := filepath.Join(a.Dir, "maildir")
		ents, err := os.ReadDir(root)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if isDir(filepath.Join(root, "cur")) {
			out["maildir"] = "INBOX"
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") || !e.IsDir() || !isDir(filepath.Join(root, e.Name(), "cur")) {
				continue
			}
			name := e.Name()
			if comps, err := layout.ParseMaildirPath(e.Name()); err == nil {
				name = layout.Join(comps, '/')
			}
			out[filepath.Join("maildir", e.Name())] = name
		}
		return out, nil
	}
	ext := "." + string(a.Format)
	root := filepath.Join(a.Dir, "mbox")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == root {
				return filepath.SkipAll
			}
			st.Problems = append(st.Problems, err.Error())
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(a.Dir, p)
		if !d.Type().IsRegular() {
			st.Problems = append(st.Problems, fmt.Sprintf("%s: not a regular file (left alone)", rel))
			return nil
		}
		inner, ok := strings.CutSuffix(strings.TrimPrefix(filepath.ToSlash(rel), "mbox/"), ext)
		if !ok {
			return nil
		}
		name := inner
		var comps []string
		for part := range strings.SplitSeq(inner, "/") {
			c, err := layout.UnescapeComponent(part)
			if err != nil {
				comps = nil
				break
			}
			comps = append(comps, c)
		}
		if comps != nil {
			name = layout.Join(comps, '/')
		}
		out[rel] = name
		return nil
	})
	return out, err
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// reindexFiles reconciles the catalog (as the journal rebuilt it) with the
// files: rows for messages only the files hold, folders only the files
// hold, and counts of what matched.
func (a *Archive) reindexFiles(ctx context.Context, run int64, trusted bool, st *ReindexStats) error {
	files, err := a.folderFiles(st)
	if err != nil {
		return err
	}
	folders, err := a.Cat.Folders(ctx)
	if err != nil {
		return err
	}
	byPath := map[string]*catalog.Folder{}
	for _, f := range folders {
		byPath[f.Path] = f
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if byPath[p] != nil {
			continue
		}
		name := files[p]
		if _, err := a.Cat.Folder(ctx, name); err == nil {
			name = p // the name is taken by a folder stored elsewhere
		}
		f, err := a.Cat.EnsureFolder(ctx, name, '/', "", p)
		if err != nil {
			return err
		}
		byPath[p] = f
		folders = append(folders, f)
	}
	folders = ownFolders(folders) // a Gmail label view has no file
	st.Folders = len(folders)
	for _, f := range folders {
		known := trusted && f.CommittedSize > 0
		var err error
		if a.Format == Maildir {
			err = a.reindexMaildir(ctx, f, run, st)
		} else {
			err = a.reindexMbox(ctx, f, run, known, st)
		}
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
	}
	return nil
}

// found is a message found in a file.
type found struct {
	pos    mboxfile.Pos
	size   int64
	sha    string
	rowSHA string // SHA-256 of the first row.Size bytes, when a row is at pos
	sender string
	date   time.Time
	hdr    headerInfo
}

func (a *Archive) reindexMbox(ctx context.Context, f *catalog.Folder, run int64, known bool, st *ReindexStats) error {
	rows, err := a.Cat.All(ctx, f.ID)
	if err != nil {
		return err
	}
	at := map[mboxfile.Pos]*catalog.Message{}
	for _, m := range rows {
		at[mboxfile.Pos{FrameOffset: m.FrameOffset, Offset: m.FramePos}] = m
	}
	var msgs []*found
	goodEnd := int64(0)
	if _, err := safefs.Lstat(a.Dir, f.Path); err == nil {
		msgs, goodEnd, err = scanMbox(a.Dir, f.Path, a.Format.codec(), at)
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("folder %q: %s: %v (messages after this point were not scanned)", f.Name, f.Path, err))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	seen := map[mboxfile.Pos]bool{}
	var orphans []*catalog.Message
	for _, m := range msgs {
		if row := at[m.pos]; row != nil {
			seen[m.pos] = true
			if m.rowSHA == row.SHA256 {
				st.Known++
			} else {
				st.Problems = append(st.Problems, fmt.Sprintf("folder %q uid %d: the bytes at %s frame %d+%d differ from the catalogued checksum", f.Name, row.UID, f.Path, m.pos.FrameOffset, m.pos.Offset))
			}
			continue
		}
		if known && m.pos.FrameOffset >= f.CommittedSize {
			continue // an uncommitted tail; repair handles it
		}
		orphans = append(orphans, &catalog.Message{
			InternalDate: m.date,
			Size:         m.size,
			SHA256:       m.sha,
			MessageID:    m.hdr.MessageID,
			Sender:       m.hdr.From,
			Subject:      m.hdr.Subject,
			ReceivedDate: m.hdr.Received,
			File:         f.Path,
			FrameOffset:  m.pos.FrameOffset,
			FramePos:     m.pos.Offset,
		})
	}
	for p := range at {
		if !seen[p] {
			st.Missing++
		}
	}
	committed := f.CommittedSize
	if !known || len(orphans) > 0 {
		committed = max(committed, goodEnd)
	}
	if len(orphans) == 0 && committed == f.CommittedSize {
		return nil
	}
	st.Found += len(orphans)
	return a.Cat.Commit(ctx, f.ID, committed, 0, run, orphans)
}

// scanMbox reads an mbox file's messages front to back. For each message
// it gives its position, exact size and SHA-256 (and, where a catalog row
// sits at that position, the SHA-256 of the row's size of bytes, since an
// mbox message stored without a final newline reads back with one).
func scanMbox(root, rel string, codec mboxfile.Codec, at map[mboxfile.Pos]*catalog.Message) ([]*found, int64, error) {
	sr, err := mboxfile.NewStreamReader(root, rel, codec)
	if err != nil {
		return nil, 0, err
	}
	defer sr.Close()
	br := bufio.NewReaderSize(sr, 64<<10)
	var (
		out    []*found
		cur    *found
		h      hash.Hash
		rh     hash.Hash
		rowLen int64
		head   []byte
		off    int64
		bol    = true
		held   bool
	)
	write := func(p []byte) {
		if len(p) == 0 {
			return
		}
		h.Write(p)
		if rh != nil && cur.size < rowLen {
			rh.Write(p[:min(int64(len(p)), rowLen-cur.size)])
		}
		if len(head) < sniffLimit {
			head = append(head, p[:min(len(p), sniffLimit-len(head))]...)
		}
		cur.size += int64(len(p))
	}
	finish := func() {
		if cur == nil {
			return
		}
		cur.sha = hex.EncodeToString(h.Sum(nil))
		if rh != nil {
			cur.rowSHA = hex.EncodeToString(rh.Sum(nil))
		}
		cur.hdr = parseHeader(head)
		if cur.date.IsZero() {
			cur.date = cur.hdr.Received
		}
		out = append(out, cur)
		cur = nil
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			start := off
			off += int64(len(chunk))
			if bol && bytes.HasPrefix(chunk, []byte("From ")) {
				finish()
				held = false
				cur = &found{pos: sr.Pos(start)}
				cur.sender, cur.date, _ = mboxrd.ParseFromLine(string(chunk))
				h = sha256.New()
				rh, rowLen = nil, 0
				if row := at[cur.pos]; row != nil {
					rh, rowLen = sha256.New(), row.Size
				}
				head = head[:0]
				bol = chunk[len(chunk)-1] == '\n'
				for !bol && errors.Is(err, bufio.ErrBufferFull) { // an overlong From line
					chunk, err = br.ReadSlice('\n')
					off += int64(len(chunk))
					bol = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
				}
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					break
				}
				continue
			}
			if cur != nil {
				if held {
					write([]byte{'\n'})
					held = false
				}
				data := chunk
				if bol && isQuotedFrom(chunk) {
					data = chunk[1:]
				}
				if data[len(data)-1] == '\n' {
					write(data[:len(data)-1])
					held = true
				} else {
					write(data)
				}
			}
			bol = chunk[len(chunk)-1] == '\n'
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			finish()
			return out, sr.GoodEnd(), nil
		}
		// A damaged or torn frame: the message being read is lost to
		// the scan; the ones before it are whole.
		return out, sr.GoodEnd(), err
	}
	return out, sr.GoodEnd(), nil
}

// isQuotedFrom reports whether a line is ^>+From .
func isQuotedFrom(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(line[i:], []byte("From "))
}

func (a *Archive) reindexMaildir(ctx context.Context, f *catalog.Folder, run int64, st *ReindexStats) error {
	rows, err := a.Cat.All(ctx, f.ID)
	if err != nil {
		return err
	}
	byKey := map[string]*catalog.Message{}
	for _, m := range rows {
		byKey[maildir.KeyOf(filepath.Base(m.File))] = m
	}
	dir := filepath.Join(a.Dir, f.Path)
	if !isDir(filepath.Join(dir, "cur")) {
		st.Missing += len(rows)
		return nil
	}
	md, err := maildir.OpenFolderIn(a.Dir, f.Path, isSubMaildir(f.Path))
	if err != nil {
		return err
	}
	defer md.Close()
	names, err := md.Scan()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var orphans []*catalog.Message
	for _, n := range names {
		key := maildir.KeyOf(filepath.Base(n))
		rel := filepath.Join(f.Path, n)
		if row := byKey[key]; row != nil {
			seen[key] = true
			st.Known++
			if row.File != rel {
				if err := a.Cat.SetFile(ctx, row.ID, rel); err != nil {
					return err
				}
			}
			continue
		}
		m, err := maildirOrphan(a.Dir, rel)
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("folder %q: %s: %v", f.Name, rel, err))
			continue
		}
		m.File = rel
		orphans = append(orphans, m)
	}
	for k := range byKey {
		if !seen[k] {
			st.Missing++
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	st.Found += len(orphans)
	return a.Cat.Commit(ctx, f.ID, 0, 0, run, orphans)
}

// maildirOrphan describes a Maildir file that no catalog row names.
func maildirOrphan(root, rel string) (*catalog.Message, error) {
	path := filepath.Join(root, rel)
	fh, err := safefs.Open(root, rel)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	h := sha256.New()
	br := bufio.NewReaderSize(fh, 64<<10)
	hdr := sniffHeader(br)
	n, err := io.Copy(h, br)
	if err != nil {
		return nil, err
	}
	var flags []string
	if _, info, ok := strings.Cut(filepath.Base(path), ":2,"); ok {
		flags = maildir.ParseFlagLetters(info)
	}
	return &catalog.Message{
		InternalDate: fi.ModTime(),
		Flags:        flags,
		Size:         n,
		SHA256:       hex.EncodeToString(h.Sum(nil)),
		MessageID:    hdr.MessageID,
		Sender:       hdr.From,
		Subject:      hdr.Subject,
		ReceivedDate: hdr.Received,
	}, nil
}
