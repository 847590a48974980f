package fsm

import (
	"maps"
	"slices"
)

// A lock's FIFO queue is l.waiters, served from the front, plus two aids that keep each handoff
// O(1) however long the queue grows (10,000 waiters on one lock must not make every release scan
// them all): l.queued, the set of owners in the queue, and l.deadMin, a lower bound on their
// deadlines, so that dropping dead waiters scans only when one may be dead.

// pushWaiter appends w to l's queue.
func (l *lock) pushWaiter(w waiter) {
	if len(l.waiters) == 0 || w.deadline < l.deadMin {
		l.deadMin = w.deadline
	}
	if l.queued == nil {
		l.queued = make(map[string]struct{})
	}
	l.queued[w.owner] = struct{}{}
	l.waiters = append(l.waiters, w)
}

// popWaiter removes and returns the head of l's non-empty queue. It reslices rather than copies,
// so serving the head costs O(1); append reallocates the backing array as the queue cycles, which
// keeps the cost amortised O(1) and returns the served prefix's memory.
func (l *lock) popWaiter() waiter {
	w := l.waiters[0]
	l.waiters[0] = waiter{} // let the served waiter's strings go
	l.waiters = l.waiters[1:]
	delete(l.queued, w.owner)
	if len(l.waiters) == 0 {
		l.clearQueue()
	}
	return w
}

// removeWaiter removes the waiter at i (a withdrawal: O(queue length)).
func (l *lock) removeWaiter(i int) {
	delete(l.queued, l.waiters[i].owner)
	l.waiters = slices.Delete(l.waiters, i, i+1)
	if len(l.waiters) == 0 {
		l.clearQueue()
	}
}

func (l *lock) clearQueue() {
	l.waiters, l.queued, l.deadMin = nil, nil, 0
}

// waiterIndex returns owner's place in l's queue, or -1. An owner that is not queued, the common
// case, costs one map lookup.
func (l *lock) waiterIndex(owner string) int {
	if _, ok := l.queued[owner]; !ok {
		return -1
	}
	return slices.IndexFunc(l.waiters, func(w waiter) bool { return w.owner == owner })
}

// dropDeadWaiters removes waiters whose deadline has passed: they are never granted. It scans the
// queue only if the deadline bound says one may be dead, and then tightens the bound.
func (s *State) dropDeadWaiters(l *lock) {
	if len(l.waiters) == 0 || l.deadMin >= s.now {
		return
	}
	n := len(l.waiters)
	l.waiters = slices.DeleteFunc(l.waiters, func(w waiter) bool {
		if w.deadline < s.now {
			delete(l.queued, w.owner)
			return true
		}
		return false
	})
	s.waiters -= n - len(l.waiters)
	if len(l.waiters) == 0 {
		l.clearQueue()
		return
	}
	l.deadMin = l.waiters[0].deadline
	for _, w := range l.waiters[1:] {
		l.deadMin = min(l.deadMin, w.deadline)
	}
}

// cloneQueue gives a copied lock record its own queue, so the copy and the original never share
// a slice or the owner set.
func (l *lock) cloneQueue() {
	l.waiters = slices.Clone(l.waiters)
	l.queued = maps.Clone(l.queued)
}
