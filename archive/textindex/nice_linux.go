package textindex

import (
	"runtime"
	"syscall"
)

// lowerPriority moves the calling goroutine to an OS thread of its own
// and gives that thread the nice value n (Linux nices threads one by one),
// so that it gets only the CPU time that other work leaves. The goroutine
// must not unlock the thread: it is destroyed when the goroutine exits,
// and the priority with it (an unprivileged process cannot raise it back).
func lowerPriority(n int) {
	if n <= 0 {
		return
	}
	runtime.LockOSThread()
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), n)
}
