package storetest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DiskUsage is the disk space the files under dir take: their allocated
// blocks where the system says (an engine may preallocate files it has not
// filled yet), else their sizes.
func DiskUsage(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += allocated(fi)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Tmpfs mounts a tmpfs of size (such as "64m") for the test, for the
// storage-fault tests that must fill a real, small filesystem. Mounting
// needs root, as CI runs: elsewhere the test says loudly why it is
// skipped, and under CI=true it fails instead.
func Tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "SKIPPED: the storage-fault tests need a small real filesystem, and mounting a tmpfs failed (run as root, as CI does): " +
			strings.TrimSpace(string(out)) + ": " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}
