package fsm

import (
	"maps"
	"slices"
)

// queue is a lock's FIFO of waiters, allocated only while the lock has some: a lock record of a
// million held, uncontended locks carries a nil pointer. Besides the waiters, served from the front,
// it keeps two aids so that each handoff is O(1) however long the queue grows (10,000 waiters on one
// lock must not make every release scan them all): the set of owners in it, and a lower bound on
// their deadlines, so that dropping dead waiters scans only when one may be dead.
type queue struct {
	items   []waiter
	owners  map[string]struct{}
	deadMin int64 // at most the earliest deadline in items
}

// waiting returns l's waiters in FIFO order (nil if none). Callers may change a waiter's fields in
// place, but add and remove waiters only through the functions below.
func (l *lock) waiting() []waiter {
	if l.queue == nil {
		return nil
	}
	return l.queue.items
}

// pushWaiter appends w to l's queue.
func (l *lock) pushWaiter(w waiter) {
	q := l.queue
	if q == nil {
		q = &queue{owners: make(map[string]struct{}), deadMin: w.deadline}
		l.queue = q
	}
	q.deadMin = min(q.deadMin, w.deadline)
	q.owners[w.owner] = struct{}{}
	q.items = append(q.items, w)
}

// popWaiter removes and returns the head of l's non-empty queue. It reslices rather than copies,
// so serving the head costs O(1); append reallocates the backing array as the queue cycles, which
// keeps the cost amortised O(1) and returns the served prefix's memory.
func (l *lock) popWaiter() waiter {
	q := l.queue
	w := q.items[0]
	q.items[0] = waiter{} // let the served waiter's strings go
	q.items = q.items[1:]
	delete(q.owners, w.owner)
	if len(q.items) == 0 {
		l.queue = nil
	}
	return w
}

// removeWaiter removes the waiter at i (a withdrawal: O(queue length)).
func (l *lock) removeWaiter(i int) {
	q := l.queue
	delete(q.owners, q.items[i].owner)
	q.items = slices.Delete(q.items, i, i+1)
	if len(q.items) == 0 {
		l.queue = nil
	}
}

// waiterIndex returns owner's place in l's queue, or -1. An owner that is not queued, the common
// case, costs one map lookup.
func (l *lock) waiterIndex(owner string) int {
	if l.queue == nil {
		return -1
	}
	if _, ok := l.queue.owners[owner]; !ok {
		return -1
	}
	return slices.IndexFunc(l.queue.items, func(w waiter) bool { return w.owner == owner })
}

// dropDeadWaiters removes waiters whose deadline has passed: they are never granted. It scans the
// queue only if the deadline bound says one may be dead, and then tightens the bound.
func (s *State) dropDeadWaiters(l *lock) {
	q := l.queue
	if q == nil || q.deadMin >= s.now {
		return
	}
	n := len(q.items)
	q.items = slices.DeleteFunc(q.items, func(w waiter) bool {
		if w.deadline < s.now {
			delete(q.owners, w.owner)
			return true
		}
		return false
	})
	s.waiters -= n - len(q.items)
	if len(q.items) == 0 {
		l.queue = nil
		return
	}
	q.deadMin = q.items[0].deadline
	for _, w := range q.items[1:] {
		q.deadMin = min(q.deadMin, w.deadline)
	}
}

// cloneQueue gives a copied lock record its own queue, so the copy and the original never share
// the waiters or the owner set.
func (l *lock) cloneQueue() {
	if l.queue == nil {
		return
	}
	l.queue = &queue{items: slices.Clone(l.queue.items), owners: maps.Clone(l.queue.owners), deadMin: l.queue.deadMin}
}
