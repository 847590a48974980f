package fsm

import (
	"container/heap"
	"slices"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// lookup returns the remembered result of seq, or nil. c may be nil.
func (c *client) lookup(seq uint64) *fsmpb.Result {
	if c == nil {
		return nil
	}
	i, found := slices.BinarySearchFunc(c.results, seq, cmpSeq)
	if !found {
		return nil
	}
	return c.results[i].res
}

// keep replaces the remembered result of seq, which must be remembered.
func (c *client) keep(seq uint64, r *fsmpb.Result) {
	i, found := slices.BinarySearchFunc(c.results, seq, cmpSeq)
	mustf(found, "client %q seq %d replaced but not remembered", c.id, seq)
	c.results[i].res = r
}

// forgot reports whether seq, not remembered, may be a request whose result
// was evicted for room: applying it again could apply it twice. c may be nil.
func (c *client) forgot(seq uint64) bool {
	return c != nil && seq <= c.evictedMax
}

// acknowledge forgets the results of the seqs below ackedBelow: the client
// has their answers. The mark only rises. c may be nil.
func (c *client) acknowledge(ackedBelow uint64) {
	if c == nil || ackedBelow <= c.ackedBelow {
		return
	}
	c.ackedBelow = ackedBelow
	i, _ := slices.BinarySearchFunc(c.results, ackedBelow, cmpSeq)
	c.results = slices.Delete(c.results, 0, i)
}

func cmpSeq(e cached, seq uint64) int {
	switch {
	case e.seq < seq:
		return -1
	case e.seq > seq:
		return 1
	}
	return 0
}

// remember stores a copy of r as the result of (id, seq), with the wait it
// queued if any, and marks the client seen now. Past ResultsPerClientMax it
// evicts the oldest result that is not QUEUED (a QUEUED acquire is the one
// request likely to be retried long after it was sent, while it waits), or
// the oldest of all if every one is. A new client beyond ClientsMax evicts
// the least recently seen one that is not waiting (see waiting), or, if
// every client is, the least recently seen (ties: least id).
func (s *State) remember(id string, seq uint64, r *fsmpb.Result, wait waitRef) {
	c := s.clients[id]
	if c == nil {
		s.makeRoomForClient()
		c = &client{id: id, lastSeen: s.now}
		s.clients[id] = c
		heap.Push(&s.lru, c)
	} else {
		s.touch(c)
	}
	i, found := slices.BinarySearchFunc(c.results, seq, cmpSeq)
	mustf(!found, "client %q seq %d remembered twice", id, seq)
	c.results = slices.Insert(c.results, i, cached{seq: seq, res: cloneResult(r), wait: wait})
	for len(c.results) > s.limits.ResultsPerClientMax {
		c.evict()
	}
}

// makeRoomForClient drops clients until a new one fits under ClientsMax,
// least recently seen first, passing over (and marking seen) those still
// waiting, unless every client is.
func (s *State) makeRoomForClient() {
	passed := 0
	for len(s.clients) >= s.limits.ClientsMax {
		c := s.lru.items[0]
		if passed < len(s.clients) && s.waiting(c) {
			s.touch(c)
			passed++
			continue
		}
		s.dropClient(c)
	}
}

// waiting reports whether a request of c queued a wait that its owner still
// waits in, or holds the lock from. Such a client is kept by pruning and
// eviction, which would otherwise forget its remembered QUEUED answer: the
// client, silent while the server waits for it, may retry the acquire long
// after it last wrote (a node stopping, a connection lost), and a retry that
// finds no answer is applied afresh. It then queues a second claim beside
// the first call's, and its WAIT_TIMEOUT would withdraw only its own,
// leaving the owner queued to be granted the lock later.
func (s *State) waiting(c *client) bool {
	for _, e := range c.results {
		if e.wait.lock == "" {
			continue
		}
		l := s.locks[e.wait.lock]
		if l != nil && (l.waiterIndex(e.wait.owner) >= 0 || (l.held && l.hold.owner == e.wait.owner && len(l.hold.claims) > 0)) {
			return true
		}
	}
	return false
}

// touch marks c seen now.
func (s *State) touch(c *client) {
	c.lastSeen = s.now
	heap.Fix(&s.lru, c.lruAt)
}

// evict drops one result for room (see remember).
func (c *client) evict() {
	i := slices.IndexFunc(c.results, func(e cached) bool { return e.res.Code != fsmpb.Code_QUEUED })
	if i < 0 {
		i = 0
	}
	c.evictedMax = max(c.evictedMax, c.results[i].seq)
	c.results = slices.Delete(c.results, i, i+1)
}

func (s *State) dropClient(c *client) {
	heap.Remove(&s.lru, c.lruAt)
	delete(s.clients, c.id)
}
