//go:build windows

package durable

import (
	"fmt"
	"os"
)

const openDirFlags = 0

// syncDirFile checks that d is a directory. Windows cannot FlushFileBuffers
// a directory handle, and NTFS journals its metadata: a rename or create
// is durable once the file's own data is synced.
func syncDirFile(d *os.File) error {
	fi, err := d.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d.Name())
	}
	return nil
}
