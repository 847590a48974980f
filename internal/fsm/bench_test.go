package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

const benchLocks = 100_000

// benchState holds benchLocks locks, every tenth with two waiters, plus a
// key and a remembered result per hundred locks: a busy production shape.
func benchState(b *testing.B) *State {
	b.Helper()
	s := New(DefaultLimits())
	var cmds []*fsmpb.Command
	for i := range benchLocks {
		name := fmt.Sprintf("service/lock-%06d", i)
		cmds = append(cmds, acq(name, "holder", 30*sec, 0))
		if i%10 == 0 {
			cmds = append(cmds, acq(name, "w1", 30*sec, 10*sec), acq(name, "w2", 30*sec, 10*sec))
		}
		if i%100 == 0 {
			cmds = append(cmds, as(fmt.Sprintf("client-%d", i%1000), uint64(i+1), put(name, "value")))
		}
	}
	s.Apply(at(sec, cmds...).entry())
	if locks, _, _, _, _ := s.Counts(); locks != benchLocks {
		b.Fatalf("%d locks, want %d", locks, benchLocks)
	}
	return s
}

// BenchmarkApplyAcquireRelease: one op is two entries, an Acquire and its
// Release, on a fresh name, beside benchLocks held locks.
func BenchmarkApplyAcquireRelease(b *testing.B) {
	s := benchState(b)
	const names = 1024
	var acquires, releases [names]*fsmpb.Entry
	for i := range names {
		n := fmt.Sprintf("bench/%04d", i)
		acquires[i] = at(2*sec, acq(n, "o", 30*sec, 0)).entry()
		releases[i] = at(2*sec, rel(n, "o", 0)).entry()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Apply(acquires[i%names])
		s.Apply(releases[i%names])
	}
}

// BenchmarkApplyBytesAcquireRelease is the same as one entry of two
// commands, decoded from protobuf as the node layer applies it.
func BenchmarkApplyBytesAcquireRelease(b *testing.B) {
	s := benchState(b)
	const names = 1024
	var entries [names][]byte
	for i := range names {
		n := fmt.Sprintf("bench/%04d", i)
		e := at(2*sec, acq(n, "o", 30*sec, 0), rel(n, "o", 0)).entry()
		entries[i], _ = proto.Marshal(e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.ApplyBytes(entries[i%names])
	}
}

func BenchmarkWriteSnapshot(b *testing.B) {
	s := benchState(b)
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.WriteSnapshot(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestore(b *testing.B) {
	var buf bytes.Buffer
	if err := benchState(b).WriteSnapshot(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Restore(bytes.NewReader(data), DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClone(b *testing.B) {
	s := benchState(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.Clone()
	}
}
