package storetest

import (
	"io/fs"
	"path/filepath"
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
