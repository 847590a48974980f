package fsm

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Snapshot phases, in stream order.
const (
	phaseHeader = iota
	phaseLocks
	phaseKV
	phaseClients
	phasePrincipals
)

var phaseNames = [...]string{"header", "lock", "kv", "client", "principal"}

// rebuilder builds a State from snapshot records in stream order.
type rebuilder struct {
	s     *State
	hdr   *fsmpb.SnapshotHeader
	phase int
	last  string // key of the previous record in this phase
	n     int    // records added so far
}

func newRebuilder(l Limits) *rebuilder {
	return &rebuilder{s: New(l)}
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorruptSnapshot)...)
}

func (b *rebuilder) add(rec *fsmpb.SnapshotRecord) error {
	b.n++
	switch r := rec.GetRec().(type) {
	case *fsmpb.SnapshotRecord_Header:
		return b.header(r.Header)
	case *fsmpb.SnapshotRecord_Lock:
		if err := b.advance(phaseLocks, r.Lock.GetName()); err != nil {
			return err
		}
		return b.lock(r.Lock)
	case *fsmpb.SnapshotRecord_Kv:
		if err := b.advance(phaseKV, r.Kv.GetKey()); err != nil {
			return err
		}
		b.s.kv[r.Kv.GetKey()] = r.Kv.GetValue()
		b.s.keyNames.insert(r.Kv.GetKey())
		return nil
	case *fsmpb.SnapshotRecord_Client:
		if err := b.advance(phaseClients, r.Client.GetClientId()); err != nil {
			return err
		}
		return b.client(r.Client)
	case *fsmpb.SnapshotRecord_Principal:
		if b.hdr != nil && b.hdr.GetVersion() < snapshotVersion {
			return corrupt("record %d: a principal record in a version %d snapshot", b.n, b.hdr.GetVersion())
		}
		if err := b.advance(phasePrincipals, r.Principal.GetName()); err != nil {
			return err
		}
		p, err := principalOf(r.Principal)
		if err != nil {
			return err
		}
		b.s.principals[p.name] = p
		return nil
	}
	return corrupt("record %d is empty", b.n)
}

// advance checks that a record comes after the header, in phase order, and
// in strictly ascending key order within its phase (so no duplicates).
func (b *rebuilder) advance(phase int, key string) error {
	switch {
	case b.phase == phaseHeader:
		return corrupt("record %d (%s) precedes the header", b.n, phaseNames[phase])
	case phase < b.phase:
		return corrupt("record %d: %s record after %s records", b.n, phaseNames[phase], phaseNames[b.phase])
	case phase == b.phase && key <= b.last:
		return corrupt("record %d: %s %q does not sort after %q", b.n, phaseNames[phase], key, b.last)
	}
	b.phase, b.last = phase, key
	return nil
}

func (b *rebuilder) header(h *fsmpb.SnapshotHeader) error {
	if b.phase != phaseHeader || b.hdr != nil {
		return corrupt("record %d: header is not first", b.n)
	}
	if v := h.GetVersion(); v != snapshotVersionV1 && v != snapshotVersion {
		return corrupt("header version %d, want %d or %d", v, snapshotVersionV1, snapshotVersion)
	}
	b.hdr, b.phase = h, phaseLocks
	b.s.now, b.s.fence, b.s.lastPrune = h.GetNowNanos(), h.GetFence(), h.GetLastPruneNanos()
	return nil
}

// lock adds a lock record; verify checks its fields once all are in.
// Heap items are appended unordered; finish orders them.
func (b *rebuilder) lock(r *fsmpb.LockRecord) error {
	s := b.s
	l := &lock{name: r.GetName(), nonce: r.GetNonce(), released: r.GetReleasedNanos(), expiryAt: -1, idleAt: -1}
	if h := r.GetLast(); h != nil {
		last := holdOf(h)
		l.last = &last
	}
	if h := r.GetHold(); h != nil {
		l.held = true
		l.hold = holdOf(h)
		l.expiryAt = len(s.expiry.items)
		s.expiry.items = append(s.expiry.items, l)
	} else {
		l.idleAt = len(s.idle.items)
		s.idle.items = append(s.idle.items, l)
	}
	for _, w := range r.GetWaiters() {
		if w == nil {
			return corrupt("lock %q has a nil waiter", l.name)
		}
		l.pushWaiter(waiter{owner: w.GetOwner(), ttl: w.GetTtlNanos(),
			deadline: w.GetDeadlineNanos(), enqueued: w.GetEnqueuedNanos(), claims: w.GetClaims()})
	}
	s.waiters += len(l.waiting())
	s.locks[l.name] = l
	s.lockNames.insert(l.name)
	return nil
}

func (b *rebuilder) client(r *fsmpb.ClientRecord) error {
	c := &client{id: r.GetClientId(), lastSeen: r.GetLastSeenNanos(), ackedBelow: r.GetAckedBelow(),
		evictedMax: r.GetEvictedMax()}
	for _, e := range r.GetResults() {
		if e.GetResult() == nil {
			return corrupt("client %q seq %d has no result", c.id, e.GetSeq())
		}
		c.results = append(c.results, cached{seq: e.GetSeq(), res: e.GetResult(),
			wait: waitRef{lock: e.GetQueuedLock(), owner: e.GetQueuedOwner()}})
	}
	c.lruAt = len(b.s.lru.items)
	b.s.lru.items = append(b.s.lru.items, c)
	b.s.clients[c.id] = c
	return nil
}

// finish checks the header's counts, orders the heaps and verifies every
// invariant.
func (b *rebuilder) finish() (*State, error) {
	s := b.s
	if b.hdr == nil {
		return nil, corrupt("no header")
	}
	got := [3]uint64{uint64(len(s.locks)), uint64(len(s.kv)), uint64(len(s.clients))}
	want := [3]uint64{b.hdr.GetLocks(), b.hdr.GetKeys(), b.hdr.GetClients()}
	if got != want {
		return nil, corrupt("records (locks, keys, clients) = %v, header says %v", got, want)
	}
	if uint64(len(s.principals)) != b.hdr.GetPrincipals() {
		return nil, corrupt("%d principal records, header says %d", len(s.principals), b.hdr.GetPrincipals())
	}
	for _, name := range slices.Sorted(maps.Keys(s.principals)) {
		for _, h := range s.principals[name].tokens {
			if other, dup := s.tokens[h]; dup {
				return nil, corrupt("token %s of principal %q also belongs to %q", TokenID(h), name, other)
			}
			s.tokens[h] = name
		}
	}
	heap.Init(&s.expiry)
	heap.Init(&s.idle)
	heap.Init(&s.lru)
	if err := s.verify(); err != nil {
		return nil, corrupt("%v", err)
	}
	return s, nil
}

// holdOf rebuilds a hold from its record.
func holdOf(h *fsmpb.Hold) hold {
	return hold{owner: h.GetOwner(), token: h.GetToken(), ttl: h.GetTtlNanos(),
		granted: h.GetGrantedNanos(), expires: h.GetExpiresNanos(), acquiredUnix: h.GetAcquiredUnixNanos(),
		claims: h.GetClaims()}
}
