package check

import (
	"github.com/dlock-raft/dlock/internal/history"
)

// FIFO checks that live waiters are granted in the order they queued, on
// the evidence a client can have. Only acquires with Queued set can show a
// violation. Two OK acquires A and B of one lock by different owners break
// the rule when
//
//   - A was queued before B was even sent: A.Queued < B.Invoke;
//   - B was granted first: B.ResToken < A.ResToken (tokens are handed out
//     in grant order);
//   - A was still waiting when B was granted: B.Return < A.Invoke + A.Wait
//     (the server counts A's deadline on cluster time from A's enqueue, which
//     comes after A.Invoke, and cluster time never runs faster than the
//     recording's clock);
//   - B's grant came from B's own request: no other acquire by B's owner
//     on the lock that was invoked before A.Queued could have queued that
//     owner ahead of A or already given it this hold (one that was not OK,
//     or that returned B's token).
func FIFO(ops []history.Op) Result {
	r := Result{Checker: "fifo"}
	locks := byLock(ops)
	for _, name := range sortedNames(locks) {
		var granted []history.Op
		for _, op := range locks[name].ops {
			if op.Kind == history.Acquire && op.Outcome == history.OK {
				granted = append(granted, op)
			}
		}
		for _, a := range granted {
			if a.Queued == 0 {
				continue
			}
			for _, b := range granted {
				if overtook(a, b) && !queuedEarlier(locks[name].ops, a, b) {
					r.addf("lock %q: %s was granted before %s, which was queued by %v and still waiting",
						name, describe(b), describe(a), ms(a.Queued))
				}
			}
		}
	}
	return r
}

// overtook reports whether b was granted while a waited ahead of it.
func overtook(a, b history.Op) bool {
	return a.Owner != b.Owner && a.Queued < b.Invoke && b.ResToken < a.ResToken &&
		b.Return < satAdd(a.Invoke, a.Wait)
}

// queuedEarlier reports whether another acquire of b's owner, invoked before
// a was known queued, may have put that owner in the queue before a or
// granted it b's hold: its place (and hold) would then be legitimately
// ahead of a.
func queuedEarlier(ops []history.Op, a, b history.Op) bool {
	for _, op := range ops {
		if op.Kind != history.Acquire || op.Owner != b.Owner || op.Invoke >= a.Queued || op == b {
			continue
		}
		if op.Outcome != history.OK || op.ResToken == b.ResToken {
			return true
		}
	}
	return false
}
