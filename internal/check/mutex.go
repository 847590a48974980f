package check

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// Mutex checks mutual exclusion as the clients saw it. Each hold (an owner
// told it holds a lock with a token) is valid, conservatively, from the
// first OK acquire's return until its lease surely ran (the last
// acknowledgement's invoke plus its TTL) or its owner sent a release,
// whichever is first. Two holds of one lock must not both be valid at once,
// their tokens must grow in window order, and no token may name two holds.
//
// writes, from Resource.Writes, may be nil. Each write's (lock, owner,
// token) must name a hold. A write that ran wholly inside its hold's window
// must have been accepted; a write accepted after a write of a hold whose
// window began after its own hold's ended means the later hold had a lower
// token (the resource let a stale holder overwrite a newer one).
func Mutex(ops []history.Op, writes []Write) Result {
	r := Result{Checker: "mutex"}
	locks := byLock(ops)
	windows := map[holdID]window{}
	owners := map[uint64]holdID{} // token -> the hold it names
	for _, name := range sortedNames(locks) {
		l := locks[name]
		var valid []window
		for _, h := range l.holds {
			w := newWindow(h, l.ops)
			id := holdID{h.name, h.owner, h.token}
			windows[id] = w
			if other, dup := owners[h.token]; dup {
				r.addf("token %d names two holds: lock %q owner %q and lock %q owner %q",
					h.token, other.lock, other.owner, h.name, h.owner)
			}
			owners[h.token] = id
			if w.start < w.end {
				valid = append(valid, w)
			}
		}
		exclusive(&r, valid)
	}
	checkWrites(&r, windows, writes)
	return r
}

// holdID names a hold.
type holdID struct {
	lock, owner string
	token       uint64
}

// window is when a hold's owner may act as the holder: [start, end).
type window struct {
	h          *hold
	start, end time.Duration
}

func newWindow(h *hold, ops []history.Op) window {
	end := h.released(ops, forever)
	lease, _ := h.leaseEnd(ops, end)
	return window{h: h, start: h.start, end: min(end, lease)}
}

func (w window) String() string {
	return fmt.Sprintf("owner %q token %d valid [%v, %v)", w.h.owner, w.h.token, ms(w.start), ms(w.end))
}

// exclusive reports overlapping windows of one lock and tokens that do not
// grow in window order. valid is sorted by start.
func exclusive(r *Result, valid []window) {
	for i, w := range valid {
		for _, prev := range valid[:i] {
			switch {
			case prev.end > w.start:
				r.addf("lock %q held twice at once: %s and %s", w.h.name, prev, w)
			case prev.h.token >= w.h.token:
				r.addf("lock %q: token did not grow: %s, then %s", w.h.name, prev, w)
			}
		}
	}
}

func checkWrites(r *Result, windows map[holdID]window, writes []Write) {
	for _, w := range writes {
		win, ok := windows[holdID{w.Lock, w.Owner, w.Token}]
		switch {
		case !ok:
			r.addf("%s: no OK acquire or renew gave owner %q token %d of this lock", w, w.Owner, w.Token)
		case !w.Accepted && win.start <= w.Start && w.End <= win.end:
			r.addf("%s: refused inside its hold's window, %s", w, win)
		}
	}
	// Accepted writes per lock, by start: for each, the earliest-ending
	// accepted write of each later hold is enough, but the histories are
	// small, so compare pairs.
	byLock := map[string][]Write{}
	for _, w := range writes {
		if w.Accepted {
			byLock[w.Lock] = append(byLock[w.Lock], w)
		}
	}
	for _, ws := range byLock {
		sort.Slice(ws, func(i, j int) bool { return ws[i].Start < ws[j].Start })
		for i, w := range ws {
			mine, ok := windows[holdID{w.Lock, w.Owner, w.Token}]
			if !ok || mine.start >= mine.end {
				continue
			}
			for _, before := range ws[:i] {
				theirs, ok := windows[holdID{before.Lock, before.Owner, before.Token}]
				if ok && before.End < w.Start && theirs.start < theirs.end && theirs.start >= mine.end {
					r.addf("%s: accepted after %s, whose hold began after this one ended", w, before)
					break
				}
			}
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WritesMax bounds the writes a Resource records: a campaign writes far
// fewer, and an endless log would hide a runaway workload.
const WritesMax = 1 << 20

// Write is one write to a Resource.
type Write struct {
	Lock, Owner string
	Token       uint64
	// Start and End bracket the resource's accept-or-refuse decision, on
	// the clock given to NewResource.
	Start, End time.Duration
	Accepted   bool
}

func (w Write) String() string {
	verdict := "refused"
	if w.Accepted {
		verdict = "accepted"
	}
	return fmt.Sprintf("write to %q by owner %q token %d [%v, %v] %s", w.Lock, w.Owner, w.Token, ms(w.Start), ms(w.End), verdict)
}

// Resource stands for something a lock guards, which checks fencing tokens:
// it accepts a write iff its token is at least the highest it has seen for
// that lock. Workloads write to it while they hold the lock, and hand
// Writes to Mutex. Safe for concurrent use.
type Resource struct {
	now     func() time.Duration
	mu      sync.Mutex
	highest map[string]uint64
	writes  []Write
}

// NewResource returns an empty resource that stamps writes with now, which
// must be the clock the history is recorded on (history.Recorder.Now).
func NewResource(now func() time.Duration) *Resource {
	return &Resource{now: now, highest: map[string]uint64{}}
}

// Write writes to lock's data as owner, fenced by token, and reports
// whether the resource accepted it. It panics past WritesMax writes.
func (r *Resource) Write(lock, owner string, token uint64) bool {
	start := r.now()
	r.mu.Lock()
	if len(r.writes) >= WritesMax {
		r.mu.Unlock()
		panic(fmt.Sprintf("check: resource log full: %d writes, the limit", WritesMax))
	}
	ok := token >= r.highest[lock]
	if ok {
		r.highest[lock] = token
	}
	// End is stamped under the lock, so accepted writes end in the order
	// the resource decided them.
	r.writes = append(r.writes, Write{Lock: lock, Owner: owner, Token: token, Start: start, End: r.now(), Accepted: ok})
	r.mu.Unlock()
	return ok
}

// Writes returns a copy of the writes so far, in the order decided.
func (r *Resource) Writes() []Write {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Write(nil), r.writes...)
}
