package check

import (
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// Durability checks a final observation, taken after every fault healed
// and every node restarted, against the history: final holds OK gets of
// the keys written and OK queries of the locks touched (Invoke and Return
// are ignored).
//
// Keys: the final reads must be linearizable after everything in the
// history (unanswered ops stay pending, so they may land before the final
// reads or never), and a value read must have been written by some put.
//
// Locks: with longLeases, the final queries must be linearizable after the
// history (see Locks). Without, leases may have expired, so only what
// expiry cannot undo is checked: a lock whose grant was acknowledged still
// has a record, its token is at least the highest acknowledged one, and
// its grant count (nonce) at least the highest acknowledged one; if it
// shows the highest acknowledged token as held, the holder is that hold's
// owner. In both cases the grant count is at most the acquires that could
// have been granted, so no acquire was applied twice.
//
// A history that fails KV (or, with longLeases, Locks) fails here too:
// read those results first.
func Durability(ops, final []history.Op, longLeases bool, opt LinOptions) Result {
	r := Result{Checker: "durability"}
	all := append(append([]history.Op(nil), ops...), placeAfter(ops, final)...)
	kv := linearize("durability-kv", kvModel(), kvParts(all), opt)
	merge(&r, kv)
	written := map[[2]string]bool{}
	acquires := map[string]int{}
	for _, op := range ops {
		switch {
		case op.Kind == history.Put:
			written[[2]string{op.Name, op.Value}] = true
		case op.Kind == history.Acquire && (op.Outcome != history.Refused || op.Wait > 0):
			acquires[op.Name]++ // it may have been granted (once)
		}
	}
	acked := ackedLocks(ops)
	for _, f := range final {
		switch {
		case f.Kind == history.Get && f.Outcome == history.OK && f.ResFound && !written[[2]string{f.Name, f.ResValue}]:
			r.addf("key %q: final value %q was never written", f.Name, f.ResValue)
		case f.Kind == history.Query && f.ResNonce > uint64(acquires[f.Name]):
			r.addf("lock %q: final nonce %d, but only %d acquires could have been granted", f.Name, f.ResNonce, acquires[f.Name])
		case f.Kind == history.Query && !longLeases:
			finalLock(&r, f, acked[f.Name])
		}
	}
	if longLeases {
		merge(&r, linearize("durability-locks", lockModel(), lockParts(all), opt))
	}
	return r
}

// placeAfter returns final with every op invoked after the last op of the
// history returned, all concurrent with each other.
func placeAfter(ops, final []history.Op) []history.Op {
	var last time.Duration
	client := 0
	for _, op := range ops {
		last = max(last, op.Invoke, op.Return)
		client = max(client, op.Client+1)
	}
	out := make([]history.Op, len(final))
	for i, f := range final {
		f.Invoke, f.Return, f.Client = last+1, last+2, client+i
		out[i] = f
	}
	return out
}

// merge folds a sub-check's findings into r.
func merge(r *Result, sub Result) {
	for _, v := range sub.Violations {
		r.addf("%s", v)
	}
	r.Count += sub.Count - len(sub.Violations)
	r.TimedOut = r.TimedOut || sub.TimedOut
	r.TimedOutParts = append(r.TimedOutParts, sub.TimedOutParts...)
	if sub.Visualization != "" {
		r.Visualization = sub.Visualization
	}
}

// lockAcks is what the clients were told about one lock.
type lockAcks struct {
	token, nonce uint64
	owner        string // of the hold with the highest token
}

func ackedLocks(ops []history.Op) map[string]lockAcks {
	acked := map[string]lockAcks{}
	for _, op := range ops {
		if op.Outcome != history.OK {
			continue
		}
		a := acked[op.Name]
		switch {
		case op.Kind == history.Acquire || op.Kind == history.Renew:
			if t := ackToken(op); t > a.token {
				a.token, a.owner = t, op.Owner
			}
		case op.Kind == history.Query && op.ResFound && op.ResToken > a.token:
			a.token, a.owner = op.ResToken, op.ResHolder // "" if free: no owner to hold to
		case op.Kind != history.Query:
			continue
		}
		if op.Kind != history.Renew {
			a.nonce = max(a.nonce, op.ResNonce)
		}
		acked[op.Name] = a
	}
	return acked
}

func finalLock(r *Result, f history.Op, a lockAcks) {
	found := f.Outcome == history.OK && f.ResFound
	switch {
	case a.token == 0:
	case !found:
		r.addf("lock %q: no record at the end, but token %d was acknowledged", f.Name, a.token)
	case f.ResToken < a.token:
		r.addf("lock %q: final token %d below the acknowledged %d", f.Name, f.ResToken, a.token)
	case f.ResNonce != 0 && f.ResNonce < a.nonce:
		r.addf("lock %q: final nonce %d below the acknowledged %d", f.Name, f.ResNonce, a.nonce)
	case f.ResToken == a.token && f.ResHolder != "" && a.owner != "" && f.ResHolder != a.owner:
		r.addf("lock %q: final holder %q of token %d, which was granted to %q", f.Name, f.ResHolder, f.ResToken, a.owner)
	}
}
