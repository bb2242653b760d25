//go:build !linux

package badger

import (
	"errors"
	"math"
)

// freeSpace cannot read free space on this system: the guard always
// allows writes here.
func freeSpace(string) (int64, bool, error) { return math.MaxInt64, false, nil }

// allocate is not done on this system: no reserve file is kept.
func allocate(string, int64) error { return errors.ErrUnsupported }
