package wal

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzScan feeds scan arbitrary segment bytes, as a damaged disk might
// hold. It must never panic, and whatever it accepts must be exactly the
// records of the entries it found: encoding them again gives the same
// bytes, so nothing damaged is ever read back as an entry.
func FuzzScan(f *testing.F) {
	var seg [headerLen]byte
	putHeader(seg[:], 7)
	valid := seg[:]
	for i := uint64(7); i < 10; i++ {
		valid = appendRecord(valid, entry(i))
	}
	f.Add(valid, true)
	f.Add(valid[:len(valid)-5], true)
	f.Add(append(bytes.Clone(valid), make([]byte, 600)...), true)
	f.Add(valid, false)
	f.Fuzz(func(t *testing.T, data []byte, tail bool) {
		sc, err := scan(data, 7, tail)
		if err != nil {
			return
		}
		if sc.end > int64(len(data)) || (len(sc.offs) > 0 && sc.offs[0] != headerLen) {
			t.Fatalf("scan accepted records %v ending at %d of %d bytes", sc.offs, sc.end, len(data))
		}
		if len(sc.offs) == 0 {
			return
		}
		seg := &segment{first: 7, offs: sc.offs, size: sc.end}
		again := append([]byte(nil), data[:headerLen]...)
		for idx := seg.first; idx <= seg.last(); idx++ {
			off, end := seg.recordAt(idx)
			var l raft.Log
			if reason := decodeEntry(data[off:end], idx, &l); reason != "" {
				t.Fatalf("record of entry %d at %d: %s", idx, off, reason)
			}
			again = appendRecord(again, &l)
		}
		if !bytes.Equal(again, data[:sc.end]) {
			t.Fatalf("the accepted records do not encode back to the bytes scan accepted")
		}
	})
}
