package check

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestKV(t *testing.T) {
	tests := []struct {
		name string
		give []history.Op
		want string
	}{
		// "Reads. Query and Get are linearizable by default."
		{"read after write", []history.Op{put(0, "k", "a", 0, 1, ok), get(1, "k", 2, 3, "a")}, "ok"},
		{"read concurrent with write may miss it", []history.Op{put(0, "k", "a", 0, 5, ok), absent(1, "k", 1, 2)}, "ok"},
		{"stale read", []history.Op{
			put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok), get(1, "k", 4, 5, "a"),
		}, "fail"},
		{"read misses an acknowledged write", []history.Op{put(0, "k", "a", 0, 1, ok), absent(1, "k", 2, 3)}, "fail"},
		{"read of a value never written", []history.Op{put(0, "k", "a", 0, 1, ok), get(1, "k", 2, 3, "z")}, "fail"},
		{"reads go back in time", []history.Op{
			put(0, "k", "a", 0, 10, ok), get(1, "k", 1, 2, "a"), absent(2, "k", 3, 4),
		}, "fail"},
		{"keys are independent", []history.Op{put(0, "k", "a", 0, 1, ok), absent(1, "j", 2, 3)}, "ok"},
		{"delete then read", []history.Op{
			put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok), absent(1, "k", 4, 5),
		}, "ok"},
		{"delete of an absent key", []history.Op{del(0, "k", 0, 1, ok), absent(1, "k", 2, 3)}, "ok"},
		{"delete refused (not found) while the key exists", []history.Op{
			put(0, "k", "a", 0, 1, ok), del(1, "k", 2, 3, refused),
		}, "fail"},
		{"delete refused (not found) on an absent key", []history.Op{del(1, "k", 2, 3, refused), absent(1, "k", 4, 5)}, "ok"},
		// "Idempotency. ... a retry after a timeout or a leader change is
		// applied once."
		{"unanswered put seen later", []history.Op{put(0, "k", "a", 0, 1, unknown), get(1, "k", 50, 51, "a")}, "ok"},
		{"unanswered put never seen", []history.Op{put(0, "k", "a", 0, 1, unknown), absent(1, "k", 50, 51)}, "ok"},
		{"unanswered put seen before it was sent", []history.Op{get(1, "k", 0, 1, "a"), put(0, "k", "a", 2, 3, unknown)}, "fail"},
		{"unanswered put applied twice", []history.Op{
			put(0, "k", "a", 0, 1, unknown), get(1, "k", 2, 3, "a"),
			put(2, "k", "b", 4, 5, ok), get(1, "k", 6, 7, "a"),
		}, "fail"},
		{"unanswered put lands after a later put", []history.Op{
			put(0, "k", "a", 0, 1, unknown), put(2, "k", "b", 4, 5, ok),
			get(1, "k", 6, 7, "b"), get(1, "k", 8, 9, "a"),
		}, "ok"},
		{"repeated value explained by an unanswered put", []history.Op{
			put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok), put(2, "k", "a", 3, 4, unknown), get(1, "k", 6, 7, "a"),
		}, "ok"},
		{"unanswered delete may land late", []history.Op{
			put(0, "k", "a", 0, 1, ok), del(1, "k", 2, 3, unknown), get(0, "k", 4, 5, "a"), absent(0, "k", 6, 7),
		}, "ok"},
		{"unanswered delete lands once", []history.Op{
			put(0, "k", "a", 0, 1, ok), del(1, "k", 2, 3, unknown), absent(0, "k", 4, 5), get(0, "k", 6, 7, "a"),
		}, "fail"},
		{"unanswered and refused reads are ignored", []history.Op{
			put(0, "k", "a", 0, 1, ok), base(1, history.Get, "k", 2, 3, unknown), put(0, "k", "b", 4, 5, refused),
			get(1, "k", 6, 7, "a"),
		}, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, KV(tt.give, fast), tt.want)
		})
	}
}

// A failing check names the key and writes porcupine's visualization.
func TestKVWritesVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.html")
	r := KV([]history.Op{
		put(0, "good", "a", 0, 1, ok), get(1, "good", 2, 3, "a"),
		put(0, "bad", "a", 0, 1, ok), put(0, "bad", "b", 2, 3, ok), get(1, "bad", 4, 5, "a"),
	}, LinOptions{Timeout: fast.Timeout, Visualize: path})
	if want := path + ` (kv "bad")`; r.Count != 1 || r.Visualization != want {
		t.Fatalf("got %d violations, visualization %q; want 1 and %q\n%s", r.Count, r.Visualization, want, r)
	}
	mustContain(t, r.Violations[0], `"bad"`)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("visualization %s: %v (size %d), want a non-empty file", path, err, fi.Size())
	}
}

// A search that runs out of time is reported as undecided, not as a pass
// or a failure.
func TestKVTimeout(t *testing.T) {
	// 25 concurrent puts and a read no order explains: proving that takes
	// porcupine through 2^25 subsets of puts.
	var ops []history.Op
	for i := range 25 {
		ops = append(ops, put(i, "k", fmt.Sprint(i), 0, 100, ok))
	}
	ops = append(ops, get(30, "k", 200, 201, "never written"))
	r := KV(ops, LinOptions{Timeout: 50 * time.Millisecond})
	if !r.TimedOut || r.Count != 0 || r.OK() {
		t.Fatalf("TimedOut %t, Count %d, OK %t; want true, 0, false\n%s", r.TimedOut, r.Count, r.OK(), r)
	}
	mustContain(t, r.String(), `UNKNOWN (timed out on k)`)
}
