package verify

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/internal/safefs"
)

// ownFiles are the files at the archive's top level that belong to it.
var ownFiles = map[string]bool{
	"catalog.db": true, "catalog.db-wal": true, "catalog.db-shm": true, "catalog.db-journal": true, "lock": true, "catalog.journal": true,
	"index.db": true, "index.db-wal": true, "index.db-shm": true, "index.db-journal": true,
}

// asideFiles are prefixes of the files mailkeep keeps aside (never
// deletes): an old catalog moved by reindex, a damaged journal.
var asideFiles = []string{"catalog.db.old-", "catalog.journal.damaged-", "catalog.journal.old-"}

func isOwnFile(name string) bool {
	if ownFiles[name] {
		return true
	}
	for _, p := range asideFiles {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// strays walks the whole archive directory and reports every file that
// is neither the archive's own nor a folder's file. Maildir folders' cur/,
// new/ and tmp/ are left to the folder checks, which match them against
// the catalog message by message.
func (v *verifier) strays(folders []*catalog.Folder) error {
	mboxFiles := map[string]bool{}
	mdDirs := map[string]bool{}
	index := func(folders []*catalog.Folder) {
		for _, f := range folders {
			p := filepath.Clean(f.Path)
			if v.a.Format == archive.Maildir {
				mdDirs[p] = true
			} else {
				mboxFiles[p] = true
			}
		}
	}
	index(folders)
	reloaded := false
	// known re-reads the folder list once, for folders a running backup
	// created after verify read it.
	known := func(rel string) bool {
		if !reloaded {
			reloaded = true
			if fl, err := v.a.Cat.Folders(v.ctx); err == nil {
				index(fl)
			}
		}
		return mboxFiles[rel] || mdDirs[filepath.Dir(rel)] || mdDirs[filepath.Dir(filepath.Dir(rel))]
	}
	return safefs.WalkDir(v.a.Dir, func(p string, d fs.DirEntry, err error) error {
		if cerr := v.canceled(); cerr != nil {
			return cerr
		}
		rel, rerr := filepath.Rel(v.a.Dir, p)
		if rerr != nil {
			return rerr
		}
		if err != nil {
			v.add(Finding{File: rel, Kind: Unreadable, Detail: err.Error()}, true)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if mdDirs[filepath.Dir(rel)] && isMaildirSub(filepath.Base(rel)) {
				return fs.SkipDir // checked by the folder
			}
			return nil
		}
		switch {
		case filepath.Dir(rel) == "." && isOwnFile(rel):
		case mboxFiles[rel]:
		case mdDirs[filepath.Dir(rel)] && filepath.Base(rel) == "maildirfolder":
		case mdDirs[filepath.Dir(rel)] && otherMailProgram(filepath.Base(rel)):
			v.add(Finding{File: rel, Kind: Stray, Detail: "written by another mail program that opened the Maildir (mailkeep ignores it)"}, false)
		case known(rel) && v.isPending():
			v.add(Finding{File: rel, Kind: Leftover, Detail: "in a folder a running backup created after verify started"}, false)
		default:
			detail := "a file the catalog does not account for"
			if !d.Type().IsRegular() {
				detail = fmt.Sprintf("a %s the catalog does not account for", typeName(d.Type()))
			}
			v.add(Finding{File: rel, Kind: Stray, Detail: detail}, true)
		}
		return nil
	})
}

func isMaildirSub(name string) bool { return name == "cur" || name == "new" || name == "tmp" }

// otherMailProgram recognises the index and state files that Dovecot,
// Courier and others leave in a Maildir they open.
func otherMailProgram(name string) bool {
	for _, p := range []string{"dovecot", "courier", "subscriptions", "maildirsize", ".mh_sequences", ".uidvalidity", ".mbsyncstate", ".isyncuidmap"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
