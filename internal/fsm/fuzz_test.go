package fsm

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// fuzzSeed is a State with a held lock and a queue, a released lock, a key
// and a client, so fuzzed entries have something to hit.
func fuzzSeed(t testing.TB) []byte {
	s := New(testLimits())
	s.Apply(at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), acq("M", "a", 10, 0), rel("M", "a", 0),
		put("k", "v"), as("c", 1, acq("N", "c", 30, 0))).entry())
	return snap(t, s)
}

// FuzzApplyBytes: "An entry that cannot be decoded or is invalid gets the
// same error result on every replica and changes nothing; it never panics
// (fuzzed)." Bytes that do decode must keep every invariant and apply the
// same way on a restored replica.
func FuzzApplyBytes(f *testing.F) {
	seed := fuzzSeed(f)
	for _, e := range newGen(1).entries(20) {
		b, err := proto.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Restore(bytes.NewReader(seed), testLimits())
		if err != nil {
			t.Fatal(err)
		}
		out := s.ApplyBytes(data)
		if proto.Unmarshal(data, new(fsmpb.Entry)) != nil {
			if len(out.Results) != 1 || out.Results[0].Code != fsmpb.Code_INVALID || len(out.Events) != 0 {
				t.Fatalf("undecodable entry: got %v, want one INVALID", out)
			}
			if !bytes.Equal(snap(t, s), seed) {
				t.Fatal("undecodable entry changed the snapshot")
			}
			return
		}
		if err := s.verify(); err != nil {
			t.Fatalf("invariant broken: %v", err)
		}
		replica, _ := Restore(bytes.NewReader(seed), testLimits())
		if d := sameOutput(replica.ApplyBytes(data), out); d != "" {
			t.Fatalf("replicas disagree: %s", d)
		}
		if !bytes.Equal(snap(t, replica), snap(t, s)) {
			t.Fatal("replicas' snapshots differ")
		}
	})
}

// FuzzRestore: Restore "returns an error for corrupt input, never panics";
// what it accepts snapshots back to a stream it accepts again, unchanged.
func FuzzRestore(f *testing.F) {
	f.Add(fuzzSeed(f))
	f.Add(aclFuzzSeed(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Restore(bytes.NewReader(data), testLimits())
		if err != nil {
			return
		}
		again, err := Restore(bytes.NewReader(snap(t, s)), testLimits())
		if err != nil {
			t.Fatalf("re-restore of an accepted snapshot: %v", err)
		}
		if !bytes.Equal(snap(t, again), snap(t, s)) {
			t.Fatal("snapshot not stable across restore")
		}
	})
}
