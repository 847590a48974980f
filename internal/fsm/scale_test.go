package fsm

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// scaleLocks is the held-lock count of the scale benchmark: the default LocksMax.
const scaleLocks = 1_000_000

// BenchmarkScaleMillionLocks holds scaleLocks locks, each by its own owner, and reports the heap they
// take (heap-bytes/lock, heap-MiB) and the time to snapshot and restore them: the state a node keeps
// in memory and writes to disk at its largest default size. One op is one snapshot plus one restore.
func BenchmarkScaleMillionLocks(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(DefaultLimits())
	for start := 0; start < scaleLocks; start += 1000 {
		cmds := make([]*fsmpb.Command, 0, 1000)
		for i := start; i < start+1000; i++ {
			cmds = append(cmds, acq(fmt.Sprintf("service/lock-%07d", i), fmt.Sprintf("worker-%07d", i), hour, 0))
		}
		s.Apply(at(sec, cmds...).entry())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if _, held, _, _, _ := s.Counts(); held != scaleLocks {
		b.Fatalf("%d locks held, want %d", held, scaleLocks)
	}
	heap := float64(after.HeapAlloc - before.HeapAlloc)
	var buf bytes.Buffer
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := s.WriteSnapshot(&buf); err != nil {
			b.Fatal(err)
		}
		if _, err := Restore(bytes.NewReader(buf.Bytes()), DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
	// Reported after the loop: ResetTimer deletes metrics reported before it.
	b.ReportMetric(float64(buf.Len())/(1<<20), "snapshot-MiB")
	b.ReportMetric(heap/scaleLocks, "heap-bytes/lock")
	b.ReportMetric(heap/(1<<20), "heap-MiB")
	runtime.KeepAlive(s)
}

// BenchmarkHandoffQueueDepth hands one lock on through a FIFO queue of the given depth: one op is a
// release that grants the head waiter plus the old holder queueing again at the tail, so the queue
// keeps its depth. The cost per handoff must not grow with the depth.
func BenchmarkHandoffQueueDepth(b *testing.B) {
	for _, depth := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("waiters=%d", depth), func(b *testing.B) {
			l := DefaultLimits()
			l.WaitersPerLockMax = depth
			s := New(l)
			owners := make([]string, depth+1)
			for i := range owners {
				owners[i] = fmt.Sprintf("client-%05d", i)
				s.Apply(at(sec, acq("jobs/nightly", owners[i], hour, hour)).entry())
			}
			if _, _, waiters, _, _ := s.Counts(); waiters != depth {
				b.Fatalf("%d waiters, want %d", waiters, depth)
			}
			b.ResetTimer()
			i := 0
			for b.Loop() {
				holder := owners[i%len(owners)]
				s.Apply(at(2*sec, rel("jobs/nightly", holder, 0), acq("jobs/nightly", holder, hour, hour)).entry())
				i++
			}
		})
	}
}

// TestTenThousandWaitersAreServedInOrder queues 10,000 waiters on one lock and releases it 10,000
// times: each release must grant the longest-waiting one.
func TestTenThousandWaitersAreServedInOrder(t *testing.T) {
	const waiters = 10_000
	l := DefaultLimits()
	l.WaitersPerLockMax = waiters
	s := New(l)
	s.Apply(at(sec, acq("jobs/nightly", "holder", hour, 0)).entry())
	for i := range waiters {
		s.Apply(at(sec+int64(i), acq("jobs/nightly", fmt.Sprintf("w%05d", i), hour, hour)).entry())
	}
	holder := "holder"
	start := time.Now()
	for i := range waiters {
		out := s.Apply(at(2*sec, rel("jobs/nightly", holder, 0)).entry())
		want := fmt.Sprintf("w%05d", i)
		var granted string
		for _, e := range out.Events {
			if e.Kind == EventGranted {
				granted = e.Owner
			}
		}
		if granted != want {
			t.Fatalf("release %d granted %q, want %q (enqueue order)", i, granted, want)
		}
		holder = granted
	}
	t.Logf("%d FIFO handoffs in %s", waiters, time.Since(start))
}
