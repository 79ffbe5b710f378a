//go:build !linux && !darwin && !freebsd

package catalog

// fsReadOnly reports whether dir is on a file system mounted read-only:
// unknown here, so no; opening for writing then fails with EROFS.
func fsReadOnly(dir string) bool { return false }
