package check

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// sim runs a sequential model of a correct cluster and records a legal
// history of it: each op takes effect at its own point in time, and its
// client's window [Invoke, Return] is drawn around that point, so clients
// overlap at random. Leases are long: nothing expires.
type sim struct {
	rng     *rand.Rand
	clients int
	now     time.Duration
	free    []time.Duration // when each client's last op returned
	fence   uint64
	locks   map[string]*simLock
	kv      map[string]string
	puts    int
	// Per client: the tokens of its acknowledged holds, and a lock to
	// clean up (release whatever it holds) after an unanswered op.
	held    []map[string]uint64
	cleanup []string
	ops     []history.Op
	fresh   []bool // per op: an OK acquire that was a new grant
}

type simLock struct {
	holder       string
	ghost        bool // granted by an unanswered acquire, never acknowledged
	token, nonce uint64
}

func newSim(seed uint64, clients int) *sim {
	s := &sim{rng: rand.New(rand.NewPCG(seed, seed)), clients: clients, free: make([]time.Duration, clients),
		locks: map[string]*simLock{}, kv: map[string]string{}, cleanup: make([]string, clients)}
	for range clients {
		s.held = append(s.held, map[string]uint64{})
	}
	return s
}

func owner(c int) string { return fmt.Sprintf("c%d", c) }

// step advances time, picks a free client and records one op by it.
func (s *sim) step(locks, keys int) {
	s.now += time.Duration(1+s.rng.IntN(20)) * time.Microsecond
	var idle []int
	for c, f := range s.free {
		if f < s.now {
			idle = append(idle, c)
		}
	}
	if len(idle) == 0 {
		return
	}
	c := idle[s.rng.IntN(len(idle))]
	op := history.Op{Client: c, Outcome: history.OK}
	switch r := s.rng.IntN(100); {
	case s.cleanup[c] != "":
		op.Kind, op.Name = history.Release, s.cleanup[c]
		s.cleanup[c] = ""
	case r < 25:
		op.Kind, op.Name = history.Acquire, fmt.Sprint("lock", s.rng.IntN(locks))
	case r < 40:
		op.Kind, op.Name = history.Release, s.pickLock(c, locks)
		op.Token = s.held[c][op.Name]
	case r < 48:
		op.Kind, op.Name = history.Renew, s.pickLock(c, locks)
		op.Token = s.held[c][op.Name]
	case r < 60:
		op.Kind, op.Name = history.Query, fmt.Sprint("lock", s.rng.IntN(locks))
	case r < 77:
		op.Kind, op.Name = history.Put, fmt.Sprint("key", s.rng.IntN(keys))
	case r < 95:
		op.Kind, op.Name = history.Get, fmt.Sprint("key", s.rng.IntN(keys))
	default:
		op.Kind, op.Name = history.Delete, fmt.Sprint("key", s.rng.IntN(keys))
	}
	op.Owner = owner(c)
	s.record(op)
}

// pickLock prefers a lock the client holds.
func (s *sim) pickLock(c, locks int) string {
	for _, name := range sortedNames(s.held[c]) { // map order would make runs differ
		if s.rng.IntN(4) > 0 {
			return name
		}
	}
	return fmt.Sprint("lock", s.rng.IntN(locks))
}

// record applies op at s.now (or, if unanswered, maybe not at all) and
// draws its window.
func (s *sim) record(op history.Op) {
	c := op.Client
	unanswered := s.rng.IntN(100) < unknownPct
	effect := !unanswered || s.rng.IntN(2) == 0
	fresh := s.apply(&op, effect)
	span := time.Duration(1+s.rng.IntN(spanMax)) * time.Microsecond
	op.Invoke = max(s.free[c]+1, s.now-time.Duration(s.rng.Int64N(int64(span))))
	op.Return = s.now + time.Duration(s.rng.Int64N(int64(span)))
	if unanswered {
		// The client gave up at some time after sending; the effect, if
		// any, may come later.
		op.Outcome, op.ResToken, op.ResNonce, op.ResHolder, op.ResValue, op.ResFound = history.Unknown, 0, 0, "", "", false
		op.Return = op.Invoke + time.Duration(s.rng.Int64N(int64(2*span)))
		if op.Kind == history.Acquire || op.Kind == history.Release {
			s.cleanup[c] = op.Name
			delete(s.held[c], op.Name)
		}
	}
	s.free[c] = op.Return
	s.ops = append(s.ops, op)
	s.fresh = append(s.fresh, fresh && !unanswered)
	s.maybeWithdraw()
}

// apply runs op against the state if effect, filling in its results. It
// reports whether op granted the lock anew.
func (s *sim) apply(op *history.Op, effect bool) bool {
	c, l := op.Client, s.locks[op.Name]
	switch op.Kind {
	case history.Acquire:
		op.TTL, op.Wait = long, time.Duration(s.rng.IntN(2))*time.Second
		switch {
		case l != nil && l.holder == op.Owner:
			l.ghost = false
			op.ResToken, op.ResNonce = l.token, l.nonce
			s.held[c][op.Name] = l.token
		case l != nil && l.holder != "":
			op.Outcome = history.Refused
		case effect:
			if l == nil {
				l = &simLock{}
				s.locks[op.Name] = l
			}
			s.fence++
			l.holder, l.ghost, l.token = op.Owner, false, s.fence
			l.nonce++
			op.ResToken, op.ResNonce = l.token, l.nonce
			s.held[c][op.Name] = l.token
			return true
		}
	case history.Release, history.Renew:
		if op.Kind == history.Renew {
			op.TTL = long
		}
		if l == nil || l.holder != op.Owner || (op.Token != 0 && op.Token != l.token) {
			op.Outcome = history.Refused
			delete(s.held[c], op.Name)
			return false
		}
		op.ResToken = l.token
		if op.Kind == history.Release && effect {
			l.holder, l.ghost = "", false
			delete(s.held[c], op.Name)
		}
	case history.Query:
		if l != nil {
			op.ResFound, op.ResHolder, op.ResToken, op.ResNonce = true, l.holder, l.token, l.nonce
		}
	case history.Put:
		s.puts++
		op.Value = fmt.Sprint("v", s.puts)
		if effect {
			s.kv[op.Name] = op.Value
		}
	case history.Get:
		op.ResValue, op.ResFound = s.kv[op.Name]
	case history.Delete:
		if effect {
			delete(s.kv, op.Name)
		}
	}
	return false
}

// maybeWithdraw ends, now and then, a hold no client was told about, as the
// server does when the acquire behind it gave up.
func (s *sim) maybeWithdraw() {
	for _, name := range sortedNames(s.locks) {
		if l := s.locks[name]; l.ghost && s.rng.IntN(50) == 0 {
			l.holder, l.ghost = "", false
		}
	}
}

// final is the observation after the run: a get of every key and a query
// of every lock ever named, placed by Durability after everything.
func (s *sim) final(locks, keys int) []history.Op {
	var out []history.Op
	for i := range keys {
		op := history.Op{Kind: history.Get, Name: fmt.Sprint("key", i), Outcome: history.OK}
		op.ResValue, op.ResFound = s.kv[op.Name]
		out = append(out, op)
	}
	for i := range locks {
		op := history.Op{Kind: history.Query, Name: fmt.Sprint("lock", i), Outcome: history.OK}
		if l := s.locks[op.Name]; l != nil {
			op.ResFound, op.ResHolder, op.ResToken, op.ResNonce = true, l.holder, l.token, l.nonce
		}
		out = append(out, op)
	}
	return out
}

// generate records a legal history of n ops over locks locks and keys
// keys by 16 clients. Ops are sorted by Invoke, as Recorder.Ops returns
// them; fresh marks the OK acquires that were new grants.
func generate(seed uint64, n, locks, keys int) (ops []history.Op, fresh []bool, final []history.Op) {
	s := newSim(seed, simClients)
	for len(s.ops) < n {
		s.step(locks, keys)
	}
	// The unanswered ops' grants are withdrawn in the end, or released
	// by the cleanup that a client would have sent next.
	for _, l := range s.locks {
		if l.ghost {
			l.holder, l.ghost = "", false
		}
	}
	idx := make([]int, len(s.ops))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.ops[idx[a]].Invoke < s.ops[idx[b]].Invoke })
	for _, i := range idx {
		ops = append(ops, s.ops[i])
		fresh = append(fresh, s.fresh[i])
	}
	return ops, fresh, s.final(locks, keys)
}

// genLimit is how long any check of a generated history may take: it must
// decide well inside it (a timeout fails the test).
var genLimit = LinOptions{Timeout: 20 * time.Second}

// A random legal history of 2,000 ops over 20 locks and 20 keys, some
// unanswered, passes every checker in seconds.
func TestGeneratedHistoryPasses(t *testing.T) {
	for seed := range uint64(3) {
		ops, _, final := generate(seed, 2000, 20, 20)
		start := time.Now()
		rep := Run(ops, Config{Final: final, LongLeases: true, Lin: genLimit})
		t.Logf("seed %d: checked in %v\n%s", seed, time.Since(start), rep)
		if !rep.OK() {
			t.Errorf("seed %d: legal history failed:\n%s", seed, rep)
		}
	}
}

// Changing one result of a legal history makes the right checkers fail.
func TestGeneratedHistoryMutated(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, ops []history.Op, fresh []bool)
		want   map[string]string // checker -> verdict
	}{
		{"a later grant repeats a token", repeatToken, map[string]string{"locks": "fail", "mutex": "fail", "kv": "ok"}},
		{"a read returns an overwritten value", staleRead, map[string]string{"kv": "fail", "locks": "ok"}},
		{"a query shows a grant count off by one", func(t *testing.T, ops []history.Op, _ []bool) {
			i := findLast(t, ops, func(op history.Op) bool { return op.Kind == history.Query && op.ResFound })
			t.Logf("%s now shows nonce %d", describe(ops[i]), ops[i].ResNonce+1)
			ops[i].ResNonce++
		}, map[string]string{"locks": "fail", "kv": "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, fresh, _ := generate(7, 2000, 20, 20)
			tt.mutate(t, ops, fresh)
			rep := Run(ops, Config{LongLeases: true, Lin: genLimit})
			for _, r := range rep.Results {
				if want, ok := tt.want[r.Checker]; ok && verdict(r) != want {
					t.Errorf("%s: verdict %s, want %s\n%s", r.Checker, verdict(r), want, r)
				}
			}
		})
	}
}

// The mutations change ops late in the history, so that the search must
// rule out every way of placing the ops before.

// repeatToken gives a late new grant of a lock, to another owner, the
// token of an earlier one.
func repeatToken(t *testing.T, ops []history.Op, fresh []bool) {
	for j := len(ops) - 1; j >= 0; j-- {
		for i := j - 1; i >= 0; i-- {
			a, b := ops[i], ops[j]
			if fresh[i] && fresh[j] && a.Name == b.Name && a.Owner != b.Owner && b.Invoke > a.Return {
				t.Logf("token %d of %s given to %s", a.ResToken, describe(a), describe(b))
				ops[j].ResToken = a.ResToken
				return
			}
		}
	}
	t.Fatal("no two grants of one lock to different owners, one after the other")
}

// staleRead makes a late read return a value overwritten before it was
// sent.
func staleRead(t *testing.T, ops []history.Op, _ []bool) {
	isPut := func(op history.Op) bool { return op.Kind == history.Put && op.Outcome == history.OK }
	i := findLast(t, ops, func(op history.Op) bool { return op.Kind == history.Get && op.Outcome == history.OK })
	for _, old := range ops {
		for _, newer := range ops {
			if isPut(old) && isPut(newer) && newer.Name == ops[i].Name && old.Name == ops[i].Name &&
				old.Return < newer.Invoke && newer.Return < ops[i].Invoke {
				t.Logf("%s now reads %q", describe(ops[i]), old.Value)
				ops[i].ResFound, ops[i].ResValue = true, old.Value
				return
			}
		}
	}
	t.Fatal("no put overwritten before the last read")
}

func findLast(t *testing.T, ops []history.Op, match func(history.Op) bool) int {
	t.Helper()
	for i := len(ops) - 1; i >= 0; i-- {
		if match(ops[i]) {
			return i
		}
	}
	t.Fatal("no op matches")
	return -1
}

// The generator's knobs: the share of ops left unanswered (in percent),
// the widest window around an op's point, and the clients.
const (
	unknownPct = 5
	spanMax    = 1000 // microseconds, against 1 to 20 between points
	simClients = 16
)
