package check

import (
	"math"
	"sort"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// forever stands for "no bound" on the recording's clock.
const forever = time.Duration(math.MaxInt64)

// hold is one grant that its owner was told about: the lock, owner and
// token, and the ops that acknowledged it (OK acquires and renews).
type hold struct {
	name, owner string
	token       uint64
	acks        []history.Op // OK acquires and renews returning this token, by Invoke
	acquired    bool         // some ack is an acquire
	start       time.Duration
}

// lockOps indexes one lock's ops for the hold-based checkers.
type lockOps struct {
	ops   []history.Op // all ops on the lock, by Invoke
	holds []*hold      // by start
}

// byLock groups the lock ops of a history by lock and finds their holds.
func byLock(ops []history.Op) map[string]*lockOps {
	locks := map[string]*lockOps{}
	for _, op := range ops {
		switch op.Kind {
		case history.Acquire, history.Renew, history.Release, history.Query:
		default:
			continue
		}
		l := locks[op.Name]
		if l == nil {
			l = &lockOps{}
			locks[op.Name] = l
		}
		l.ops = append(l.ops, op)
	}
	for _, l := range locks {
		sort.SliceStable(l.ops, func(i, j int) bool { return l.ops[i].Invoke < l.ops[j].Invoke })
		l.holds = findHolds(l.ops)
	}
	return locks
}

// ackToken is the token an OK acquire or renew acknowledged, 0 if none.
func ackToken(op history.Op) uint64 {
	if op.Outcome != history.OK {
		return 0
	}
	switch op.Kind {
	case history.Acquire:
		return op.ResToken
	case history.Renew:
		if op.ResToken != 0 {
			return op.ResToken
		}
		return op.Token
	}
	return 0
}

func findHolds(ops []history.Op) []*hold {
	type key struct {
		owner string
		token uint64
	}
	found := map[key]*hold{}
	var holds []*hold
	for _, op := range ops {
		t := ackToken(op)
		if t == 0 {
			continue
		}
		h := found[key{op.Owner, t}]
		if h == nil {
			h = &hold{name: op.Name, owner: op.Owner, token: t, start: forever}
			found[key{op.Owner, t}] = h
			holds = append(holds, h)
		}
		h.acks = append(h.acks, op)
		if op.Kind == history.Acquire {
			h.acquired = true
			h.start = min(h.start, op.Return)
		}
	}
	for _, h := range holds {
		if !h.acquired { // acknowledged by a renew only: held by then at least
			for _, a := range h.acks {
				h.start = min(h.start, a.Return)
			}
		}
	}
	sort.SliceStable(holds, func(i, j int) bool { return holds[i].start < holds[j].start })
	return holds
}

// firstInvoke is the earliest Invoke among the hold's acks.
func (h *hold) firstInvoke() time.Duration {
	t := forever
	for _, a := range h.acks {
		t = min(t, a.Invoke)
	}
	return t
}

// mayAffect reports whether op, an acquire or renew by the hold's owner,
// may be applied to the hold: an OK one that acknowledged it, an unanswered
// acquire (reentrant on the hold, if it lands while the hold lives) or an
// unanswered renew of this token or of any.
func (h *hold) mayAffect(op history.Op) bool {
	if op.Owner != h.owner {
		return false
	}
	switch {
	case op.Kind == history.Acquire && op.Outcome == history.OK:
		return op.ResToken == h.token
	case op.Kind == history.Acquire:
		return op.Outcome == history.Unknown
	case op.Kind == history.Renew && op.Outcome == history.OK:
		return ackToken(op) == h.token
	case op.Kind == history.Renew:
		return op.Outcome == history.Unknown && (op.Token == 0 || op.Token == h.token)
	}
	return false
}

// leaseEnd is the earliest time the hold's lease can run out by, as far as
// evidence invoked before horizon shows: the last acknowledgement L
// (acquire or renew) invoked before horizon set the lease to at least
// L.Invoke + its TTL (the server stamps it later, and cluster time never
// runs faster than real time). An acquire or renew of the hold that may be
// applied after L (unanswered, or concurrent with L) could set a shorter
// TTL, so the smallest such TTL counts. A renew without TTL keeps the
// hold's, which is one of the TTLs asked for before. The second result is
// false if no ack was invoked before horizon.
func (h *hold) leaseEnd(ops []history.Op, horizon time.Duration) (time.Duration, bool) {
	var last *history.Op
	for i := range h.acks {
		if a := &h.acks[i]; a.Invoke < horizon && (last == nil || a.Invoke > last.Invoke) {
			last = a
		}
	}
	if last == nil {
		return 0, false
	}
	ttl := time.Duration(math.MaxInt64)
	fallback := ttl // the smallest TTL ever asked for this hold
	for _, op := range ops {
		if !h.mayAffect(op) || op.TTL <= 0 {
			continue
		}
		fallback = min(fallback, op.TTL)
		later := op.Outcome == history.Unknown || op.Return > last.Invoke
		if op.Invoke < horizon && later {
			ttl = min(ttl, op.TTL)
		}
	}
	if last.TTL <= 0 || ttl == math.MaxInt64 {
		ttl = min(ttl, fallback)
	}
	if ttl == math.MaxInt64 {
		return last.Invoke, true // no TTL recorded at all: assume none
	}
	return satAdd(last.Invoke, ttl), true
}

// released returns the earliest Invoke of a release by the hold's owner
// that may have ended the hold, invoked before horizon: a release of its
// token, or of any token that may have been applied after the hold began.
// Refused releases ended nothing. forever if none.
func (h *hold) released(ops []history.Op, horizon time.Duration) time.Duration {
	first := h.firstInvoke()
	at := forever
	for _, op := range ops {
		if op.Kind != history.Release || op.Owner != h.owner || op.Outcome == history.Refused || op.Invoke >= horizon {
			continue
		}
		appliedLate := op.Outcome == history.Unknown || op.Return >= first
		if op.Token == h.token || (op.Token == 0 && appliedLate) {
			at = min(at, op.Invoke)
		}
	}
	return at
}

func satAdd(a, b time.Duration) time.Duration {
	if a > 0 && b > forever-a {
		return forever
	}
	return a + b
}
