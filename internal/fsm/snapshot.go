package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Snapshot versions. Version 1 holds locks, keys and clients; version 2
// adds principal records (access control). WriteSnapshot writes version 1
// while no principal exists, so that a cluster that never turned access
// control on writes the same bytes as before it existed; Restore reads both.
const (
	snapshotVersionV1 = 1
	snapshotVersion   = 2
)

// recordSizeFloor is the least size a snapshot record may have on Restore,
// so that a snapshot written under larger limits still restores.
const recordSizeFloor = 64 << 20

// ErrCorruptSnapshot is wrapped by Restore when the stream decodes but does
// not describe a valid State (order, counts or invariants).
var ErrCorruptSnapshot = errors.New("dlock: corrupt fsm snapshot")

// WriteSnapshot writes the whole state as a stream of length-delimited
// SnapshotRecord: the header, then lock records by name, KV records by key and
// client records by id, each in ascending order. Equal States write equal
// bytes. It reads the State throughout: hold the caller's lock for its whole
// run, or write a Clone taken under the lock.
func (s *State) WriteSnapshot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	opts := protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}
	var buf []byte // one lock or KV record at a time, reused
	err := s.walkRecords(func(rec *fsmpb.SnapshotRecord) error {
		_, err := opts.MarshalTo(bw, rec)
		return err
	}, func(l *lock) (err error) {
		if buf, err = appendLockRecord(buf[:0], l); err == nil {
			_, err = bw.Write(buf)
		}
		return err
	}, func(key string, value []byte) (err error) {
		if buf, err = appendKVRecord(buf[:0], key, value); err == nil {
			_, err = bw.Write(buf)
		}
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("dlock: write fsm snapshot: %w", err)
	}
	return nil
}

// walkRecords visits the snapshot's records in snapshot order: the header,
// then each lock, each key, each client and each principal. Lock and key
// records go to their own functions, which encode them without building
// messages (snapenc.go); the others go to fn.
func (s *State) walkRecords(fn func(*fsmpb.SnapshotRecord) error, lockFn func(*lock) error,
	kvFn func(key string, value []byte) error) error {
	version := uint32(snapshotVersionV1)
	if len(s.principals) > 0 {
		version = snapshotVersion
	}
	hdr := &fsmpb.SnapshotHeader{
		Version:        version,
		Principals:     uint64(len(s.principals)),
		NowNanos:       s.now,
		Fence:          s.fence,
		Locks:          uint64(len(s.locks)),
		Keys:           uint64(len(s.kv)),
		Clients:        uint64(len(s.clients)),
		LastPruneNanos: s.lastPrune,
	}
	if err := fn(&fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Header{Header: hdr}}); err != nil {
		return err
	}
	for name := range s.lockNames.from("") {
		if err := lockFn(s.locks[name]); err != nil {
			return err
		}
	}
	for key := range s.keyNames.from("") {
		if err := kvFn(key, s.kv[key]); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.clients)) {
		if err := fn(clientRecord(s.clients[id])); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.principals)) {
		if err := fn(principalRecord(s.principals[name])); err != nil {
			return err
		}
	}
	return nil
}

func clientRecord(c *client) *fsmpb.SnapshotRecord {
	r := &fsmpb.ClientRecord{ClientId: c.id, LastSeenNanos: c.lastSeen, AckedBelow: c.ackedBelow, EvictedMax: c.evictedMax,
		Results: make([]*fsmpb.CachedResult, len(c.results))}
	for i, e := range c.results {
		r.Results[i] = &fsmpb.CachedResult{Seq: e.seq, Result: e.res, QueuedLock: e.wait.lock, QueuedOwner: e.wait.owner}
	}
	return &fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Client{Client: r}}
}

// Restore reads a stream written by WriteSnapshot and returns the State it
// describes, enforcing l from then on. It then verifies every invariant
// (the pair of what WriteSnapshot wrote): a stream that is truncated, out of
// order, inconsistent or otherwise corrupt returns an error, never a panic.
// State beyond l (limits lowered since) is kept and only shrinks.
// A restored State answers every later Apply exactly as the original would.
func Restore(r io.Reader, l Limits) (*State, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	opts := protodelim.UnmarshalOptions{MaxSize: recordSizeMax(l)}
	b := newRebuilder(l)
	for {
		rec := new(fsmpb.SnapshotRecord)
		err := opts.UnmarshalFrom(br, rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dlock: restore fsm: read record %d: %w", b.n+1, err)
		}
		if err := b.add(rec); err != nil {
			return nil, fmt.Errorf("restore fsm: %w", err)
		}
	}
	s, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("restore fsm: %w", err)
	}
	return s, nil
}

// recordSizeMax bounds one record on Restore, from the largest record the
// limits allow, so a corrupt length cannot make Restore allocate wildly.
func recordSizeMax(l Limits) int64 {
	const slack = 256
	lock := int64(l.NameBytesMax) + int64(l.OwnerBytesMax) + slack +
		int64(l.WaitersPerLockMax)*(int64(l.OwnerBytesMax)+slack)
	kv := int64(l.NameBytesMax) + int64(l.ValueBytesMax) + slack
	result := int64(l.NameBytesMax) + 2*int64(l.OwnerBytesMax) + slack
	client := int64(l.OwnerBytesMax) + slack + int64(l.ResultsPerClientMax)*result
	return max(2*lock, 2*kv, 2*client, recordSizeFloor)
}

// Clone returns a deep copy of s, so that a snapshot can be written from the
// copy while s keeps applying: take it under the caller's lock, then release
// the lock and run WriteSnapshot on the copy. It copies structs without
// encoding (strings, KV values, claims and remembered results, never
// modified in place, are shared).
func (s *State) Clone() *State {
	c := New(s.limits)
	c.now, c.fence, c.lastPrune, c.waiters = s.now, s.fence, s.lastPrune, s.waiters
	c.locks = make(map[string]*lock, len(s.locks))
	c.expiry.items = make([]*lock, len(s.expiry.items))
	c.idle.items = make([]*lock, len(s.idle.items))
	arena := make([]lock, len(s.locks)) // one allocation for all records
	i := 0
	for name := range s.lockNames.from("") {
		l := &arena[i]
		i++
		*l = *s.locks[name]
		l.cloneQueue()
		if l.last != nil {
			last := *l.last // the copy must not share what the original's next release overwrites
			l.last = &last
		}
		c.locks[name] = l
		if l.held {
			c.expiry.items[l.expiryAt] = l // same index: same heap shape
		} else {
			c.idle.items[l.idleAt] = l
		}
	}
	c.lockNames = s.lockNames.clone()
	c.kv = maps.Clone(s.kv)
	c.keyNames = s.keyNames.clone()
	c.clients = make(map[string]*client, len(s.clients))
	c.lru.items = make([]*client, len(s.lru.items))
	clients := make([]client, len(s.lru.items))
	for i, old := range s.lru.items {
		cl := &clients[i]
		*cl = *old
		cl.results = slices.Clone(old.results)
		c.clients[cl.id] = cl
		c.lru.items[i] = cl
	}
	s.cloneACL(c)
	return c
}
