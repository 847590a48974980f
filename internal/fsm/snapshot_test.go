package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// "State machine snapshots hold locks, queues, leases, KV and the
// idempotency table" — and a restored State must answer every later entry
// exactly as the original does.
func TestSnapshotRoundTrip(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := newGen(seed)
			entries := g.entries(600)
			mid := g.r.IntN(len(entries))
			orig := New(genLimits())
			for _, e := range entries[:mid] {
				orig.Apply(e)
			}
			restored, err := Restore(bytes.NewReader(snap(t, orig)), genLimits())
			if err != nil {
				t.Fatalf("Restore at entry %d: %v", mid, err)
			}
			clone := orig.Clone()
			for i, e := range entries[mid:] {
				want := orig.Apply(e)
				if d := sameOutput(restored.Apply(e), want); d != "" {
					t.Fatalf("entry %d, restored at %d: %s", mid+i, mid, d)
				}
				if d := sameOutput(clone.Apply(e), want); d != "" {
					t.Fatalf("entry %d, cloned at %d: %s", mid+i, mid, d)
				}
			}
			final := snap(t, orig)
			check(t, "restored snapshot equals original", bytes.Equal(snap(t, restored), final), true)
			check(t, "cloned snapshot equals original", bytes.Equal(snap(t, clone), final), true)
			check(t, "expired", fmtViews(restored.Expired(1<<62, 100)), fmtViews(orig.Expired(1<<62, 100)))
		})
	}
}

// Apply is "a pure function of state and entry": two replicas fed the same
// entries produce the same outputs and the same snapshot bytes, after every
// entry, whatever Go's map iteration order does.
func TestDeterminism(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			a, b := New(genLimits()), New(genLimits())
			for i, e := range newGen(100 + seed).entries(400) {
				if d := sameOutput(a.Apply(e), b.Apply(e)); d != "" {
					t.Fatalf("entry %d: %s", i, d)
				}
				if err := a.verify(); err != nil {
					t.Fatalf("entry %d: invariant broken: %v", i, err)
				}
				if !bytes.Equal(snap(t, a), snap(t, b)) {
					t.Fatalf("entry %d: snapshots differ", i)
				}
			}
		})
	}
}

func TestRandomTrafficReachesEveryOutcome(t *testing.T) {
	// Guards the generator: the round trip proves little unless random
	// traffic reaches every result code and event kind.
	seen := map[string]bool{}
	s := New(genLimits())
	for _, e := range newGen(7).entries(3000) {
		out := s.Apply(e)
		for _, r := range out.Results {
			seen[r.Code.String()] = true
		}
		for _, ev := range out.Events {
			seen[ev.Kind.String()] = true
		}
	}
	for _, want := range []string{"OK", "INVALID", "LOCKED", "QUEUED", "NOT_HELD", "HELD_BY_OTHER",
		"TOKEN_MISMATCH", "NOT_FOUND", "LIMIT", "STALE_REQUEST", "IGNORED", "granted", "released", "expired"} {
		check(t, want+" seen", seen[want], true)
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteSnapshotReportsWriteErrors(t *testing.T) {
	s, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0))})
	err := s.WriteSnapshot(failWriter{})
	check(t, "is disk full", errors.Is(err, errDiskFull), true)
	check(t, "error", errText(err), "dlock: write fsm snapshot: disk full")
}

func TestRestoreKeepsStateBeyondLoweredLimits(t *testing.T) {
	// Limits may be lowered between restarts: the node must still start.
	s, _, _ := play(t, testLimits(), []step{at(100, acq("A", "a", 10, 0), acq("B", "a", 10, 0), acq("A", "b", 10, 50))})
	lower := testLimits()
	lower.LocksMax, lower.WaitersPerLockMax = 1, 1
	r, err := Restore(bytes.NewReader(snap(t, s)), lower)
	check(t, "error", errText(err), "")
	out := r.Apply(at(100, acq("C", "a", 10, 0), acq("A", "c", 10, 50), rel("A", "a", 0)).entry())
	check(t, "results", fmtResults(out.Results), "LIMIT; LIMIT; OK token=1 next=b")
}

func TestRestoreRejectsInvalidLimits(t *testing.T) {
	_, err := Restore(bytes.NewReader(nil), Limits{})
	check(t, "error", errText(err), "dlock: fsm limits: NameBytesMax: 0 below 1")
}

func TestCloneIsIndependent(t *testing.T) {
	// A snapshot is written from the clone while the original applies on.
	s, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), put("k", "v"), as("c", 1, put("j", "v")))})
	c := s.Clone()
	before := snap(t, c)
	s.Apply(at(200, acq("L", "c", 10, 50), rel("L", "a", 0), del("k"), as("c", 2, put("x", "y")), as("d", 1, put("j", "w"))).entry())
	check(t, "clone unchanged", bytes.Equal(snap(t, c), before), true)
	check(t, "clone verifies", errText(c.verify()), "")
	check(t, "original verifies", errText(s.verify()), "")
}
