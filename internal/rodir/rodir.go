// Package rodir gives tests a read-only view of a directory: a bind mount
// remounted read-only (EROFS on every write, like a snapshot or a
// write-protected backup disk). It needs root, which CI has.
package rodir

import (
	"os"
	"os/exec"
	"testing"
)

// Bind mounts dir read-only on a new temporary directory and returns it;
// the mount is removed when the test ends. Without root it skips the test,
// or fails it when CI is set.
func Bind(t testing.TB, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("read-only media tests bind-mount a directory and need root")
		}
		t.Skip("needs root to bind-mount a read-only view (CI runs it)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "--bind", dir, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v %s", err, out)
	}
	if f, err := os.Create(mnt + "/.rodir-probe"); err == nil {
		f.Close()
		t.Fatalf("%s is still writable after remount ro", mnt)
	}
	return mnt
}
