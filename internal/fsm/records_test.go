package fsm

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// The reference encoding of a snapshot: every record built as a message and
// marshalled by proto. WriteSnapshot must write exactly these bytes; it
// encodes lock and KV records by hand (snapenc.go).

// protoDelim is how WriteSnapshot frames a record: length-delimited,
// deterministic.
var protoDelim = protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}

// records calls fn with every snapshot record in snapshot order, lock and
// KV records included: the reference for what WriteSnapshot writes.
// Records share strings, values and cached results with s, none of which
// is ever modified in place.
func (s *State) records(fn func(*fsmpb.SnapshotRecord) error) error {
	return s.walkRecords(fn, func(l *lock) error { return fn(lockRecord(l)) }, func(key string, value []byte) error {
		return fn(&fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Kv{Kv: &fsmpb.KVRecord{Key: key, Value: value}}})
	})
}

// holdRecord and lockRecord build a hold and a lock record as messages: what
// snapenc.go encodes by hand.
func holdRecord(h hold) *fsmpb.Hold {
	return &fsmpb.Hold{Owner: h.owner, Token: h.token, TtlNanos: h.ttl,
		GrantedNanos: h.granted, ExpiresNanos: h.expires, AcquiredUnixNanos: h.acquiredUnix, Claims: h.claims}
}

func lockRecord(l *lock) *fsmpb.SnapshotRecord {
	r := &fsmpb.LockRecord{Name: l.name, Nonce: l.nonce, ReleasedNanos: l.released}
	if l.held {
		r.Hold = holdRecord(l.hold)
	}
	if l.last != nil && l.last.token != 0 {
		r.Last = holdRecord(*l.last)
	}
	if len(l.waiting()) > 0 {
		r.Waiters = make([]*fsmpb.Waiter, len(l.waiting()))
		for i, w := range l.waiting() {
			r.Waiters[i] = &fsmpb.Waiter{Owner: w.owner, TtlNanos: w.ttl,
				DeadlineNanos: w.deadline, EnqueuedNanos: w.enqueued, Claims: w.claims}
		}
	}
	return &fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Lock{Lock: r}}
}

// protoSnapshot is s's snapshot in the reference encoding.
func protoSnapshot(t testing.TB, s *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.records(func(rec *fsmpb.SnapshotRecord) error {
		_, err := protoDelim.MarshalTo(&b, rec)
		return err
	}); err != nil {
		t.Fatalf("proto encoding of the snapshot records: %v", err)
	}
	return b.Bytes()
}

// delimited is one record in the reference encoding.
func delimited(t *testing.T, rec *fsmpb.SnapshotRecord) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := protoDelim.MarshalTo(&b, rec); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
