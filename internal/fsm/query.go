package fsm

import "container/heap"

// LockView is a copy of one lock record as of the last applied entry.
type LockView struct {
	Name string
	// Owner, Token, TTL, GrantedNanos, ExpiresNanos and AcquiredUnixNanos
	// describe the current hold, lapsed or not. On a free lock, Token, TTL,
	// GrantedNanos and AcquiredUnixNanos describe its last hold (Owner and
	// ExpiresNanos are zero); all are zero if it was never held since its
	// record was made. AcquiredUnixNanos is the granting leader's wall
	// clock, for display.
	Owner                                              string
	Token                                              uint64
	Nonce                                              uint64 // grants of this lock so far
	TTL, GrantedNanos, ExpiresNanos, AcquiredUnixNanos int64
	// Waiters counts live waiters: queued, deadline not passed by Now().
	Waiters int
	// Held: a hold exists and its lease has not passed by Now(). A hold can
	// be lapsed yet not ended (Held false, Owner set) until Expire or another
	// command touches the lock.
	Held bool
}

func (s *State) view(l *lock) LockView {
	v := LockView{Name: l.name, Nonce: l.nonce}
	if l.held {
		v.Owner, v.Token, v.TTL = l.hold.owner, l.hold.token, l.hold.ttl
		v.GrantedNanos, v.ExpiresNanos = l.hold.granted, l.hold.expires
		v.AcquiredUnixNanos = l.hold.acquiredUnix
		v.Held = !s.lapsed(l)
	} else if l.last != nil && l.last.token != 0 {
		// A free lock shows its last hold (owner left out): the seed's
		// query reports the time of the last acquirement after a release.
		v.Token, v.TTL, v.GrantedNanos = l.last.token, l.last.ttl, l.last.granted
		v.AcquiredUnixNanos = l.last.acquiredUnix
	}
	for _, w := range l.waiting() {
		if w.deadline >= s.now {
			v.Waiters++
		}
	}
	return v
}

// Lock returns name's record, or false if there is none (never acquired, or
// released and pruned).
func (s *State) Lock(name string) (LockView, bool) {
	l, ok := s.locks[name]
	if !ok {
		return LockView{}, false
	}
	return s.view(l), true
}

// Locks returns up to limit records whose name starts with prefix and sorts
// after startAfter, in ascending name order, and whether more exist. A limit
// <= 0 returns no records.
func (s *State) Locks(prefix, startAfter string, limit int) ([]LockView, bool) {
	names, more := s.lockNames.page(prefix, startAfter, limit)
	out := make([]LockView, len(names))
	for i, n := range names {
		out[i] = s.view(s.locks[n])
	}
	return out, more
}

// NextExpiry returns the hold with the earliest lease deadline (ties: lowest
// token), lapsed or not, in O(1); ok is false when nothing is held. The leader
// arms its timer with it and proposes Expire(name, token) when it passes.
func (s *State) NextExpiry() (name string, token uint64, expiresNanos int64, ok bool) {
	if s.expiry.Len() == 0 {
		return "", 0, 0, false
	}
	l := s.expiry.items[0]
	return l.name, l.hold.token, l.hold.expires, true
}

// Expired returns the holds whose lease deadline is <= now (the caller's
// cluster-time estimate), earliest first (ties: lowest token), at most limit
// of them, in O(limit log limit). A limit <= 0 returns none.
func (s *State) Expired(now int64, limit int) []LockView {
	items := s.expiry.items
	if limit <= 0 || len(items) == 0 {
		return nil
	}
	// Best-first walk of the heap array: a node's children are never earlier.
	frontier := pq[int]{
		less:     func(a, b int) bool { return expiryLess(items[a], items[b]) },
		setIndex: func(int, int) {},
	}
	heap.Push(&frontier, 0)
	var out []LockView
	for frontier.Len() > 0 && len(out) < limit {
		i := heap.Pop(&frontier).(int)
		if items[i].hold.expires > now {
			break
		}
		out = append(out, s.view(items[i]))
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(items) {
				heap.Push(&frontier, c)
			}
		}
	}
	return out
}

// Queued reports whether owner waits in name's queue with a deadline that
// has not passed by Now().
func (s *State) Queued(name, owner string) bool {
	l, ok := s.locks[name]
	if !ok {
		return false
	}
	i := l.waiterIndex(owner)
	return i >= 0 && l.waiting()[i].deadline >= s.now
}
