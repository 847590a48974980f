package wal

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/raft"
)

// scanned is what scan found in a segment: where each record starts, and
// where the last intact one ends.
type scanned struct {
	offs []int64
	end  int64
}

// scan checks a segment's bytes: the header, then every record's checksums
// and index, which must run on from first. In the newest segment (tail) a
// torn write is allowed: a record cut short by the end of the file, or a
// bad record with an unwritten sector in it (see torn). scan then stops
// there and end says where. Anything else is a *CorruptError (its Path is
// left to the caller).
func scan(data []byte, first uint64, tail bool) (scanned, error) {
	var sc scanned
	var hdr [headerLen]byte
	putHeader(hdr[:], first)
	if tail && (allZero(data) || (len(data) < headerLen && bytes.HasPrefix(hdr[:], data))) {
		return sc, nil // created but torn before its first append was synced
	}
	if len(data) < headerLen {
		return sc, &CorruptError{Reason: fmt.Sprintf("a segment of %d bytes, shorter than its header", len(data))}
	}
	if err := checkHeader(data[:headerLen], hdr[:]); err != nil {
		return sc, err
	}
	pos, want := int64(headerLen), first
	var l raft.Log
	for pos < int64(len(data)) {
		recEnd, reason := nextRecord(data, pos)
		if reason == "" {
			if reason := decodeEntry(data[pos:recEnd], want, &l); reason != "" {
				return sc, &CorruptError{Offset: pos, Reason: reason}
			}
			sc.offs = append(sc.offs, pos)
			pos = recEnd
			want++
			continue
		}
		if tail && (reason == cutShort || torn(data, pos, recEnd)) {
			break // a torn write: never synced, so never acknowledged
		}
		if reason == cutShort {
			reason = "a record cut short by the end of a segment that is not the newest"
		}
		return sc, &CorruptError{Offset: pos, Reason: fmt.Sprintf("%s (entry %d)", reason, want)}
	}
	if !tail && len(sc.offs) == 0 {
		// Segments are created with their first entries: an older one
		// with none has lost them.
		return sc, &CorruptError{Offset: pos, Reason: "a segment with no entries that is not the newest"}
	}
	sc.end = pos
	return sc, nil
}

// cutShort is nextRecord's reason for a record that runs past the end of
// the data.
const cutShort = "a record cut short"

// nextRecord checks the checksums of the record at pos and returns where
// it ends, and if it is not intact why, with where it ends as far as its
// header can be trusted.
func nextRecord(data []byte, pos int64) (end int64, reason string) {
	rest := data[pos:]
	if len(rest) < recordHeaderLen {
		return int64(len(data)), cutShort
	}
	n, ok := recordLen(rest)
	end = pos + recordHeaderLen + int64(n)
	switch {
	case !ok:
		return pos + recordHeaderLen, "a record header that fails its checksum"
	case n > RecordMax:
		return pos + recordHeaderLen, fmt.Sprintf("a record of %d bytes, over the %d maximum", n, RecordMax)
	case int64(len(data)) < end:
		return int64(len(data)), cutShort
	case !payloadIntact(data[pos:end]):
		return end, "a record that fails its checksum"
	}
	return end, ""
}

// decodeEntry decodes rec, a record whose checksums passed, into l, and
// says why if it is not entry want.
func decodeEntry(rec []byte, want uint64, l *raft.Log) string {
	if err := decodePayload(rec[recordHeaderLen:], l); err != nil {
		return fmt.Sprintf("entry %d: %v", want, err)
	}
	if l.Index != want {
		return fmt.Sprintf("entry %d where entry %d should be", l.Index, want)
	}
	return ""
}

// sectorLen is the unit a disk writes whole: a crash during a write leaves
// each sector of it either written or as it was, and space a file was
// extended by reads as zeros until it is written.
const sectorLen = 512

// torn reports whether the bad record at pos, ending at end, was torn by a
// crash rather than damaged: some sector it covers, from pos on (the part
// of the first sector before pos belongs to the record before), is all
// zero, so part of the write never reached the disk. This is etcd's rule
// for its WAL. A damaged record that holds a sector of zeros of its own
// (a value of zeros) would pass for torn; the checkpoint bounds what that
// can drop to the entries of the last second before a crash.
func torn(data []byte, pos, end int64) bool {
	end = min(end, int64(len(data)))
	for s := pos - pos%sectorLen; s < end; s += sectorLen {
		if allZero(data[max(s, pos):min(s+sectorLen, int64(len(data)))]) {
			return true
		}
	}
	return false
}

// checkHeader compares a segment's header h with the one its name calls
// for.
func checkHeader(h, want []byte) error {
	switch {
	case !bytes.Equal(h[:4], want[:4]):
		return &CorruptError{Reason: "not a dlock log segment (its header is wrong)"}
	case !bytes.Equal(h[4:8], want[4:8]):
		return &CorruptError{Reason: "a segment of an unknown format version"}
	case !bytes.Equal(h[8:16], want[8:16]):
		return &CorruptError{Reason: "a segment whose header does not match its name"}
	}
	return nil
}
