package fsm

import (
	"cmp"
	"fmt"
	"math"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// State is the replicated state: locks with their holds and queues, the KV
// store, the fencing counter, cluster time and the idempotency table. It is
// not safe for concurrent use: the caller serializes every method (Apply
// included) behind one lock. Results and views it returns are copies the
// caller may keep and modify.
type State struct {
	limits    Limits
	now       int64  // cluster time of the last applied entry; never decreases
	fence     uint64 // the last fencing token issued
	lastPrune int64  // cluster time of the last pruning pass

	locks     map[string]*lock
	lockNames sortedSet
	expiry    pq[*lock] // every hold, by (expires, token)
	idle      pq[*lock] // every released record, by (released, name)
	waiters   int       // queue entries over all locks

	kv       map[string][]byte
	keyNames sortedSet

	clients map[string]*client
	lru     pq[*client] // every client, by (lastSeen, id)

	principals map[string]*principal // access control (see acl.go)
	tokens     map[[32]byte]string   // token hash to its principal's name

	// Scratch valid only during Apply.
	wall   int64   // the entry's wall clock, copied into grants for display
	events []Event // what the entry's commands did, in order
}

// lock is one lock record. A record exists while the lock is held, or after
// its release until it is pruned. A released record has no waiters: a release
// always hands the lock to the first live waiter, if there is one.
type lock struct {
	name     string
	nonce    uint64 // grants of this lock so far
	held     bool
	hold     hold   // valid when held
	queue    *queue // FIFO of waiters, only while held; nil when empty (see queue.go)
	released int64  // cluster time of the last release; valid when !held
	last     *hold  // the most recent hold that ended, for queries of a free lock (no claims); nil until one ends
	expiryAt int    // index in State.expiry; -1 when !held
	idleAt   int    // index in State.idle; -1 when held
}

// hold is one grant: its lease runs until expires (cluster time). A hold whose
// expires <= now has lapsed: it is dead and is ended by the next command that
// touches the lock, or by Expire.
type hold struct {
	owner        string
	token        uint64
	ttl          int64
	granted      int64
	expires      int64
	acquiredUnix int64    // the granting entry's wall clock, for display only
	claims       []uint64 // attempts of the calls it was granted to (see Acquire.attempt)
}

// waiter is one queued Acquire. A waiter whose deadline < now is dead: it is
// dropped before the queue is served or grown, and never granted.
type waiter struct {
	owner    string
	ttl      int64 // the TTL it will be granted with
	deadline int64
	enqueued int64
	claims   []uint64 // attempts of the calls waiting for it (see Acquire.attempt)
}

// client is one idempotency table entry.
type client struct {
	id       string
	lastSeen int64
	results  []cached // ascending seq; at most ResultsPerClientMax; none below ackedBelow
	// ackedBelow: the client has the answers of every seq below it; those
	// seqs are refused (STALE_REQUEST), never applied again.
	ackedBelow uint64
	// evictedMax is the highest seq whose result was evicted for room: a seq
	// at or below it that is not remembered may have been applied already.
	evictedMax uint64
	lruAt      int // index in State.lru
}

type cached struct {
	seq uint64
	res *fsmpb.Result
	// wait is, for an Acquire answered QUEUED, the lock and owner it queued
	// (see client.waiting); zero otherwise.
	wait waitRef
}

// waitRef names one owner's wait in one lock's queue.
type waitRef struct{ lock, owner string }

// New returns an empty State enforcing l.
//
// WARNING: l must pass Validate (config validation comes first); New panics
// otherwise, as invalid limits are a programming error, not input.
func New(l Limits) *State {
	if err := l.Validate(); err != nil {
		panic(fmt.Sprintf("dlock: fsm.New: %v", err))
	}
	s := &State{
		limits:  l,
		locks:   make(map[string]*lock),
		kv:      make(map[string][]byte),
		clients: make(map[string]*client),

		principals: make(map[string]*principal),
		tokens:     make(map[[32]byte]string),
	}
	s.expiry = pq[*lock]{less: expiryLess, setIndex: func(l *lock, i int) { l.expiryAt = i }}
	s.idle = pq[*lock]{less: idleLess, setIndex: func(l *lock, i int) { l.idleAt = i }}
	s.lru = pq[*client]{less: lruLess, setIndex: func(c *client, i int) { c.lruAt = i }}
	return s
}

func expiryLess(a, b *lock) bool {
	if a.hold.expires != b.hold.expires {
		return a.hold.expires < b.hold.expires
	}
	return a.hold.token < b.hold.token // tokens are unique
}

func idleLess(a, b *lock) bool {
	return cmp.Or(cmp.Compare(a.released, b.released), cmp.Compare(a.name, b.name)) < 0
}

func lruLess(a, b *client) bool {
	return cmp.Or(cmp.Compare(a.lastSeen, b.lastSeen), cmp.Compare(a.id, b.id)) < 0
}

// Now returns the cluster time of the last applied entry, in nanoseconds.
func (s *State) Now() int64 { return s.now }

// Fence returns the last fencing token issued (0 before the first grant).
func (s *State) Fence() uint64 { return s.fence }

// Limits returns the limits this State enforces.
func (s *State) Limits() Limits { return s.limits }

// Counts returns the number of lock records, holds (including lapsed ones
// not yet ended), queue entries (including dead waiters not yet dropped),
// KV keys and idempotency clients. Each is O(1).
func (s *State) Counts() (locks, held, waiters, keys, clients int) {
	return len(s.locks), s.expiry.Len(), s.waiters, len(s.kv), len(s.clients)
}

// satAdd returns a+b for non-negative a and b, saturating at MaxInt64, so a
// huge TTL or wait means "practically forever" rather than an overflow.
func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// mustf panics when an invariant does not hold. Only a bug can trigger it:
// bad input is refused with a result before it can break an invariant.
func mustf(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf("dlock: fsm invariant broken: "+format, args...))
	}
}
