package badger

import (
	"os"
	"syscall"
)

// freeSpace returns the bytes of dir's filesystem available to the process
// and whether it is mounted read-only.
func freeSpace(dir string) (int64, bool, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	const stRdonly = 0x1 // ST_RDONLY
	return int64(st.Bavail) * st.Bsize, st.Flags&stRdonly != 0, nil
}

// allocate makes a file of n bytes of real, allocated blocks.
func allocate(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
