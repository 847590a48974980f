package node

import (
	"testing"
	"time"
)

// Leader duties from an earlier leadership, still running after it ended,
// change nothing: neither after a newer leadership stamped, nor after
// leadership was laid down.
func TestStaleLeaderDutiesChangeNothing(t *testing.T) {
	var l leaderState
	old := l.reset()
	current := l.reset()
	t0 := time.Unix(100, 0)
	if !l.stamp(current, 7, t0) || !l.serve(current) {
		t.Fatalf("current epoch %d could not stamp and serve, want it to", current)
	}
	if l.stamp(old, 99, t0.Add(time.Hour)) || l.serve(old) {
		t.Fatalf("epoch %d wrote leader state in epoch %d, want refused", old, current)
	}
	if stamped, ready, base, start := l.snapshot(); !stamped || !ready || base != 7 || !start.Equal(t0) {
		t.Fatalf("leader state = stamped %v ready %v base %d start %v, want true true 7 %v", stamped, ready, base, start, t0)
	}
	l.reset()
	if l.stamp(current, 99, t0) || l.serve(current) {
		t.Fatalf("epoch %d wrote leader state after it was laid down, want refused", current)
	}
	if stamped, ready, _, _ := l.snapshot(); stamped || ready {
		t.Fatalf("after lay down stamped %v ready %v, want false false", stamped, ready)
	}
}
