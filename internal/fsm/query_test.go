package fsm

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// "Clients acquire a named lock with a lease (TTL), wait for it in a FIFO
// queue, query it and release it" — what Query sees.
var lockViewRows = []struct {
	name   string
	give   []step
	want   LockView
	wantOK bool
}{
	{
		name:   "a held lock with a waiter",
		give:   []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50))},
		want:   LockView{Name: "L", Owner: "a", Token: 1, Nonce: 1, TTL: 10, GrantedNanos: 100, ExpiresNanos: 110, AcquiredUnixNanos: 100 + wallAt, Waiters: 1, Held: true},
		wantOK: true,
	},
	{
		name:   "a passed lease is not held, though not yet ended",
		give:   []step{at(100, acq("L", "a", 10, 0)), at(110)},
		want:   LockView{Name: "L", Owner: "a", Token: 1, Nonce: 1, TTL: 10, GrantedNanos: 100, ExpiresNanos: 110, AcquiredUnixNanos: 100 + wallAt},
		wantOK: true,
	},
	{
		name:   "dead waiters are not counted",
		give:   []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(106)},
		want:   LockView{Name: "L", Owner: "a", Token: 1, Nonce: 1, TTL: 10, GrantedNanos: 100, ExpiresNanos: 110, AcquiredUnixNanos: 100 + wallAt, Waiters: 1, Held: true},
		wantOK: true,
	},
	{
		name: "a released lock keeps its record, nonce and last hold, without owner",
		give: []step{at(100, acq("L", "a", 10, 0), rel("L", "a", 0))},
		want: LockView{Name: "L", Nonce: 1, Token: 1, TTL: 10, GrantedNanos: 100,
			AcquiredUnixNanos: 100 + wallAt},
		wantOK: true,
	},
	{
		name: "an unknown lock has no record",
		give: []step{at(100)},
	},
}

func TestLockView(t *testing.T) {
	for _, tt := range lockViewRows {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := play(t, testLimits(), tt.give)
			got, ok := s.Lock("L")
			check(t, "view", got, tt.want)
			check(t, "ok", ok, tt.wantOK)
		})
	}
}

// pageState holds locks and keys a, ab, abc, b, ba, c.
func pageState(t *testing.T) *State {
	s := New(DefaultLimits())
	var cmds []*fsmpb.Command
	for _, n := range []string{"c", "ab", "a", "ba", "abc", "b"} {
		cmds = append(cmds, acq(n, "o", 10, 0), put(n, "v"+n))
	}
	s.Apply(at(100, cmds...).entry())
	if err := s.verify(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Listing pages through names in order: "lock `list`", "kv" listings.
var pageRows = []struct {
	name                  string
	prefix, after         string
	limit                 int
	keysOnly              bool
	wantLocks, wantValues string
	wantMore              bool
}{
	{name: "everything", limit: 10, wantLocks: "a ab abc b ba c", wantValues: "va vab vabc vb vba vc"},
	{name: "a first page", limit: 2, wantLocks: "a ab", wantValues: "va vab", wantMore: true},
	{name: "a page that fits exactly", limit: 6, wantLocks: "a ab abc b ba c", wantValues: "va vab vabc vb vba vc"},
	{name: "the next page", after: "ab", limit: 2, wantLocks: "abc b", wantValues: "vabc vb", wantMore: true},
	{name: "after a name that is absent", after: "aa", limit: 1, wantLocks: "ab", wantValues: "vab", wantMore: true},
	{name: "by prefix", prefix: "a", limit: 10, wantLocks: "a ab abc", wantValues: "va vab vabc"},
	{name: "by prefix, after its first", prefix: "a", after: "a", limit: 10, wantLocks: "ab abc", wantValues: "vab vabc"},
	{name: "after a name before the prefix", prefix: "b", after: "a", limit: 10, wantLocks: "b ba", wantValues: "vb vba"},
	{name: "after the prefix's range", prefix: "a", after: "b", limit: 10},
	{name: "a prefix nothing has", prefix: "d", limit: 10},
	{name: "keys only", prefix: "b", limit: 10, keysOnly: true, wantLocks: "b ba", wantValues: " "},
	{name: "limit 0 returns nothing but says more", limit: 0, wantMore: true},
	{name: "limit 0 with nothing to list", prefix: "z", limit: 0},
}

func TestPaging(t *testing.T) {
	s := pageState(t)
	for _, tt := range pageRows {
		t.Run(tt.name, func(t *testing.T) {
			locks, moreLocks := s.Locks(tt.prefix, tt.after, tt.limit)
			kvs, moreKeys := s.Keys(tt.prefix, tt.after, tt.limit, tt.keysOnly)
			var names, keys, values []string
			for _, v := range locks {
				names = append(names, v.Name)
			}
			for _, r := range kvs {
				keys, values = append(keys, r.Key), append(values, string(r.Value))
			}
			check(t, "locks", strings.Join(names, " "), tt.wantLocks)
			check(t, "keys", strings.Join(keys, " "), tt.wantLocks)
			check(t, "values", strings.Join(values, " "), tt.wantValues)
			check(t, "more locks", moreLocks, tt.wantMore)
			check(t, "more keys", moreKeys, tt.wantMore)
		})
	}
}

func TestReadsReturnCopies(t *testing.T) {
	// Values handed in and out are copies: neither the proposer nor a reader
	// can change replicated state by writing to a slice.
	s := New(testLimits())
	cmd := put("k", "v")
	s.Apply(at(100, cmd).entry())
	cmd.GetPut().Value[0] = 'x'
	got, _ := s.Get("k")
	got[0] = 'y'
	kvs, _ := s.Keys("", "", 1, false)
	kvs[0].Value[0] = 'z'
	got, ok := s.Get("k")
	check(t, "value", string(got), "v")
	check(t, "ok", ok, true)
	_, ok = s.Get("missing")
	check(t, "missing ok", ok, false)

	// A remembered result handed out twice is two copies.
	c := as("c", 1, acq("L", "a", 10, 0))
	first := s.Apply(at(100, c).entry()).Results[0]
	first.Token = 99
	again := s.Apply(at(100, c).entry()).Results[0]
	check(t, "remembered token", again.Token, uint64(1))
}

// The leader's lease timer: "keeps a deadline heap on its monotonic clock
// and proposes Expire(lock, token)". Holds: A exp 130 (token 1), B 110 (2),
// C 120 (3), D 110 (4).
var expiredRows = []struct {
	name  string
	now   int64
	limit int
	want  string
}{
	{name: "none passed yet", now: 109, limit: 10, want: ""},
	{name: "ties in deadline come by token", now: 110, limit: 10, want: "B:2 D:4"},
	{name: "earliest first", now: 120, limit: 10, want: "B:2 D:4 C:3"},
	{name: "all", now: 1000, limit: 10, want: "B:2 D:4 C:3 A:1"},
	{name: "at most limit", now: 1000, limit: 2, want: "B:2 D:4"},
	{name: "limit 0", now: 1000, limit: 0, want: ""},
}

func TestExpired(t *testing.T) {
	s, _, _ := play(t, DefaultLimits(), []step{
		at(100, acq("A", "a", 30, 0), acq("B", "a", 10, 0), acq("C", "a", 20, 0), acq("D", "a", 10, 0)),
	})
	name, token, expires, ok := s.NextExpiry()
	check(t, "next expiry", fmt.Sprintf("%q %d %d %t", name, token, expires, ok), `"B" 2 110 true`)
	for _, tt := range expiredRows {
		t.Run(tt.name, func(t *testing.T) {
			check(t, "expired", fmtViews(s.Expired(tt.now, tt.limit)), tt.want)
		})
	}
}

func TestNextExpiryWithNothingHeld(t *testing.T) {
	s, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0), rel("L", "a", 0))})
	name, token, expires, ok := s.NextExpiry()
	check(t, "next expiry", fmt.Sprintf("%q %d %d %t", name, token, expires, ok), `"" 0 0 false`)
	check(t, "expired", len(s.Expired(1000, 10)), 0)
}

func TestExpiredMatchesSortedHolds(t *testing.T) {
	// Expired walks the heap best-first; it must agree with sorting every
	// hold by (deadline, token), whatever the heap's shape.
	r := rand.New(rand.NewPCG(1, 2))
	s := New(DefaultLimits())
	for i := range 500 {
		name := fmt.Sprintf("l%03d", r.IntN(300))
		s.Apply(at(int64(i), acq(name, "o", 1+r.Int64N(400), 0), renew(name, "o", 0, 1+r.Int64N(400))).entry())
	}
	all := s.Expired(1<<62, 1<<30)
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b LockView) int {
		return cmp.Or(cmp.Compare(a.ExpiresNanos, b.ExpiresNanos), cmp.Compare(a.Token, b.Token))
	})
	_, held, _, _, _ := s.Counts()
	check(t, "all holds listed", len(all), held)
	check(t, "order", fmtViews(all), fmtViews(sorted))
	for _, k := range []int{1, 7, 50} {
		for _, now := range []int64{300, 450, 700} {
			var want []LockView
			for _, v := range sorted {
				if v.ExpiresNanos <= now && len(want) < k {
					want = append(want, v)
				}
			}
			check(t, fmt.Sprintf("Expired(%d, %d)", now, k), fmtViews(s.Expired(now, k)), fmtViews(want))
		}
	}
}

func fmtViews(vs []LockView) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s:%d", v.Name, v.Token)
	}
	return strings.Join(parts, " ")
}

func TestCounts(t *testing.T) {
	s, _, _ := play(t, testLimits(), []step{
		at(100, acq("A", "a", 10, 0), acq("A", "b", 10, 50), acq("B", "a", 10, 0), rel("B", "a", 0),
			put("k", "v"), as("c", 1, put("j", "v"))),
	})
	locks, held, waiters, keys, clients := s.Counts()
	check(t, "counts", fmt.Sprint(locks, held, waiters, keys, clients), "2 1 1 2 1")
	check(t, "now", s.Now(), int64(100))
	check(t, "fence", s.Fence(), uint64(2))
	check(t, "limits", s.Limits(), testLimits())
}
