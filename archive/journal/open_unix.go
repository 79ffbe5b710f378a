//go:build unix

package journal

import "syscall"

// openNoFollow refuses a symlink at the journal and never blocks on a FIFO.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
