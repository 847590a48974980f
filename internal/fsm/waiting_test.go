package fsm

import (
	"bytes"
	"testing"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// A client that queued a wait is silent while the server waits for it, yet
// may retry its acquire long after it last wrote (its node stopped, its
// connection broke). Its remembered QUEUED answer must outlive pruning and
// eviction while the wait (or the hold granted from it) lasts, so that the
// retry takes the wait over instead of queuing a second claim beside the
// first call's: a retry answered WAIT_TIMEOUT or LOCKED must leave the owner
// neither queued nor granted.
func TestWaitingClientIsKeptForItsRetry(t *testing.T) {
	apply := func(s *State, at int64, c *fsmpb.Command) *fsmpb.Result {
		return s.Apply(&fsmpb.Entry{NowNanos: at, WallUnixNanos: at, Commands: []*fsmpb.Command{c}}).Results[0]
	}
	queue := func(l Limits, wait int64) *State {
		s := New(l)
		apply(s, 0, acqBy("L", "h", 2*hour, 0, 100))
		check(t, "first send", apply(s, sec, as("c", 1, try(1, acqBy("L", "o", hour, wait, 1)))).Code, fsmpb.Code_QUEUED)
		return s
	}
	granted := func(s *State, at int64) string { return apply(s, at, rel("L", "h", 0)).NextOwner }

	// Past ClientIdleMax, with a pruning pass, the retry still takes over
	// the wait: its WAIT_TIMEOUT's withdrawal empties the queue.
	s := queue(DefaultLimits(), 30*minute)
	apply(s, ClientIdleMax.Nanoseconds()+2*minute, as("x", 1, put("k", "v"))) // any entry: prune runs
	retry := apply(s, ClientIdleMax.Nanoseconds()+3*minute, as("c", 1, try(2, acqBy("L", "o", hour, 10*minute, 2))))
	check(t, "retry after a pruning pass replayed", retry.Replayed, true)
	check(t, "the retry's withdrawal", apply(s, 25*minute, withdrawBy("L", "o", 2)).Code, fsmpb.Code_OK)
	check(t, "granted after the retry's WAIT_TIMEOUT", granted(s, 25*minute), "")

	// The same across a snapshot and restore.
	s = queue(DefaultLimits(), 30*minute)
	restored, err := Restore(bytes.NewReader(snap(t, s)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	apply(restored, ClientIdleMax.Nanoseconds()+2*minute, as("x", 1, put("k", "v")))
	check(t, "restored: retry replayed", apply(restored, ClientIdleMax.Nanoseconds()+3*minute,
		as("c", 1, try(2, acqBy("L", "o", hour, 0, 2)))).Replayed, true)

	// Evicted for room: the waiting client is passed over for idle ones.
	l := testLimits() // ClientsMax 2
	s = queue(l, 10*sec)
	apply(s, 2*sec, as("x", 1, put("k", "1")))
	apply(s, 3*sec, as("y", 1, put("k", "2"))) // a third client: one must go
	retry = apply(s, 4*sec, as("c", 1, try(2, acqBy("L", "o", hour, 0, 2))))
	check(t, "retry after an eviction replayed", retry.Replayed, true)
	check(t, "the evicted client", s.clients["x"] == nil, true)

	// Once the wait is over, the client is pruned as any other.
	s = queue(DefaultLimits(), minute)
	apply(s, 2*minute, withdrawBy("L", "o", 1))
	apply(s, ClientIdleMax.Nanoseconds()+3*minute, as("x", 1, put("k", "v")))
	check(t, "a client whose wait ended is pruned", s.clients["c"] == nil, true)
}
