package check

import (
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// Leases checks that no acknowledged hold ended before its lease ran out.
// A hold's lease runs at least until the last acknowledgement (OK acquire
// or renew) invoked before the evidence, plus its TTL (see hold.leaseEnd
// for acquires and renews that may have shortened it). Evidence that the
// hold ended by time x (an op's return):
//
//   - another owner was told it holds the lock with a larger token (an OK
//     acquire or renew), or the owner itself with a larger one;
//   - a query, sent after the hold was acknowledged, shows another holder,
//     another token, the lock free, or no record; or any query shows a
//     larger token;
//   - the owner's renew or release of the token (or of any token), sent
//     after the hold was acknowledged, was refused.
//
// Evidence before the lease ran out is a violation unless the owner sent
// a release of the hold (not refused) before x. The first evidence of each
// hold is reported.
func Leases(ops []history.Op) Result {
	r := Result{Checker: "leases"}
	locks := byLock(ops)
	for _, name := range sortedNames(locks) {
		l := locks[name]
		for _, h := range l.holds {
			leaseBroken(&r, h, l.ops)
		}
	}
	return r
}

func leaseBroken(r *Result, h *hold, ops []history.Op) {
	acked := forever // the first ack's return: the hold existed by then
	for _, a := range h.acks {
		acked = min(acked, a.Return)
	}
	var first *history.Op
	for i := range ops {
		if ev := &ops[i]; ended(h, *ev, acked) && (first == nil || ev.Return < first.Return) {
			first = ev
		}
	}
	if first == nil {
		return
	}
	x := first.Return
	lease, ok := h.leaseEnd(ops, x)
	if !ok || x >= lease || h.released(ops, x) < x {
		return
	}
	r.addf("lock %q: hold of owner %q token %d ended by %v, before its lease ran to %v (%v early): %s",
		h.name, h.owner, h.token, ms(x), ms(lease), ms(lease-x), describe(*first))
}

// ended reports whether op shows that hold h had ended by op's return.
// acked is when h was first acknowledged.
func ended(h *hold, op history.Op, acked time.Duration) bool {
	after := op.Invoke > acked
	switch {
	case op.Kind == history.Query && op.Outcome == history.Refused:
		return after // no record
	case op.Outcome == history.Unknown:
		return false
	case op.Kind == history.Query:
		if op.ResToken > h.token {
			return true
		}
		return after && (!op.ResFound || op.ResHolder != h.owner || (op.ResToken != 0 && op.ResToken != h.token))
	case op.Outcome == history.OK:
		return ackToken(op) > h.token // acquire or renew
	case op.Kind == history.Renew || op.Kind == history.Release:
		return after && op.Owner == h.owner && (op.Token == 0 || op.Token == h.token)
	}
	return false // a refused acquire: see the package doc
}
