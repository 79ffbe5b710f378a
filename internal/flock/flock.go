// Package flock takes an exclusive, non-blocking lock on an open file:
// flock(2) on Unix, LockFileEx on Windows. The lock goes with the process
// if it dies, and with the file when it is closed.
package flock

import "errors"

// ErrWouldBlock is matched (errors.Is) when another process (or another
// open file description) holds the lock.
var ErrWouldBlock = errors.New("file is locked by another process")
