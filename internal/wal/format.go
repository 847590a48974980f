package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// On disk, a log is a directory of segment files, each named by the index
// of its first entry (%020d.wal), so that names sort by index. A segment is
// a header and then records, one per entry, in index order:
//
//	header (16 bytes): magic "dlkW" | version uint32 | first index uint64
//	record:            length uint32 | length crc uint32 | payload crc uint32 |
//	                   payload (length bytes)
//	payload:           index uint64 | term uint64 | type uint8 |
//	                   appended-at unix nanos int64 (0: unset) |
//	                   data length uint32 | data | extensions length uint32 | extensions
//
// Integers are little-endian; the CRCs are CRC-32C. The length has a
// checksum of its own so that a damaged length is told apart from a record
// that a crash cut short: only the latter may run past the end of the file.

const (
	headerLen       = 16
	recordHeaderLen = 12
	payloadFixedLen = 8 + 8 + 1 + 8 + 4 + 4
	formatVersion   = 1
	segmentSuffix   = ".wal"
)

var magic = [4]byte{'d', 'l', 'k', 'W'}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// RecordMax bounds one record's payload. It is far above anything Raft
// appends (dlock caps an entry's commands well below a megabyte); its job
// is to stop a damaged length from asking for gigabytes.
const RecordMax = 64 << 20

// ErrCorrupt is wrapped by Open when a segment fails its checks: a record
// whose checksum does not match (other than a write torn by a crash at the
// very end of the log), entries out of order or missing, or a segment whose
// header is not a dlock log's. The error names the file and the offset.
var ErrCorrupt = errors.New("corrupt log")

// CorruptError is ErrCorrupt about one segment file.
type CorruptError struct {
	Path   string // the segment file
	Offset int64  // where in it the damage starts
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s at byte %d of %s", e.Reason, e.Offset, e.Path)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentSuffix) }

func putHeader(b []byte, first uint64) {
	copy(b[0:4], magic[:])
	binary.LittleEndian.PutUint32(b[4:8], formatVersion)
	binary.LittleEndian.PutUint64(b[8:16], first)
}

// encodedLen is the size of l's record on disk.
func encodedLen(l *raft.Log) int {
	return recordHeaderLen + payloadFixedLen + len(l.Data) + len(l.Extensions)
}

// appendRecord appends l's record to b.
func appendRecord(b []byte, l *raft.Log) []byte {
	start := len(b)
	n := payloadFixedLen + len(l.Data) + len(l.Extensions)
	// The fixed fields up to the data; the extensions length follows the data.
	b = append(b, make([]byte, recordHeaderLen+payloadFixedLen-4)...)
	rec := b[start:]
	binary.LittleEndian.PutUint32(rec[0:4], uint32(n))
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(rec[0:4], crcTable))
	p := rec[recordHeaderLen:]
	binary.LittleEndian.PutUint64(p[0:8], l.Index)
	binary.LittleEndian.PutUint64(p[8:16], l.Term)
	p[16] = byte(l.Type)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	binary.LittleEndian.PutUint64(p[17:25], uint64(at))
	binary.LittleEndian.PutUint32(p[25:29], uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	rec = b[start:]
	binary.LittleEndian.PutUint32(rec[8:12], crc32.Checksum(rec[recordHeaderLen:], crcTable))
	return b
}

// recordLen returns the payload length a record header h holds, and false
// if the header fails its checksum.
func recordLen(h []byte) (uint32, bool) {
	n := binary.LittleEndian.Uint32(h[0:4])
	return n, binary.LittleEndian.Uint32(h[4:8]) == crc32.Checksum(h[0:4], crcTable)
}

// payloadIntact reports whether rec (a whole record) matches its payload
// checksum.
func payloadIntact(rec []byte) bool {
	return binary.LittleEndian.Uint32(rec[8:12]) == crc32.Checksum(rec[recordHeaderLen:], crcTable)
}

// decodePayload fills l from a verified record's payload. The Data and
// Extensions slices alias p.
func decodePayload(p []byte, l *raft.Log) error {
	if len(p) < payloadFixedLen {
		return fmt.Errorf("payload of %d bytes, shorter than the %d every entry has", len(p), payloadFixedLen)
	}
	l.Index = binary.LittleEndian.Uint64(p[0:8])
	l.Term = binary.LittleEndian.Uint64(p[8:16])
	l.Type = raft.LogType(p[16])
	l.AppendedAt = time.Time{}
	if at := int64(binary.LittleEndian.Uint64(p[17:25])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	rest := p[25:]
	dataLen := uint64(binary.LittleEndian.Uint32(rest[0:4]))
	if uint64(len(rest)) < 4+dataLen+4 {
		return fmt.Errorf("data of %d bytes overruns its %d-byte payload", dataLen, len(p))
	}
	l.Data = nilIfEmpty(rest[4 : 4+dataLen])
	rest = rest[4+dataLen:]
	extLen := uint64(binary.LittleEndian.Uint32(rest[0:4]))
	if uint64(len(rest)) != 4+extLen {
		return fmt.Errorf("extensions of %d bytes do not end its %d-byte payload", extLen, len(p))
	}
	l.Extensions = nilIfEmpty(rest[4:])
	return nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
