//go:build !unix

package storetest

import "io/fs"

func allocated(fi fs.FileInfo) int64 { return fi.Size() }
