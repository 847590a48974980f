package fsm

import (
	"container/heap"
	"slices"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// acquire grants a free lock, refreshes the caller's own hold (reentrancy),
// or queues the caller behind the holder. A lapsed hold is ended first, which
// may hand the lock to the first live waiter.
func (s *State) acquire(a *fsmpb.Acquire) *fsmpb.Result {
	if r := firstProblem(s.checkName(a.GetName()), s.checkOwner(a.GetOwner()),
		checkPositive("ttl_nanos", a.GetTtlNanos()), checkNotNegative("wait_nanos", a.GetWaitNanos())); r != nil {
		return r
	}
	l := s.locks[a.GetName()]
	if l == nil {
		if len(s.locks) >= s.limits.LocksMax {
			return overLimit("%d lock records, the limit", s.limits.LocksMax)
		}
		l = s.newLock(a.GetName())
	}
	if s.lapsed(l) {
		s.end(l, EventExpired)
	}
	switch {
	case !l.held:
		s.grant(l, a.GetOwner(), a.GetTtlNanos(), addClaim(nil, a.GetAttempt()))
		return holdResult(fsmpb.Code_OK, l)
	case l.hold.owner == a.GetOwner():
		// A refresh is told it holds the lock, so it claims the hold: a
		// withdrawal of the call the hold was granted to (a client that gave
		// up on it) must not end a hold this call was told it has.
		l.hold.ttl = a.GetTtlNanos()
		l.hold.claims = addClaim(l.hold.claims, a.GetAttempt())
		s.setExpires(l, satAdd(s.now, a.GetTtlNanos()))
		return holdResult(fsmpb.Code_OK, l)
	case a.GetWaitNanos() == 0:
		return refuse(fsmpb.Code_LOCKED, "lock %q is held by another owner", a.GetName())
	}
	return s.enqueue(l, a)
}

// enqueue queues the acquirer on l, which another owner holds. A queued owner
// keeps its place; its deadline only grows, its TTL is updated, and the new
// call claims the wait too.
func (s *State) enqueue(l *lock, a *fsmpb.Acquire) *fsmpb.Result {
	s.dropDeadWaiters(l)
	deadline := satAdd(s.now, a.GetWaitNanos())
	if i := l.waiterIndex(a.GetOwner()); i >= 0 {
		w := &l.waiters[i]
		w.deadline = max(w.deadline, deadline)
		w.ttl = a.GetTtlNanos()
		w.claims = addClaim(w.claims, a.GetAttempt())
		return &fsmpb.Result{Code: fsmpb.Code_QUEUED, Position: uint32(i + 1), TtlNanos: w.ttl}
	}
	if len(l.waiters) >= s.limits.WaitersPerLockMax {
		return overLimit("queue of lock %q is full: %d waiters, the limit", a.GetName(), len(l.waiters))
	}
	mustf(l.hold.owner != a.GetOwner(), "holder also queued: lock %q owner %q token %d",
		l.name, a.GetOwner(), l.hold.token)
	l.pushWaiter(waiter{owner: a.GetOwner(), ttl: a.GetTtlNanos(), deadline: deadline,
		enqueued: s.now, claims: addClaim(nil, a.GetAttempt())})
	s.waiters++
	return &fsmpb.Result{Code: fsmpb.Code_QUEUED, Position: uint32(len(l.waiters)), TtlNanos: a.GetTtlNanos()}
}

// renew extends the caller's live hold to now + ttl (ttl 0: the hold's TTL).
func (s *State) renew(r *fsmpb.Renew) *fsmpb.Result {
	if p := firstProblem(s.checkName(r.GetName()), s.checkOwner(r.GetOwner()),
		checkNotNegative("ttl_nanos", r.GetTtlNanos())); p != nil {
		return p
	}
	l := s.locks[r.GetName()]
	switch {
	case l == nil || !l.held:
		return refuse(fsmpb.Code_NOT_HELD, "lock %q is not held", r.GetName())
	case s.lapsed(l):
		res := refuse(fsmpb.Code_NOT_HELD, "lease of lock %q has expired", r.GetName())
		res.NextOwner = s.end(l, EventExpired)
		return res
	case l.hold.owner != r.GetOwner():
		return refuse(fsmpb.Code_HELD_BY_OTHER, "lock %q is held by another owner", r.GetName())
	case r.GetToken() != 0 && r.GetToken() != l.hold.token:
		return refuse(fsmpb.Code_TOKEN_MISMATCH, "token %d is not the current hold's", r.GetToken())
	}
	if r.GetTtlNanos() > 0 {
		l.hold.ttl = r.GetTtlNanos()
	}
	s.setExpires(l, satAdd(s.now, l.hold.ttl))
	return holdResult(fsmpb.Code_OK, l)
}

// release ends the caller's hold and hands the lock on. A hold whose lease
// has lapsed answers NOT_HELD, and is ended (as Expire would) all the same.
func (s *State) release(r *fsmpb.Release) *fsmpb.Result {
	if p := firstProblem(s.checkName(r.GetName()), s.checkOwner(r.GetOwner())); p != nil {
		return p
	}
	l := s.locks[r.GetName()]
	switch {
	case l == nil || !l.held:
		return refuse(fsmpb.Code_NOT_HELD, "lock %q is not held", r.GetName())
	case l.hold.owner != r.GetOwner():
		return refuse(fsmpb.Code_HELD_BY_OTHER, "lock %q is held by another owner", r.GetName())
	case r.GetToken() != 0 && r.GetToken() != l.hold.token:
		return refuse(fsmpb.Code_TOKEN_MISMATCH, "token %d is not the current hold's", r.GetToken())
	case s.lapsed(l):
		res := refuse(fsmpb.Code_NOT_HELD, "lease of lock %q has expired", r.GetName())
		res.NextOwner = s.end(l, EventExpired)
		return res
	}
	token := l.hold.token
	return &fsmpb.Result{Code: fsmpb.Code_OK, Token: token, NextOwner: s.end(l, EventReleased)}
}

// withdraw is sent by a call that stopped waiting: it drops that call's
// claim on the owner's wait, or on the hold granted from it (or at once).
// Only when the last claim goes does the waiter leave the queue, or the hold
// end and pass on, so a call never withdraws what another call of the same
// owner still waits for or was told it holds. A wait or hold the call does
// not claim is left alone (IGNORED). A lapsed hold is ended first.
func (s *State) withdraw(w *fsmpb.Withdraw) *fsmpb.Result {
	if p := firstProblem(s.checkName(w.GetName()), s.checkOwner(w.GetOwner()),
		checkSet("attempt", w.GetAttempt())); p != nil {
		return p
	}
	l := s.locks[w.GetName()]
	if l == nil {
		return refuse(fsmpb.Code_IGNORED, "lock %q has no record", w.GetName())
	}
	if s.lapsed(l) {
		s.end(l, EventExpired)
	}
	if i := l.waiterIndex(w.GetOwner()); i >= 0 && hasClaim(l.waiters[i].claims, w.GetAttempt()) {
		wt := &l.waiters[i]
		if wt.claims = dropClaim(wt.claims, w.GetAttempt()); len(wt.claims) == 0 {
			l.removeWaiter(i)
			s.waiters--
		}
		return &fsmpb.Result{Code: fsmpb.Code_OK}
	}
	if l.held && l.hold.owner == w.GetOwner() && hasClaim(l.hold.claims, w.GetAttempt()) {
		if l.hold.claims = dropClaim(l.hold.claims, w.GetAttempt()); len(l.hold.claims) > 0 {
			return &fsmpb.Result{Code: fsmpb.Code_OK, Token: l.hold.token}
		}
		token := l.hold.token
		next := s.end(l, EventReleased)
		return &fsmpb.Result{Code: fsmpb.Code_OK, Token: token, NextOwner: next, Released: true}
	}
	return refuse(fsmpb.Code_IGNORED, "attempt %d of the owner neither waits for nor was granted lock %q",
		w.GetAttempt(), w.GetName())
}

// adopt hands a retried Acquire the claim of the request it retries: the
// wait it was queued in (or the hold since granted from it) if the
// remembered answer is QUEUED, or the very hold it was granted (same token)
// if the answer is OK. The client listens only to its latest attempt, so
// the retry's call takes the claim over from the call that carried the
// request before: that call's late withdrawal is then ignored, and the
// retry's own withdrawal (its wait ended, its client gave up) removes the
// request's claim, so a request answered WAIT_TIMEOUT leaves nothing
// behind. A late repeat of a replaced call (a node retrying its forward),
// or an earlier client send (a lower RequestHeader.try) applied after a
// later one, claims nothing. Other answers (LOCKED, errors) queued nothing and claim nothing;
// a hold without claims is never claimed.
//
// It returns the remembered answer to keep from now on (a new one: the old
// may be shared with a clone of the state), or nil if nothing changed.
func (s *State) adopt(a *fsmpb.Acquire, answer *fsmpb.Result) *fsmpb.Result {
	l := s.locks[a.GetName()]
	if l == nil || a.GetAttempt() == 0 {
		return nil
	}
	if hasClaim(answer.GetSuperseded(), a.GetAttempt()) {
		return nil // a late repeat of a call a retry has replaced
	}
	if a.GetTry() != 0 && a.GetTry() < answer.GetAttemptTry() {
		// An earlier send of the request, arriving after the client's retry
		// was applied: its call is one the client gave up on, and must not
		// take the claim back from the call the client listens to.
		kept := cloneResult(answer)
		kept.Superseded = addClaim(answer.GetSuperseded(), a.GetAttempt()) // a new slice
		return kept
	}
	var kept *fsmpb.Result
	takeOver := func(claims []uint64) []uint64 {
		kept = cloneResult(answer)
		if prev := answer.GetAttempt(); prev != 0 && prev != a.GetAttempt() {
			claims = dropClaim(claims, prev)
			kept.Superseded = addClaim(answer.GetSuperseded(), prev) // a new slice
		}
		kept.Attempt, kept.AttemptTry = a.GetAttempt(), a.GetTry()
		return addClaim(claims, a.GetAttempt())
	}
	owned := l.held && l.hold.owner == a.GetOwner() && len(l.hold.claims) > 0
	switch answer.GetCode() {
	case fsmpb.Code_QUEUED:
		if i := l.waiterIndex(a.GetOwner()); i >= 0 {
			l.waiters[i].claims = takeOver(l.waiters[i].claims)
		} else if owned {
			l.hold.claims = takeOver(l.hold.claims)
		}
	case fsmpb.Code_OK:
		if owned && l.hold.token == answer.GetToken() {
			l.hold.claims = takeOver(l.hold.claims)
		}
	}
	return kept
}

// ClaimsMax bounds the calls recorded as waiting for one wait or hold. Past
// it the oldest claim is dropped: that call's withdrawal is then ignored,
// which can only leave the wait or hold in place (until its deadline or
// lease), never end one that a call still claims.
const ClaimsMax = 16

// addClaim adds attempt (not 0) to claims, dropping the oldest past
// ClaimsMax. The result is a new slice: claims may be shared with a clone.
func addClaim(claims []uint64, attempt uint64) []uint64 {
	if attempt == 0 || hasClaim(claims, attempt) {
		return claims
	}
	out := make([]uint64, 0, min(len(claims)+1, ClaimsMax))
	if len(claims) >= ClaimsMax {
		claims = claims[len(claims)-ClaimsMax+1:]
	}
	return append(append(out, claims...), attempt)
}

func hasClaim(claims []uint64, attempt uint64) bool { return slices.Contains(claims, attempt) }

// dropClaim returns claims without attempt, as a new slice.
func dropClaim(claims []uint64, attempt uint64) []uint64 {
	out := make([]uint64, 0, len(claims))
	for _, c := range claims {
		if c != attempt {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// expire ends the hold with the given token if it is still current and its
// lease has passed by cluster time; a stale leader's Expire is IGNORED.
func (s *State) expire(e *fsmpb.Expire) *fsmpb.Result {
	if p := firstProblem(s.checkName(e.GetName()), checkTokenSet(e.GetToken())); p != nil {
		return p
	}
	l := s.locks[e.GetName()]
	if l == nil || !l.held || l.hold.token != e.GetToken() || !s.lapsed(l) {
		return refuse(fsmpb.Code_IGNORED, "token %d of lock %q is not a lapsed current hold", e.GetToken(), e.GetName())
	}
	return &fsmpb.Result{Code: fsmpb.Code_OK, Token: e.GetToken(), NextOwner: s.end(l, EventExpired)}
}

func checkTokenSet(t uint64) *fsmpb.Result { return checkSet("token", t) }

// checkSet refuses a zero id where one is required.
func checkSet(what string, v uint64) *fsmpb.Result {
	if v == 0 {
		return invalid("%s is 0", what)
	}
	return nil
}

// leaderStart re-arms every live lease to at least its full TTL from now, so
// a failover never cuts a lease short nor stretches one beyond a full TTL.
// Lapsed holds stay lapsed. Order does not matter: each hold changes alone.
func (s *State) leaderStart() *fsmpb.Result {
	for _, l := range s.expiry.items {
		if !s.lapsed(l) {
			l.hold.expires = max(l.hold.expires, satAdd(s.now, l.hold.ttl))
		}
	}
	heap.Init(&s.expiry)
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}
