package fsm

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Lock and KV records are encoded by hand. A snapshot holds one record per
// lock and per key, up to millions; built as fsmpb messages and marshalled,
// each record cost six allocations and a reflective walk, so a snapshot of
// a million locks left about 430 MB of garbage behind and kept Raft from
// applying for as long as the walk took. The hand-written encoding
// allocates nothing and writes exactly the bytes of proto's deterministic
// encoding of the same message (fields in number order, zero values left
// out, repeated integers packed). The tests compare it with that encoding
// (records_test.go) on every snapshot they take, and
// TestSnapshotEncodingMatchesProto on edge values, so a field added to the
// .proto but not here fails them.
//
// Field numbers, from fsm.proto.
const (
	recLockField = 2 // SnapshotRecord.lock
	recKVField   = 3 // SnapshotRecord.kv

	lockNameField     = 1
	lockHoldField     = 2
	lockNonceField    = 3
	lockWaitersField  = 4
	lockReleasedField = 5
	lockLastField     = 6

	holdOwnerField    = 1
	holdTokenField    = 2
	holdTTLField      = 3
	holdGrantedField  = 4
	holdExpiresField  = 5
	holdAcquiredField = 6
	holdClaimsField   = 7

	waiterOwnerField    = 1
	waiterTTLField      = 2
	waiterDeadlineField = 3
	waiterEnqueuedField = 4
	waiterClaimsField   = 5

	kvKeyField   = 1
	kvValueField = 2
)

// errInvalidUTF8 is what proto.Marshal refuses a string field for; the
// hand-written encoding refuses the same strings.
var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// appendLockRecord appends l as a length-delimited SnapshotRecord.
func appendLockRecord(b []byte, l *lock) ([]byte, error) {
	if !utf8.ValidString(l.name) || (l.held && !utf8.ValidString(l.hold.owner)) ||
		(l.last != nil && !utf8.ValidString(l.last.owner)) {
		return b, errInvalidUTF8
	}
	for _, w := range l.waiting() {
		if !utf8.ValidString(w.owner) {
			return b, errInvalidUTF8
		}
	}
	body := sizeLock(l)
	b = protowire.AppendVarint(b, uint64(sizeMessage(recLockField, body)))
	b = appendMessage(b, recLockField, body)
	b = appendString(b, lockNameField, l.name)
	if l.held {
		b = appendMessage(b, lockHoldField, sizeHold(&l.hold))
		b = appendHold(b, &l.hold)
	}
	b = appendUint(b, lockNonceField, l.nonce)
	for i := range l.waiting() {
		w := &l.waiting()[i]
		b = appendMessage(b, lockWaitersField, sizeWaiter(w))
		b = appendWaiter(b, w)
	}
	b = appendUint(b, lockReleasedField, uint64(l.released))
	if hasLast(l) {
		b = appendMessage(b, lockLastField, sizeHold(l.last))
		b = appendHold(b, l.last)
	}
	return b, nil
}

// hasLast reports whether l's record carries its last hold (lockRecord's rule).
func hasLast(l *lock) bool { return l.last != nil && l.last.token != 0 }

func sizeLock(l *lock) int {
	n := sizeString(lockNameField, l.name) + sizeUint(lockNonceField, l.nonce) +
		sizeUint(lockReleasedField, uint64(l.released))
	if l.held {
		n += sizeMessage(lockHoldField, sizeHold(&l.hold))
	}
	for i := range l.waiting() {
		n += sizeMessage(lockWaitersField, sizeWaiter(&l.waiting()[i]))
	}
	if hasLast(l) {
		n += sizeMessage(lockLastField, sizeHold(l.last))
	}
	return n
}

func sizeHold(h *hold) int {
	return sizeString(holdOwnerField, h.owner) + sizeUint(holdTokenField, h.token) +
		sizeUint(holdTTLField, uint64(h.ttl)) + sizeUint(holdGrantedField, uint64(h.granted)) +
		sizeUint(holdExpiresField, uint64(h.expires)) + sizeUint(holdAcquiredField, uint64(h.acquiredUnix)) +
		sizePacked(holdClaimsField, h.claims)
}

func appendHold(b []byte, h *hold) []byte {
	b = appendString(b, holdOwnerField, h.owner)
	b = appendUint(b, holdTokenField, h.token)
	b = appendUint(b, holdTTLField, uint64(h.ttl))
	b = appendUint(b, holdGrantedField, uint64(h.granted))
	b = appendUint(b, holdExpiresField, uint64(h.expires))
	b = appendUint(b, holdAcquiredField, uint64(h.acquiredUnix))
	return appendPacked(b, holdClaimsField, h.claims)
}

func sizeWaiter(w *waiter) int {
	return sizeString(waiterOwnerField, w.owner) + sizeUint(waiterTTLField, uint64(w.ttl)) +
		sizeUint(waiterDeadlineField, uint64(w.deadline)) + sizeUint(waiterEnqueuedField, uint64(w.enqueued)) +
		sizePacked(waiterClaimsField, w.claims)
}

func appendWaiter(b []byte, w *waiter) []byte {
	b = appendString(b, waiterOwnerField, w.owner)
	b = appendUint(b, waiterTTLField, uint64(w.ttl))
	b = appendUint(b, waiterDeadlineField, uint64(w.deadline))
	b = appendUint(b, waiterEnqueuedField, uint64(w.enqueued))
	return appendPacked(b, waiterClaimsField, w.claims)
}

// appendKVRecord appends key and value as a length-delimited SnapshotRecord.
func appendKVRecord(b []byte, key string, value []byte) ([]byte, error) {
	if !utf8.ValidString(key) {
		return b, errInvalidUTF8
	}
	body := sizeString(kvKeyField, key)
	if len(value) > 0 {
		body += protowire.SizeTag(kvValueField) + protowire.SizeBytes(len(value))
	}
	b = protowire.AppendVarint(b, uint64(sizeMessage(recKVField, body)))
	b = appendMessage(b, recKVField, body)
	b = appendString(b, kvKeyField, key)
	if len(value) > 0 {
		b = protowire.AppendTag(b, kvValueField, protowire.BytesType)
		b = protowire.AppendBytes(b, value)
	}
	return b, nil
}

// The helpers below leave out zero values, as proto3 does for fields
// without presence. Signed fields are int64 in the .proto: a negative value
// is the varint of its two's complement, as uint64(v) gives.

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// sizeMessage is the size of a message field whose body is size bytes; a
// set message field is written even when its body is empty.
func sizeMessage(num protowire.Number, size int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(size)
}

func appendMessage(b []byte, num protowire.Number, size int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(size))
}

func packedLen(vs []uint64) int {
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(v)
	}
	return n
}

func sizePacked(num protowire.Number, vs []uint64) int {
	if len(vs) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(packedLen(vs))
}

func appendPacked(b []byte, num protowire.Number, vs []uint64) []byte {
	if len(vs) == 0 {
		return b
	}
	b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(packedLen(vs)))
	for _, v := range vs {
		b = protowire.AppendVarint(b, v)
	}
	return b
}
