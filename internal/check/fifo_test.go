package check

import (
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestFIFO(t *testing.T) {
	// h holds the lock from 0 to 50; a queues (known by 5), b asks at 10.
	holder := []history.Op{acquired(9, "L", "h", 0, 1, 2, 1), release(9, "L", "h", 2, 50, 51, ok)}
	with := func(ops ...history.Op) []history.Op { return append(append([]history.Op(nil), holder...), ops...) }
	tests := []struct {
		name string
		give []history.Op
		want string
	}{
		// "FIFO. Waiters are served strictly in the order their requests
		// were applied."
		{"served in order", with(
			queued(acquired(0, "L", "a", 3, 52, 3, 2), 5), acquired(1, "L", "b", 10, 80, 4, 3),
		), "ok"},
		{"later asker served first", with(
			queued(acquired(0, "L", "a", 3, 80, 4, 3), 5), acquired(1, "L", "b", 10, 52, 3, 2),
		), "fail"},
		{"queue time unknown", with(
			acquired(0, "L", "a", 3, 80, 4, 3), acquired(1, "L", "b", 10, 52, 3, 2),
		), "ok"},
		{"later asker sent before the first was known queued", with(
			queued(acquired(0, "L", "a", 3, 80, 4, 3), 12), acquired(1, "L", "b", 10, 52, 3, 2),
		), "ok"},
		{"one owner's acquires", with(
			queued(acquired(0, "L", "a", 3, 80, 4, 3), 5), acquired(1, "L", "a", 10, 52, 3, 2),
		), "ok"},
		// "Each waiter has a deadline ...; a waiter past its deadline is
		// dropped and is never granted."
		{"first waiter's wait had ended", with(
			queued(wait(acquired(0, "L", "a", 3, 80, 4, 3), 40*time.Millisecond), 5), acquired(1, "L", "b", 10, 52, 3, 2),
		), "ok"},
		{"first waiter's wait had not ended", with(
			queued(wait(acquired(0, "L", "a", 3, 80, 4, 3), 60*time.Millisecond), 5), acquired(1, "L", "b", 10, 52, 3, 2),
		), "fail"},
		// "A repeated Acquire by a queued owner keeps its place."
		{"later asker already queued by an unanswered acquire", with(
			acquire(1, "L", "b", 1, 2, unknown, long), queued(acquired(0, "L", "a", 3, 80, 4, 3), 5),
			acquired(1, "L", "b", 10, 52, 3, 2),
		), "ok"},
		{"later asker already queued by a refused acquire", with(
			acquire(1, "L", "b", 1, 2, refused, long), queued(acquired(0, "L", "a", 3, 80, 4, 3), 5),
			acquired(1, "L", "b", 10, 52, 3, 2),
		), "ok"},
		// "Reentrancy. Acquire by the current owner returns the same
		// token": the hold predates the waiter.
		{"later asker already held the lock", []history.Op{
			acquired(1, "L", "b", 0, 1, 2, 1), queued(acquired(0, "L", "a", 3, 80, 3, 2), 5),
			acquired(1, "L", "b", 10, 11, 2, 1), release(1, "L", "b", 2, 50, 51, ok),
		}, "ok"},
		{"later asker's earlier hold had ended", []history.Op{
			acquired(1, "L", "b", 0, 1, 2, 1), release(1, "L", "b", 2, 2, 3, ok),
			acquired(9, "L", "h", 4, 5, 3, 2), queued(acquired(0, "L", "a", 6, 80, 5, 4), 7),
			acquired(1, "L", "b", 10, 52, 4, 3), release(9, "L", "h", 3, 50, 51, ok),
		}, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, FIFO(tt.give), tt.want)
		})
	}
}
