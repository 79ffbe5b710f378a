package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/mailkeep/mailkeep/internal/durable"
)

// CheckTarget returns nil when to does not exist or is an empty directory,
// and an error wrapping ErrTargetNotEmpty otherwise (a file, a symbolic
// link, a directory with entries).
func CheckTarget(to string) error {
	st, err := os.Lstat(to)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("export target %s: %w", to, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("export target %s %w", to, ErrTargetNotEmpty)
	}
	d, err := os.Open(to)
	if err != nil {
		return fmt.Errorf("export target %s: %w", to, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("export target %s %w", to, ErrTargetNotEmpty)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("export target %s: %w", to, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents (0700), fsyncing the
// parent of each directory it creates, so that they survive a crash.
func mkdirAll(dir string) error { return durable.MkdirAll(dir, 0o700) }

func syncDir(dir string) error { return durable.SyncDir(dir) }

// batch holds written but not yet durable files (Maildir, eml): one
// syncfs(2) makes a batch's data durable, then the files are renamed to
// their final names and the directories fsynced. An fsync per message
// would cost more than the export; a final name never shows a file
// whose data is not on disk.
type batch struct {
	tmp, final []string
	bytes      int64
}

const (
	batchFiles = 1000
	batchBytes = 64 << 20
)

func (b *batch) add(tmp, final string, size int64) error {
	b.tmp = append(b.tmp, tmp)
	b.final = append(b.final, final)
	b.bytes += size
	if len(b.tmp) >= batchFiles || b.bytes >= batchBytes {
		return b.flush()
	}
	return nil
}

// flush makes the pending files durable under their final names.
func (b *batch) flush() error {
	if len(b.tmp) == 0 {
		return nil
	}
	if err := syncFiles(b.tmp); err != nil {
		return err
	}
	var dirs []string
	for i, t := range b.tmp {
		if err := renameNew(t, b.final[i]); err != nil {
			return err
		}
		b.tmp[i] = ""
		if dir := filepath.Dir(b.final[i]); !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	b.tmp, b.final, b.bytes = b.tmp[:0], b.final[:0], 0
	return nil
}

// abort removes the pending files.
func (b *batch) abort() {
	for _, t := range b.tmp {
		if t != "" {
			os.Remove(t)
		}
	}
	b.tmp, b.final, b.bytes = b.tmp[:0], b.final[:0], 0
}
