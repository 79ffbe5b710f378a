package restore

import (
	"errors"
	"fmt"
	"strings"
)

// ErrCollision marks source folders that would land in one destination
// folder. Run refuses them before creating or appending anything, unless
// Options.RenameCollisions.
var ErrCollision = errors.New("source folders would be merged into one destination folder")

// Collision is two or more source folders with one destination name.
type Collision struct {
	Dest    string   // destination folder
	Folders []string // source folders, in source order
}

// CollisionError lists every collision of a restore (errors.Is
// ErrCollision).
type CollisionError struct{ Collisions []Collision }

func (e *CollisionError) Error() string {
	var parts []string
	for _, c := range e.Collisions {
		q := make([]string, len(c.Folders))
		for i, f := range c.Folders {
			q[i] = fmt.Sprintf("%q", f)
		}
		parts = append(parts, fmt.Sprintf("folders %s would all be restored into %q", strings.Join(q, " and "), c.Dest))
	}
	return fmt.Sprintf("%v: %s (restore them separately with --folder/--exclude and --prefix, or give --rename-collisions)", ErrCollision, strings.Join(parts, "; "))
}

func (e *CollisionError) Unwrap() error { return ErrCollision }

// Renamed is a source folder restored under another name than its own
// mapping, to keep it apart from another (Options.RenameCollisions).
type Renamed struct {
	Folder  string `json:"folder"`  // source folder
	Dest    string `json:"dest"`    // destination folder
	Instead string `json:"instead"` // the destination folder it would have shared
}

// planned is one selected source folder and where it goes.
type planned struct {
	f   Folder
	dst string
	err error
}

// plan computes the whole destination tree before anything is created:
// each folder's destination name, with special-use mapping given up where
// two folders would share it (a folder with the attribute wins over one
// with a well-known name; a source folder of that very name wins over
// both), then collisions: an error naming them, or renames.
func (r *run) plan(folders []Folder) ([]planned, error) {
	ps := make([]planned, len(folders))
	plainOf := map[string]int{} // collision key of each plain name -> folder
	for i, f := range folders {
		ps[i].f = f
		ps[i].dst, ps[i].err = r.plainName(f, 1)
		if ps[i].err == nil {
			if _, ok := plainOf[r.collisionKey(ps[i].dst)]; !ok {
				plainOf[r.collisionKey(ps[i].dst)] = i
			}
		}
	}
	// Special-use mapping, where it merges nothing.
	granted := map[string]int{}
	for pass := 0; pass < 2; pass++ { // attributes first, then well-known names
		for i, f := range folders {
			if (pass == 0) != (f.SpecialUse != "") {
				continue
			}
			d, ok := r.specialName(f)
			if !ok {
				continue
			}
			k := r.collisionKey(d)
			if j, ok := plainOf[k]; ok && j != i {
				r.log.Info("special-use mapping given up: a source folder has that name", "folder", f.Name, "special", d, "kept", folders[j].Name)
				continue
			}
			if j, ok := granted[k]; ok {
				r.log.Info("special-use mapping given up: another folder goes there", "folder", f.Name, "special", d, "kept", folders[j].Name)
				continue
			}
			granted[k] = i
			ps[i].dst, ps[i].err = d, nil
		}
	}
	// Collisions.
	at := map[string]int{}
	var coll []Collision
	collIdx := map[string]int{}
	for i := range ps {
		if ps[i].err != nil {
			continue
		}
		k := r.collisionKey(ps[i].dst)
		j, taken := at[k]
		if !taken {
			at[k] = i
			continue
		}
		if !r.opt.RenameCollisions {
			if c, ok := collIdx[k]; ok {
				coll[c].Folders = append(coll[c].Folders, ps[i].f.Name)
			} else {
				collIdx[k] = len(coll)
				coll = append(coll, Collision{Dest: ps[j].dst, Folders: []string{ps[j].f.Name, ps[i].f.Name}})
			}
			continue
		}
		instead := ps[i].dst
		for n := 2; ; n++ {
			d, err := r.plainName(ps[i].f, n)
			if err != nil {
				ps[i].err = err
				break
			}
			if _, used := at[r.collisionKey(d)]; !used && !r.plannedElsewhere(ps, d) {
				ps[i].dst = d
				at[r.collisionKey(d)] = i
				break
			}
		}
		if ps[i].err == nil {
			r.log.Warn("folder renamed on the destination, to keep it apart from another", "folder", ps[i].f.Name, "to", ps[i].dst, "instead_of", instead, "other", ps[j].f.Name)
			r.stats.Renamed = append(r.stats.Renamed, Renamed{Folder: ps[i].f.Name, Dest: ps[i].dst, Instead: instead})
		}
	}
	if len(coll) > 0 {
		return nil, &CollisionError{Collisions: coll}
	}
	return ps, nil
}

// plannedElsewhere reports whether a later folder's own name is d (a
// rename must not take the name of a folder not yet placed).
func (r *run) plannedElsewhere(ps []planned, d string) bool {
	k := r.collisionKey(d)
	for _, p := range ps {
		if p.err == nil && r.collisionKey(p.dst) == k {
			return true
		}
	}
	return false
}

// collisionKey is a destination name as the destination compares it:
// INBOX (and the INBOX of INBOX's children) in any case is one name.
func (r *run) collisionKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if r.delim != 0 && hasPrefixFold(name, "INBOX"+string(r.delim)) {
		return "INBOX" + name[5:]
	}
	return name
}

// planExtra is what the plan restores beyond its source folders' own
// messages: copies into label folders (folders mode), less the messages
// that a folder labels are drawn from (All Mail) leaves to their labels'
// folders. Folders that failed to plan count nothing.
func (r *run) planExtra(ps []planned) (int, int64) {
	l, ok := r.src.(*labeled)
	if !ok {
		return 0, 0
	}
	var n int
	var b int64
	for _, p := range ps {
		if p.err != nil {
			continue
		}
		c, m := l.planCount(p.f)
		n += c.n - m.n
		b += c.bytes - m.bytes
	}
	return n, b
}
