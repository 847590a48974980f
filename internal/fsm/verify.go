package fsm

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// verify checks every invariant of s and returns the first break it finds.
// Restore runs it on what it read (the pair of what WriteSnapshot wrote);
// tests run it after every Apply. It never panics, whatever s holds. It does
// not hold s to its limits: limits may have been lowered since s was built.
func (s *State) verify() error {
	if s.now < 0 || s.lastPrune < 0 || s.lastPrune > s.now {
		return fmt.Errorf("times: now %d, last prune %d: want 0 <= last prune <= now", s.now, s.lastPrune)
	}
	if err := s.verifyLocks(); err != nil {
		return err
	}
	if err := s.verifyKV(); err != nil {
		return err
	}
	if err := s.verifyClients(); err != nil {
		return err
	}
	return s.verifyACL()
}

// checkText is checkID without a size limit, as an error.
func checkText(what, v string) error {
	if r := checkID(what, v, math.MaxInt); r != nil {
		return errors.New(r.Message)
	}
	return nil
}

func (s *State) verifyLocks() error {
	if !s.lockNames.wellFormed() || s.lockNames.n != len(s.locks) {
		return fmt.Errorf("lock name index (%d names) disagrees with %d records", s.lockNames.n, len(s.locks))
	}
	tokens := make(map[uint64]string)
	held, waiters := 0, 0
	for name := range s.lockNames.from("") {
		l := s.locks[name]
		if l == nil || l.name != name {
			return fmt.Errorf("lock name index holds %q, which has no record", name)
		}
		if err := s.verifyLock(l, tokens); err != nil {
			return fmt.Errorf("lock %q: %w", name, err)
		}
		if l.held {
			held++
		}
		waiters += len(l.waiting())
	}
	switch {
	case held != s.expiry.Len() || len(s.locks)-held != s.idle.Len():
		return fmt.Errorf("%d held and %d released records, but heaps of %d and %d",
			held, len(s.locks)-held, s.expiry.Len(), s.idle.Len())
	case waiters != s.waiters:
		return fmt.Errorf("%d queue entries, but a count of %d", waiters, s.waiters)
	case !s.expiry.ordered() || !s.idle.ordered():
		return errors.New("a lock heap is out of order")
	}
	return nil
}

func (s *State) verifyLock(l *lock, tokens map[uint64]string) error {
	if err := checkText("name", l.name); err != nil {
		return err
	}
	switch {
	case l.nonce == 0:
		return errors.New("nonce 0: a record exists only after a grant")
	case l.released < 0 || l.released > s.now:
		return fmt.Errorf("released at %d, outside [0, now %d]", l.released, s.now)
	case !l.held && len(l.waiting()) > 0:
		return fmt.Errorf("released, yet %d waiters", len(l.waiting()))
	case !l.held && (l.expiryAt != -1 || !inHeap(&s.idle, l.idleAt, l)):
		return errors.New("released, but not exactly in the idle heap")
	case l.held && (l.idleAt != -1 || !inHeap(&s.expiry, l.expiryAt, l)):
		return errors.New("held, but not exactly in the expiry heap")
	case l.last != nil && (l.last.token > s.fence || len(l.last.claims) > 0):
		return fmt.Errorf("last hold token %d over fence %d, or with claims", l.last.token, s.fence)
	case !l.held:
		return nil
	}
	if err := s.verifyHold(l.hold); err != nil {
		return err
	}
	if other, dup := tokens[l.hold.token]; dup {
		return fmt.Errorf("token %d also held on lock %q", l.hold.token, other)
	}
	tokens[l.hold.token] = l.name
	return s.verifyQueue(l)
}

func inHeap[T comparable](q *pq[T], i int, item T) bool {
	return i >= 0 && i < len(q.items) && q.items[i] == item
}

func (s *State) verifyHold(h hold) error {
	if err := checkText("holder", h.owner); err != nil {
		return err
	}
	switch {
	case h.token == 0 || h.token > s.fence:
		return fmt.Errorf("token %d outside [1, fence %d]", h.token, s.fence)
	case h.ttl <= 0:
		return fmt.Errorf("ttl %d, want > 0", h.ttl)
	case h.granted < 0 || h.granted > s.now:
		return fmt.Errorf("granted at %d, outside [0, now %d]", h.granted, s.now)
	case h.expires < h.granted:
		return fmt.Errorf("expires at %d, before its grant at %d", h.expires, h.granted)
	}
	return verifyClaims(h.claims)
}

// verifyClaims checks a claim set: at most ClaimsMax distinct, non-zero attempts.
func verifyClaims(claims []uint64) error {
	if len(claims) > ClaimsMax {
		return fmt.Errorf("%d claims, over %d", len(claims), ClaimsMax)
	}
	for i, c := range claims {
		if c == 0 || slices.Contains(claims[:i], c) {
			return fmt.Errorf("claim %d (%d) is zero or repeated", i+1, c)
		}
	}
	return nil
}

func (s *State) verifyQueue(l *lock) error {
	seen := make(map[string]bool, len(l.waiting()))
	for i, w := range l.waiting() {
		if err := checkText("waiter", w.owner); err != nil {
			return fmt.Errorf("waiter %d: %w", i+1, err)
		}
		switch {
		case w.owner == l.hold.owner:
			return fmt.Errorf("holder also queued: %q at %d", w.owner, i+1)
		case seen[w.owner]:
			return fmt.Errorf("duplicate waiter owner %q at %d", w.owner, i+1)
		case w.ttl <= 0:
			return fmt.Errorf("waiter %q: ttl %d, want > 0", w.owner, w.ttl)
		case w.enqueued < 0 || w.enqueued > s.now:
			return fmt.Errorf("waiter %q: enqueued at %d, outside [0, now %d]", w.owner, w.enqueued, s.now)
		case w.deadline < w.enqueued:
			return fmt.Errorf("waiter %q: deadline %d before enqueued %d", w.owner, w.deadline, w.enqueued)
		case w.deadline < l.queue.deadMin:
			return fmt.Errorf("waiter %q: deadline %d below the queue's bound %d", w.owner, w.deadline, l.queue.deadMin)
		}
		if err := verifyClaims(w.claims); err != nil {
			return fmt.Errorf("waiter %q: %w", w.owner, err)
		}
		seen[w.owner] = true
	}
	if l.queue == nil {
		return nil
	}
	if len(l.queue.items) == 0 {
		return errors.New("an empty queue left allocated")
	}
	owners := l.queue.owners
	if len(owners) != len(seen) || !maps.EqualFunc(owners, seen, func(struct{}, bool) bool { return true }) {
		return fmt.Errorf("%d waiters, but an owner set of %d that differs", len(seen), len(owners))
	}
	return nil
}

func (s *State) verifyKV() error {
	if !s.keyNames.wellFormed() || s.keyNames.n != len(s.kv) {
		return fmt.Errorf("key index (%d keys) disagrees with %d values", s.keyNames.n, len(s.kv))
	}
	for k := range s.keyNames.from("") {
		if _, ok := s.kv[k]; !ok {
			return fmt.Errorf("key index holds %q, which has no value", k)
		}
		if err := checkText("key", k); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) verifyClients() error {
	if s.lru.Len() != len(s.clients) || !s.lru.ordered() {
		return fmt.Errorf("client heap of %d (ordered: %t) disagrees with %d clients",
			s.lru.Len(), s.lru.ordered(), len(s.clients))
	}
	for i, c := range s.lru.items {
		if c.lruAt != i || s.clients[c.id] != c {
			return fmt.Errorf("client %q is not exactly in the client heap", c.id)
		}
		if err := s.verifyClient(c); err != nil {
			return fmt.Errorf("client %q: %w", c.id, err)
		}
	}
	return nil
}

func (s *State) verifyClient(c *client) error {
	if err := checkText("client id", c.id); err != nil {
		return err
	}
	if c.lastSeen < 0 || c.lastSeen > s.now {
		return fmt.Errorf("last seen at %d, outside [0, now %d]", c.lastSeen, s.now)
	}
	if len(c.results) == 0 {
		return errors.New("no remembered results")
	}
	for i, e := range c.results {
		switch {
		case e.res == nil:
			return fmt.Errorf("seq %d has no result", e.seq)
		case e.seq == 0:
			return errors.New("a result for seq 0")
		case e.seq < c.ackedBelow:
			return fmt.Errorf("a result for seq %d, below the acknowledged %d", e.seq, c.ackedBelow)
		case i > 0 && e.seq <= c.results[i-1].seq:
			return fmt.Errorf("seq %d after seq %d: want ascending", e.seq, c.results[i-1].seq)
		case e.wait != waitRef{} && (e.wait.lock == "" || e.wait.owner == "" || e.res.GetCode() != fsmpb.Code_QUEUED):
			return fmt.Errorf("seq %d: queued wait %q/%q on a %s result: want both names on a QUEUED result, or neither",
				e.seq, e.wait.lock, e.wait.owner, e.res.GetCode())
		}
	}
	return nil
}
