package fsm

import (
	"container/heap"
	"math"
)

// newLock creates a record for name; the caller grants it at once.
func (s *State) newLock(name string) *lock {
	l := &lock{name: name, released: s.now, expiryAt: -1, idleAt: -1}
	s.locks[name] = l
	mustf(s.lockNames.insert(name), "lock %q indexed twice", name)
	return l
}

// dropLock forgets a released record (pruning).
func (s *State) dropLock(l *lock) {
	mustf(!l.held && len(l.waiters) == 0, "pruning lock %q that is held (%t) or has %d waiters",
		l.name, l.held, len(l.waiters))
	heap.Remove(&s.idle, l.idleAt)
	delete(s.locks, l.name)
	mustf(s.lockNames.remove(l.name), "lock %q missing from the name index", l.name)
}

// lapsed reports whether l's hold has a lease that passed by cluster time.
func (s *State) lapsed(l *lock) bool {
	return l.held && l.hold.expires <= s.now
}

// grant gives l to owner with a new fencing token, claimed by the calls
// waiting for it.
func (s *State) grant(l *lock, owner string, ttl int64, claims []uint64) {
	mustf(!l.held, "grant of lock %q to %q while %q holds token %d", l.name, owner, l.hold.owner, l.hold.token)
	mustf(l.waiterIndex(owner) < 0, "holder also queued: lock %q owner %q", l.name, owner)
	mustf(s.fence < math.MaxUint64, "fencing token not increasing: fence %d is the last", s.fence)
	s.fence++
	l.nonce++
	l.held = true
	l.hold = hold{
		owner:        owner,
		token:        s.fence,
		ttl:          ttl,
		granted:      s.now,
		expires:      satAdd(s.now, ttl),
		acquiredUnix: s.wall,
		claims:       claims,
	}
	if l.idleAt >= 0 {
		heap.Remove(&s.idle, l.idleAt)
	}
	heap.Push(&s.expiry, l)
	s.emit(EventGranted, l)
}

// end ends l's hold, reporting it as kind, and hands the lock on. It returns
// the new holder, or "" if the lock is now free.
func (s *State) end(l *lock, kind EventKind) string {
	s.emit(kind, l)
	heap.Remove(&s.expiry, l.expiryAt)
	l.held = false
	l.last = l.hold
	l.last.claims = nil
	l.hold = hold{}
	s.dropDeadWaiters(l)
	if len(l.waiters) == 0 {
		l.clearQueue()
		l.released = s.now
		heap.Push(&s.idle, l)
		return ""
	}
	w := l.popWaiter()
	s.waiters--
	s.grant(l, w.owner, w.ttl, w.claims)
	return w.owner
}

// setExpires moves l's lease deadline.
func (s *State) setExpires(l *lock, expires int64) {
	l.hold.expires = expires
	heap.Fix(&s.expiry, l.expiryAt)
}
