package fsm

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// The hand-written lock and KV records equal proto's encoding, on shapes
// the generated histories do not reach: zero and negative values, empty
// and large fields, and strings proto refuses.
func TestSnapshotEncodingMatchesProto(t *testing.T) {
	big := uint64(1<<63 + 5)
	locks := map[string]*lock{
		"free, never held": {name: "a"},
		"held, every field": {name: "service/lock", nonce: 7, held: true, released: -3,
			hold: hold{owner: "o", token: big, ttl: -1, granted: 1 << 40, expires: -1 << 62, acquiredUnix: 1, claims: []uint64{1, big, 300}},
			last: &hold{owner: "p", token: 2, ttl: 5}},
		"held, zero fields":  {name: "z", held: true, hold: hold{}},
		"last without token": {name: "l", last: &hold{owner: "q"}},
		"waiters": {name: "w", held: true, hold: hold{owner: "o", token: 1}, queue: &queue{items: []waiter{
			{}, {owner: "x", ttl: -9, deadline: 1, enqueued: 2, claims: []uint64{4}}, {owner: string(make([]byte, 300))},
		}}},
	}
	for what, l := range locks {
		got, err := appendLockRecord(nil, l)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if want := delimited(t, lockRecord(l)); !bytes.Equal(got, want) {
			t.Errorf("%s: hand-written %x\nproto        %x", what, got, want)
		}
	}
	for _, kv := range []struct {
		key   string
		value []byte
	}{{"k", []byte("v")}, {"k", nil}, {"", []byte{0}}, {"long", make([]byte, 1<<15)}} {
		got, err := appendKVRecord(nil, kv.key, kv.value)
		if err != nil {
			t.Fatalf("key %q: %v", kv.key, err)
		}
		want := delimited(t, &fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Kv{Kv: &fsmpb.KVRecord{Key: kv.key, Value: kv.value}}})
		if !bytes.Equal(got, want) {
			t.Errorf("key %q value of %d bytes: hand-written %x, proto %x", kv.key, len(kv.value), got, want)
		}
	}
	bad := "\xff"
	for what, l := range map[string]*lock{
		"name":          {name: bad},
		"holder":        {name: "a", held: true, hold: hold{owner: bad}},
		"last holder":   {name: "a", last: &hold{owner: bad, token: 1}},
		"waiting owner": {name: "a", held: true, hold: hold{owner: "o"}, queue: &queue{items: []waiter{{owner: bad}}}},
	} {
		_, protoErr := proto.Marshal(lockRecord(l))
		if _, err := appendLockRecord(nil, l); err == nil || protoErr == nil {
			t.Errorf("invalid UTF-8 in the %s: hand-written error %v, proto error %v; want both to refuse", what, err, protoErr)
		}
	}
	if _, err := appendKVRecord(nil, bad, nil); err == nil {
		t.Error("invalid UTF-8 in a key: encoded, want refused")
	}
}
