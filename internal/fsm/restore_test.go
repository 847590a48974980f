package fsm

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// baseRecords is a valid snapshot as records: header; lock L held by a
// (token 2) with b waiting; lock M released (token 1 earlier); key k;
// client c with results for seqs 1 and 2.
func baseRecords(t *testing.T) []*fsmpb.SnapshotRecord {
	s, _, _ := play(t, testLimits(), []step{
		at(100, acq("M", "a", 10, 0), rel("M", "a", 0), acq("L", "a", 10, 0), acq("L", "b", 10, 50),
			as("c", 1, put("k", "v")), as("c", 2, del("x"))),
	})
	var recs []*fsmpb.SnapshotRecord
	err := s.records(func(r *fsmpb.SnapshotRecord) error {
		recs = append(recs, proto.Clone(r).(*fsmpb.SnapshotRecord))
		return nil
	})
	if err != nil || len(recs) != 5 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	return recs
}

// Record positions in baseRecords.
const (
	recHeader = iota
	recL
	recM
	recK
	recC
)

func encode(t *testing.T, recs []*fsmpb.SnapshotRecord) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		if _, err := protodelim.MarshalTo(&b, r); err != nil {
			t.Fatalf("encode: %v", err)
		}
	}
	return b.Bytes()
}

func hdr(r []*fsmpb.SnapshotRecord) *fsmpb.SnapshotHeader { return r[recHeader].GetHeader() }
func lockL(r []*fsmpb.SnapshotRecord) *fsmpb.LockRecord   { return r[recL].GetLock() }
func lockM(r []*fsmpb.SnapshotRecord) *fsmpb.LockRecord   { return r[recM].GetLock() }
func clientC(r []*fsmpb.SnapshotRecord) *fsmpb.ClientRecord {
	return r[recC].GetClient()
}

// STYLE: "Pair assertions: verify after Restore what Snapshot wrote." Each
// row corrupts one thing; Restore must say what, wrapping ErrCorruptSnapshot.
var corruptRows = []struct {
	name string
	give func([]*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord
	want string
}{
	{name: "intact", give: keep, want: ""},
	{name: "no records", give: func([]*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return nil }, want: "no header"},
	{name: "no header", give: func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return r[1:] }, want: "precedes the header"},
	{name: "a second header", give: func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return slices.Insert(r, recK, r[0]) }, want: "header is not first"},
	{name: "an unknown version", give: edit(func(r []*fsmpb.SnapshotRecord) { hdr(r).Version = 3 }), want: "header version 3, want 1 or 2"},
	{name: "an empty record", give: func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return append(r, &fsmpb.SnapshotRecord{}) }, want: "record 6 is empty"},
	{name: "locks out of order", give: edit(func(r []*fsmpb.SnapshotRecord) { r[recL], r[recM] = r[recM], r[recL] }), want: `lock "L" does not sort after "M"`},
	{name: "a lock twice", give: func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return slices.Insert(r, recM, r[recL]) }, want: `lock "L" does not sort after "L"`},
	{name: "a lock after the keys", give: func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return append(r[:recC], r[recL], r[recC]) }, want: "lock record after kv records"},
	{name: "a count that disagrees", give: edit(func(r []*fsmpb.SnapshotRecord) { hdr(r).Locks = 3 }), want: "records (locks, keys, clients) = [2 1 1], header says [3 1 1]"},
	{name: "a negative now", give: edit(func(r []*fsmpb.SnapshotRecord) { hdr(r).NowNanos = -1 }), want: "times: now -1"},
	{name: "a prune after now", give: edit(func(r []*fsmpb.SnapshotRecord) { hdr(r).LastPruneNanos = 101 }), want: "last prune 101"},
	{name: "a token above the fence", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Hold.Token = 9 }), want: `lock "L": token 9 outside [1, fence 2]`},
	{name: "a token held twice", give: edit(func(r []*fsmpb.SnapshotRecord) {
		lockM(r).Hold = proto.Clone(lockL(r).Hold).(*fsmpb.Hold)
		lockM(r).Hold.Owner = "z"
	}), want: `token 2 also held on lock "L"`},
	{name: "a holder also queued", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Waiters[0].Owner = "a" }), want: `holder also queued: "a" at 1`},
	{name: "a duplicate waiter", give: edit(func(r []*fsmpb.SnapshotRecord) {
		lockL(r).Waiters = append(lockL(r).Waiters, lockL(r).Waiters[0])
	}), want: `duplicate waiter owner "b" at 2`},
	{name: "a released lock with waiters", give: edit(func(r []*fsmpb.SnapshotRecord) { lockM(r).Waiters = lockL(r).Waiters }), want: `lock "M": released, yet 1 waiters`},
	{name: "nonce 0", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Nonce = 0 }), want: "nonce 0"},
	{name: "released in the future", give: edit(func(r []*fsmpb.SnapshotRecord) { lockM(r).ReleasedNanos = 101 }), want: "released at 101"},
	{name: "an empty holder", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Hold.Owner = "" }), want: "holder is empty"},
	{name: "a hold ttl of 0", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Hold.TtlNanos = 0 }), want: "ttl 0, want > 0"},
	{name: "a grant in the future", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Hold.GrantedNanos = 101 }), want: "granted at 101"},
	{name: "a lease ending before its grant", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Hold.ExpiresNanos = 99 }), want: "expires at 99, before its grant at 100"},
	{name: "an empty waiter", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Waiters[0].Owner = "" }), want: "waiter 1: waiter is empty"},
	{name: "a waiter ttl of 0", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Waiters[0].TtlNanos = 0 }), want: `waiter "b": ttl 0`},
	{name: "a waiter enqueued in the future", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Waiters[0].EnqueuedNanos = 101 }), want: "enqueued at 101"},
	{name: "a waiter deadline before its enqueue", give: edit(func(r []*fsmpb.SnapshotRecord) { lockL(r).Waiters[0].DeadlineNanos = 99 }), want: "deadline 99 before enqueued 100"},
	{name: "an empty key", give: edit(func(r []*fsmpb.SnapshotRecord) { r[recK].GetKv().Key = "" }), want: "key is empty"},
	{name: "a client without results", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).Results = nil }), want: "no remembered results"},
	{name: "a client result missing", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).Results[0].Result = nil }), want: `client "c" seq 1 has no result`},
	{name: "client seqs out of order", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).Results[1].Seq = 1 }), want: "seq 1 after seq 1: want ascending"},
	{name: "a client result for seq 0", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).Results[0].Seq = 0 }), want: "a result for seq 0"},
	{name: "a client seen in the future", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).LastSeenNanos = 101 }), want: "last seen at 101"},
	{name: "an empty client id", give: edit(func(r []*fsmpb.SnapshotRecord) { clientC(r).ClientId = "" }), want: "client id is empty"},
}

func keep(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { return r }

func edit(f func([]*fsmpb.SnapshotRecord)) func([]*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
	return func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord { f(r); return r }
}

func TestRestoreRejectsCorruptSnapshots(t *testing.T) {
	for _, tt := range corruptRows {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Restore(bytes.NewReader(encode(t, tt.give(baseRecords(t)))), testLimits())
			check(t, "names the problem", strings.Contains(errText(err), tt.want), true)
			check(t, "is ErrCorruptSnapshot", errors.Is(err, ErrCorruptSnapshot), tt.want != "")
			t.Log(err)
		})
	}
}

// Streams that do not even decode: an error, never a panic.
var badStreamRows = []struct {
	name string
	give func(valid []byte) []byte
	want string
}{
	{name: "truncated", give: func(b []byte) []byte { return b[:len(b)-1] }, want: "unexpected EOF"},
	{name: "garbage", give: func([]byte) []byte { return []byte{0x03, 0xff, 0xff, 0xff} }, want: "read record 1"},
	{name: "a length past any limit", give: func([]byte) []byte { return protowire.AppendVarint(nil, 1<<40) }, want: "exceeded unmarshaler's maximum"},
	{name: "a length that overflows", give: func([]byte) []byte { return bytes.Repeat([]byte{0xff}, 11) }, want: "read record 1"},
}

func TestRestoreRejectsBadStreams(t *testing.T) {
	for _, tt := range badStreamRows {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Restore(bytes.NewReader(tt.give(encode(t, baseRecords(t)))), testLimits())
			check(t, "names the problem", strings.Contains(errText(err), tt.want), true)
			t.Log(err)
		})
	}
}
