//go:build !linux

package textindex

// lowerPriority: only Linux sets a priority per thread; elsewhere the
// index is written at the process's priority.
func lowerPriority(int) {}
