package wal

import (
	"os"
	"syscall"
)

// datasync is fdatasync: the file's data and the size needed to read it
// back, without its other metadata (times), which a log does not need.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
