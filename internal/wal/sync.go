package wal

import (
	"fmt"
	"os"
)

// writeSync writes b at off and syncs the file's data.
func writeSync(f *os.File, b []byte, off int64) error {
	if _, err := f.WriteAt(b, off); err != nil {
		return err
	}
	return datasync(f)
}

// truncateSync cuts f to size and syncs it.
func truncateSync(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return datasync(f)
}

// syncDir syncs a directory, so that files created in it or removed from
// it stay so after a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("dlock wal: open %q to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("dlock wal: sync %q: %w", dir, err)
	}
	return nil
}
