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
		s.grant(l, a.GetOwner(), a.GetTtlNanos(), 0)
		return holdResult(fsmpb.Code_OK, l)
	case l.hold.owner == a.GetOwner():
		l.hold.ttl = a.GetTtlNanos()
		s.setExpires(l, satAdd(s.now, a.GetTtlNanos()))
		return holdResult(fsmpb.Code_OK, l)
	case a.GetWaitNanos() == 0:
		return refuse(fsmpb.Code_LOCKED, "lock %q is held by another owner", a.GetName())
	}
	return s.enqueue(l, a)
}

// enqueue queues the acquirer on l, which another owner holds. A queued owner
// keeps its place; its deadline only grows, its TTL is updated, and the new
// call becomes the one waiting (a Withdraw must now name its attempt).
func (s *State) enqueue(l *lock, a *fsmpb.Acquire) *fsmpb.Result {
	s.dropDeadWaiters(l)
	deadline := satAdd(s.now, a.GetWaitNanos())
	if i := l.waiterIndex(a.GetOwner()); i >= 0 {
		w := &l.waiters[i]
		w.deadline = max(w.deadline, deadline)
		w.ttl = a.GetTtlNanos()
		w.attempt = a.GetAttempt()
		return &fsmpb.Result{Code: fsmpb.Code_QUEUED, Position: uint32(i + 1), TtlNanos: w.ttl}
	}
	if len(l.waiters) >= s.limits.WaitersPerLockMax {
		return overLimit("queue of lock %q is full: %d waiters, the limit", a.GetName(), len(l.waiters))
	}
	mustf(l.hold.owner != a.GetOwner(), "holder also queued: lock %q owner %q token %d",
		l.name, a.GetOwner(), l.hold.token)
	l.waiters = append(l.waiters, waiter{owner: a.GetOwner(), ttl: a.GetTtlNanos(), deadline: deadline,
		enqueued: s.now, attempt: a.GetAttempt()})
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

// withdraw is sent by a call that stopped waiting. It takes that call's
// waiter out of the queue or, if a grant from the queue raced with its
// timeout, releases the hold granted to it. It never touches a wait or hold
// that belongs to another call of the same owner (another attempt, or a hold
// granted at once): those are IGNORED. A lapsed hold is ended first.
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
	if i := l.waiterIndex(w.GetOwner()); i >= 0 && l.waiters[i].attempt == w.GetAttempt() {
		l.waiters = slices.Delete(l.waiters, i, i+1)
		s.waiters--
		return &fsmpb.Result{Code: fsmpb.Code_OK}
	}
	if l.held && l.hold.owner == w.GetOwner() && l.hold.attempt == w.GetAttempt() {
		token := l.hold.token
		next := s.end(l, EventReleased)
		return &fsmpb.Result{Code: fsmpb.Code_OK, Token: token, NextOwner: next, Released: true}
	}
	return refuse(fsmpb.Code_IGNORED, "attempt %d of the owner neither waits for nor was granted lock %q",
		w.GetAttempt(), w.GetName())
}

// adopt makes a retried Acquire's call the one waiting: the retry of a
// queued acquire (same client id and seq) gets the remembered answer, and
// the call that first carried it may still withdraw. Moving the attempt to
// the retry makes that stale withdrawal IGNORED, so the retry keeps the
// place in the queue, or the hold granted from it.
func (s *State) adopt(a *fsmpb.Acquire) {
	l := s.locks[a.GetName()]
	if l == nil || a.GetAttempt() == 0 {
		return
	}
	if i := l.waiterIndex(a.GetOwner()); i >= 0 {
		l.waiters[i].attempt = a.GetAttempt()
		return
	}
	if l.held && l.hold.owner == a.GetOwner() && l.hold.attempt != 0 {
		l.hold.attempt = a.GetAttempt()
	}
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
