//go:build !linux

package badger

import "math"

// freeSpace cannot read free space on this system: the guard always
// allows writes here.
func freeSpace(string) (int64, bool, error) { return math.MaxInt64, false, nil }
