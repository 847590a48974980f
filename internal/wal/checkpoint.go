package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// A crash tears only the last write, so Open may drop only what the last
// append wrote. A log cut short by other means (a file truncated, a
// damaged length that seems to run past the end) would look the same. The
// checkpoint tells the two apart: a small file recording an index through
// which the log was synced, rewritten at most every checkpointEvery and on
// Close. A log that, after Open drops a torn write, ends before it is
// ErrCorrupt. Entries appended since the last checkpoint are not covered.
//
// The file is 12 bytes: the index (uint64) and its CRC-32C (uint32),
// little-endian, rewritten in place with one write, which a sector holds
// whole.

const (
	checkpointName  = "checkpoint"
	checkpointLen   = 12
	checkpointEvery = time.Second
)

// checkpoint is the open checkpoint file.
type checkpoint struct {
	f     *os.File
	index uint64    // what the file says
	at    time.Time // when it was last written
}

// openCheckpoint opens (creating) dir's checkpoint and reads it. A file
// that is missing, empty or zero says 0.
func openCheckpoint(dir string) (*checkpoint, error) {
	path := filepath.Join(dir, checkpointName)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dlock wal: read %q: %w", path, err)
	}
	var index uint64
	switch {
	case len(b) == 0 || allZero(b):
	case len(b) != checkpointLen:
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("a checkpoint of %d bytes, want %d", len(b), checkpointLen)}
	case binary.LittleEndian.Uint32(b[8:12]) != crc32.Checksum(b[:8], crcTable):
		return nil, &CorruptError{Path: path, Reason: "a checkpoint that fails its checksum"}
	default:
		index = binary.LittleEndian.Uint64(b[:8])
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dlock wal: open %q: %w", path, err)
	}
	if len(b) == 0 {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &checkpoint{f: f, index: index}, nil
}

// set records that the log is synced through index (or, lowering it, that
// entries after index are about to be deleted).
func (c *checkpoint) set(index uint64, now time.Time) error {
	var b [checkpointLen]byte
	binary.LittleEndian.PutUint64(b[:8], index)
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(b[:8], crcTable))
	if err := writeSync(c.f, b[:], 0); err != nil {
		return fmt.Errorf("dlock wal: write checkpoint %q: %w", c.f.Name(), err)
	}
	c.index, c.at = index, now
	return nil
}
