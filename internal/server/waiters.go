package server

import (
	"sync"

	"github.com/dlock-raft/dlock/internal/fsm"
)

// Waiters lets Acquire calls blocked in a lock's queue learn of their grant.
// The node publishes every applied event here, on every node, so a call
// waits on the node it arrived at and survives leader changes. A signal only
// says "look again": the waiter re-reads the state.
type Waiters struct {
	mu    sync.Mutex
	byKey map[waitKey]map[chan struct{}]struct{}
}

type waitKey struct{ name, owner string }

// NewWaiters returns an empty registry.
func NewWaiters() *Waiters {
	return &Waiters{byKey: make(map[waitKey]map[chan struct{}]struct{})}
}

// Publish is the node's EventSink. It never blocks.
func (w *Waiters) Publish(events []fsm.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if events == nil {
		for _, set := range w.byKey {
			signalAll(set)
		}
		return
	}
	for _, e := range events {
		if e.Kind == fsm.EventGranted {
			signalAll(w.byKey[waitKey{e.Name, e.Owner}])
		}
	}
}

func signalAll(set map[chan struct{}]struct{}) {
	for ch := range set {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// watch registers interest in grants of name to owner. The channel holds
// at most one pending signal; cancel must be called.
func (w *Waiters) watch(name, owner string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	k := waitKey{name, owner}
	w.mu.Lock()
	set := w.byKey[k]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		w.byKey[k] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		cur := w.byKey[k]
		delete(cur, ch)
		if len(cur) == 0 {
			delete(w.byKey, k)
		}
	}
}
