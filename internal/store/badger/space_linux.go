package badger

import "syscall"

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
