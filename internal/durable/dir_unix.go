//go:build unix

package durable

import (
	"os"
	"syscall"
)

// openDirFlags open only a directory, never blocking on a FIFO.
const openDirFlags = syscall.O_DIRECTORY | syscall.O_NONBLOCK

func syncDirFile(d *os.File) error { return d.Sync() }
