package check

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestLocks(t *testing.T) {
	tests := []struct {
		name string
		give []history.Op
		want string
	}{
		// "Fencing token. Every grant returns a token that strictly grows,
		// per lock and cluster-wide ... Query also returns the seed's
		// per-lock nonce (a counter bumped on every grant of that lock)."
		{"grants in turn", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 4, 5, 7, 2),
		}, "ok"},
		{"token repeated", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 4, 5, 3, 2),
		}, "fail"},
		{"token went down", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 4, 5, 2, 2),
		}, "fail"},
		{"OK acquire without a token", []history.Op{acquired(0, "L", "a", 0, 1, 0, 1)}, "fail"},
		{"nonce skipped", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 4, 5, 7, 3),
		}, "fail"},
		{"nonce not recorded", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 0), release(0, "L", "a", 3, 2, 3, ok), acquired(1, "L", "b", 4, 5, 7, 0),
		}, "ok"},
		{"nonce skip explained by an unanswered acquire", []history.Op{
			acquire(2, "L", "c", 0, 1, unknown, 0), acquired(0, "L", "a", 2, 3, 3, 2),
		}, "ok"},
		{"concurrent grants in token order", []history.Op{
			acquired(0, "L", "a", 0, 10, 8, 2), acquired(1, "L", "b", 1, 5, 4, 1), release(1, "L", "b", 4, 6, 7, ok),
		}, "ok"},
		{"concurrent grants: nonce and token disagree on the order", []history.Op{
			acquired(0, "L", "a", 0, 10, 8, 1), acquired(1, "L", "b", 1, 5, 4, 2), release(1, "L", "b", 4, 6, 7, ok),
		}, "fail"},
		// "Reentrancy. Acquire by the current owner returns the same token
		// and refreshes the lease."
		{"reentrant acquire", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(0, "L", "a", 2, 3, 3, 1),
		}, "ok"},
		{"reentrant acquire with a new token", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(0, "L", "a", 2, 3, 4, 2),
		}, "fail"},
		// A lock is held by one owner at a time.
		{"granted while held", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "L", "b", 2, 3, 4, 2),
		}, "fail"},
		{"waiter granted by a release", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "L", "b", 2, 20, 4, 2), release(0, "L", "a", 3, 10, 11, ok),
		}, "ok"},
		{"granted before the release was sent", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "L", "b", 2, 5, 4, 2), release(0, "L", "a", 3, 10, 11, ok),
		}, "fail"},
		// "Release. Only the owner (and, if given, the matching token) may
		// release; otherwise a typed error says why."
		{"release by another owner refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(1, "L", "b", 0, 2, 3, refused), query(1, "L", 4, 5, "a", 3, 1),
		}, "ok"},
		{"release by another owner accepted", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(1, "L", "b", 0, 2, 3, ok),
		}, "fail"},
		{"release with the wrong token accepted", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 2, 2, 3, ok),
		}, "fail"},
		{"release by the holder refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, refused),
		}, "fail"},
		{"release with the wrong token refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 2, 2, 3, refused),
		}, "ok"},
		{"unanswered release may have freed the lock", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, unknown), acquired(1, "L", "b", 4, 5, 4, 2),
		}, "ok"},
		{"unanswered release freed it at most once", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, unknown), query(1, "L", 4, 5, "", 3, 1),
			acquired(0, "L", "a", 6, 7, 4, 2), acquired(1, "L", "b", 8, 9, 5, 3),
		}, "fail"},
		// Renew extends the caller's own hold only.
		{"renew by the holder", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), renew(0, "L", "a", 3, 2, 3, ok),
		}, "ok"},
		{"renew by another owner accepted", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), renew(1, "L", "b", 3, 2, 3, ok),
		}, "fail"},
		{"renew after release accepted", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), renew(0, "L", "a", 3, 4, 5, ok),
		}, "fail"},
		{"renew by the holder refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), renew(0, "L", "a", 3, 2, 3, refused),
		}, "fail"},
		// An acquire is refused only while another owner holds the lock.
		{"try-acquire of a held lock refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquire(1, "L", "b", 2, 3, refused, 0),
		}, "ok"},
		{"try-acquire of a free lock refused", []history.Op{acquire(1, "L", "b", 2, 3, refused, 0)}, "fail"},
		{"acquire by the holder refused", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquire(0, "L", "a", 2, 3, refused, long),
		}, "fail"},
		// "A waiter that gives up withdraws: ... or releases the lock if a
		// grant raced with its timeout": the grant used a token and a nonce.
		{"refused waiter was granted and withdrawn", []history.Op{
			acquire(1, "L", "b", 0, 3, refused, long), query(0, "L", 4, 5, "", 3, 1), acquired(0, "L", "a", 6, 7, 4, 2),
		}, "ok"},
		// WAIT_TIMEOUT promises the caller waits nowhere: a grant after it
		// was answered is a violation, whatever the grant raced with.
		{"waiter granted after it was told its wait ended", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), acquire(1, "L", "b", 2, 5, refused, msd(1)),
			release(0, "L", "a", 3, 6, 7, ok), query(2, "L", 8, 9, "b", 4, 2),
		}, "fail"},
		// "Reads. Query and Get are linearizable by default."
		{"query of a held lock", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1), query(1, "L", 2, 3, "a", 3, 1)}, "ok"},
		{"query shows the wrong holder", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1), query(1, "L", 2, 3, "b", 3, 1)}, "fail"},
		{"query shows the wrong token", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1), query(1, "L", 2, 3, "a", 4, 1)}, "fail"},
		{"query shows the wrong nonce", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1), query(1, "L", 2, 3, "a", 3, 2)}, "fail"},
		{"query shows the last hold of a free lock", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok), query(1, "L", 4, 5, "", 3, 1),
		}, "ok"},
		{"query before any acquire", []history.Op{noRecord(1, "L", 0, 1), acquired(0, "L", "a", 2, 3, 3, 1)}, "ok"},
		{"query finds no record after a grant", []history.Op{acquired(0, "L", "a", 0, 1, 3, 1), noRecord(1, "L", 2, 3)}, "fail"},
		{"refused query means no record", []history.Op{
			acquired(0, "L", "a", 0, 1, 3, 1), base(1, history.Query, "L", 2, 3, refused),
		}, "fail"},
		// "If Acquire fails with ErrUnavailable or a context error, the
		// request may still have been granted": a ghost hold, whose token
		// a later op may reveal, and which the server may withdraw.
		{"unanswered acquire granted, token revealed", []history.Op{
			acquire(0, "L", "a", 0, 1, unknown, long), query(1, "L", 2, 3, "a", 5, 1),
			release(0, "L", "a", 5, 4, 5, ok), acquired(1, "L", "b", 6, 7, 6, 2),
		}, "ok"},
		{"unanswered acquire's revealed token repeated", []history.Op{
			acquire(0, "L", "a", 0, 1, unknown, long), query(1, "L", 2, 3, "a", 5, 1),
			release(0, "L", "a", 5, 4, 5, ok), acquired(1, "L", "b", 6, 7, 5, 2),
		}, "fail"},
		{"unanswered acquire's grant withdrawn", []history.Op{
			acquire(0, "L", "a", 0, 1, unknown, long), query(1, "L", 2, 3, "a", 5, 1), acquired(1, "L", "b", 6, 7, 6, 2),
		}, "ok"},
		{"acknowledged grant is not withdrawn", []history.Op{
			acquire(0, "L", "a", 0, 1, unknown, long), acquired(0, "L", "a", 2, 3, 5, 1), acquired(1, "L", "b", 6, 7, 6, 2),
		}, "fail"},
		{"unanswered acquire landing late", []history.Op{
			acquired(1, "L", "b", 0, 1, 3, 1), acquire(0, "L", "a", 2, 3, unknown, long),
			release(1, "L", "b", 3, 4, 5, ok), query(1, "L", 6, 7, "a", 4, 2),
		}, "ok"},
		{"unanswered acquire granted twice", []history.Op{
			acquire(0, "L", "a", 0, 1, unknown, long), query(1, "L", 2, 3, "a", 5, 1),
			release(0, "L", "a", 5, 4, 5, ok), query(1, "L", 6, 7, "a", 6, 2),
		}, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, Locks(tt.give, fast), tt.want)
		})
	}
}

// The operations on one lock in a chaos run (inprocess seed 534111) where an
// acquire retried after its wait ran out was answered WAIT_TIMEOUT and still
// granted the lock 30 ms later, when its holder released. The checker must
// keep catching it; the server-side regression test is
// TestRetryWithNoWaitLeftLeavesTheQueue.
func TestLocksCatchesAGrantAfterWaitTimeout(t *testing.T) {
	ops := loadHistory(t, "testdata/wait-timeout-then-granted-inprocess-534111.json.gz")
	r := Locks(ops, LinOptions{Timeout: time.Minute})
	if r.TimedOut || len(r.Violations) != 1 || !strings.Contains(r.Violations[0], `"lin-2": not linearizable`) {
		t.Fatalf("locks check of the recorded history: violations %q (timed out %t); want lock lin-2 not linearizable",
			r.Violations, r.TimedOut)
	}
}

// loadHistory reads a history saved by a chaos run: gzipped JSON holding
// its operations.
func loadHistory(t *testing.T, path string) []history.Op {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct{ History []history.Op }
	if err := json.NewDecoder(z).Decode(&saved); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return saved.History
}
