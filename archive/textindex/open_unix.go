//go:build unix

package textindex

import "syscall"

// openNoFollow refuses a symlink at the index file (checkFiles has
// refused one already; this closes the window after it).
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_CLOEXEC
