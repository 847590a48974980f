package check

import (
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestMutex(t *testing.T) {
	short := 100 * time.Millisecond
	tests := []struct {
		name   string
		give   []history.Op
		writes []Write
		want   string
	}{
		// A lock is held by one owner at a time, as its clients see it.
		{"holds in turn", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 2, 5, 4, 2),
		}, nil, "ok"},
		{"two holders at once", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "L", "b", 2, 5, 4, 2),
		}, nil, "fail"},
		{"two holders of different locks", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "M", "b", 2, 5, 4, 1),
		}, nil, "ok"},
		{"unanswered release ends the window", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, unknown), acquired(1, "L", "b", 2, 5, 4, 2),
		}, nil, "ok"},
		{"refused release by another owner does not", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(1, "L", "b", 0, 2, 3, refused), acquired(1, "L", "b", 4, 5, 4, 2),
		}, nil, "fail"},
		// "When the TTL passes without renewal, the cluster releases the
		// lock."
		{"next holder after the lease ran out", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), acquired(1, "L", "b", 2, 105, 4, 2),
		}, nil, "ok"},
		{"next holder before the lease ran out", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), acquired(1, "L", "b", 2, 95, 4, 2),
		}, nil, "fail"},
		{"renewed lease", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), ttl(renew(0, "L", "a", 3, 50, 51, ok), short),
			acquired(1, "L", "b", 2, 120, 4, 2),
		}, nil, "fail"},
		{"renewed lease without a TTL keeps the hold's", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), ttl(renew(0, "L", "a", 3, 50, 51, ok), 0),
			acquired(1, "L", "b", 2, 120, 4, 2),
		}, nil, "fail"},
		{"lease maybe shortened by an unanswered renew", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), ttl(renew(0, "L", "a", 3, 2, 3, unknown), 10*time.Millisecond),
			acquired(1, "L", "b", 4, 20, 4, 2),
		}, nil, "ok"},
		{"lease maybe shortened by an unanswered reentrant acquire", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), ttl(acquire(0, "L", "a", 2, 3, unknown, 0), 10*time.Millisecond),
			acquired(1, "L", "b", 4, 20, 4, 2),
		}, nil, "ok"},
		{"an acknowledgement that came too late is no hold", []history.Op{
			ttl(acquired(0, "L", "a", 0, 150, 3, 1), short), acquired(1, "L", "b", 120, 125, 4, 2),
		}, nil, "ok"},
		// "Fencing token. Every grant returns a token that strictly grows,
		// per lock and cluster-wide."
		{"token went down", []history.Op{
			acquired(0, "L", "a", 0, 1, 5, 1), release(0, "L", "a", 5, 2, 3, ok), acquired(1, "L", "b", 2, 5, 4, 2),
		}, nil, "fail"},
		{"token names two holds of different locks", []history.Op{
			acquired(0, "L", "a", 0, 1, 5, 1), acquired(1, "M", "b", 2, 5, 5, 1),
		}, nil, "fail"},
		// The guarded resource: writes in a hold's window are accepted, and
		// a stale holder never overwrites a newer one.
		{"writes in the window accepted", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 10, 11, ok), acquired(1, "L", "b", 12, 13, 4, 2),
		}, []Write{
			{Lock: "L", Owner: "a", Token: 3, Start: msd(2), End: msd(3), Accepted: true},
			{Lock: "L", Owner: "b", Token: 4, Start: msd(14), End: msd(15), Accepted: true},
		}, "ok"},
		{"stale write refused", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 3, 1), short), acquired(1, "L", "b", 2, 120, 4, 2),
		}, []Write{
			{Lock: "L", Owner: "b", Token: 4, Start: msd(121), End: msd(122), Accepted: true},
			{Lock: "L", Owner: "a", Token: 3, Start: msd(130), End: msd(131)},
		}, "ok"},
		{"write in the window refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 10, 11, ok), acquired(1, "L", "b", 12, 13, 4, 2),
		}, []Write{
			{Lock: "L", Owner: "a", Token: 3, Start: msd(2), End: msd(3)},
		}, "fail"},
		{"stale holder overwrote a newer one", []history.Op{
			ttl(acquired(0, "L", "a", 0, 1, 5, 1), short), acquired(1, "L", "b", 2, 120, 4, 2),
		}, []Write{
			{Lock: "L", Owner: "b", Token: 4, Start: msd(121), End: msd(122), Accepted: true},
			{Lock: "L", Owner: "a", Token: 5, Start: msd(130), End: msd(131), Accepted: true},
		}, "fail"},
		{"write by no hold", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1)}, []Write{
			{Lock: "L", Owner: "a", Token: 9, Start: msd(2), End: msd(3), Accepted: true},
		}, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, Mutex(tt.give, tt.writes), tt.want)
		})
	}
}

// The resource accepts a write iff its token is at least the highest it
// has seen for the lock, and records every write, under concurrent use.
func TestResource(t *testing.T) {
	var mu sync.Mutex
	tick := time.Duration(0)
	now := func() time.Duration { // a clock that always moves
		mu.Lock()
		defer mu.Unlock()
		tick++
		return tick
	}
	r := NewResource(now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				r.Write([]string{"L", "M"}[g%2], "o", uint64(i*8+g))
			}
		})
	}
	wg.Wait()
	writes := r.Writes()
	if len(writes) != 800 {
		t.Fatalf("got %d writes, want 800", len(writes))
	}
	highest := map[string]uint64{}
	for _, w := range writes {
		if want := w.Token >= highest[w.Lock]; w.Accepted != want {
			t.Errorf("%s: accepted %t, want %t (highest %d)", w, w.Accepted, want, highest[w.Lock])
		}
		if w.Accepted {
			highest[w.Lock] = w.Token
		}
		if w.Start >= w.End {
			t.Errorf("%s: start not before end", w)
		}
	}
	if got, want := r.Write("L", "o", highest["L"]), true; got != want {
		t.Errorf("write with the highest token: accepted %t, want %t", got, want)
	}
	if got, want := r.Write("L", "o", highest["L"]-1), false; got != want {
		t.Errorf("write below the highest token: accepted %t, want %t", got, want)
	}
}
