package fsm

import (
	"math"
	"testing"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// "Every hold has a TTL (the seed's `expire`). The holder may renew it
// (keepalive) ... When the TTL passes without renewal, the cluster releases
// the lock."
var leaseRows = []row{
	{
		name: "a grant leases the lock for ttl from now",
		give: []step{at(100, acq("L", "a", 10, 0))},
		want: want{
			res:    "OK token=1 nonce=1 ttl=10 acq=100",
			events: "granted L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "a token=1 nonce=1 ttl=10 at=100 exp=110",
		},
	},
	{
		name: "renew extends the lease by the hold's ttl from now",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, renew("L", "a", 0, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=115"},
	},
	{
		name: "renew with a ttl sets the hold's ttl",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, renew("L", "a", 0, 20))},
		want: want{res: "OK token=1 nonce=1 ttl=20 acq=100", lock: "a token=1 nonce=1 ttl=20 at=100 exp=125"},
	},
	{
		name: "renew with the current token",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, renew("L", "a", 1, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=115"},
	},
	{
		name: "renew one tick before the lease passes",
		give: []step{at(100, acq("L", "a", 10, 0)), at(109, renew("L", "a", 0, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=119"},
	},
	{
		name: "renew with another token is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, renew("L", "a", 7, 0))},
		want: want{res: "TOKEN_MISMATCH", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "renew by another owner is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, renew("L", "b", 0, 0))},
		want: want{res: "HELD_BY_OTHER", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "renew of a released lock",
		give: []step{at(100, acq("L", "a", 10, 0), rel("L", "a", 0)), at(100, renew("L", "a", 0, 0))},
		want: want{res: "NOT_HELD", lock: "free nonce=1 released=100", same: true},
	},
	{
		name: "renew of an unknown lock",
		give: []step{at(100), at(100, renew("L", "a", 0, 0))},
		want: want{res: "NOT_HELD", same: true},
	},
	{
		name: "renew once the lease passed is refused and ends the hold",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, renew("L", "a", 0, 0))},
		want: want{
			res:    "NOT_HELD",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=110",
		},
	},
	{
		name: "renew once the lease passed hands the lock to the first live waiter",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 5, 50)), at(110, renew("L", "a", 0, 0))},
		want: want{
			res:    "NOT_HELD next=b",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=5 acq=110",
			lock:   "b token=2 nonce=2 ttl=5 at=110 exp=115",
		},
	},
	{
		name: "acquire of a passed lease ends it and grants anew",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, acq("L", "b", 10, 0))},
		want: want{
			res:    "OK token=2 nonce=2 ttl=10 acq=110",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=110",
			lock:   "b token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "the owner of a passed lease gets a new token, not reentry",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, acq("L", "a", 10, 0))},
		want: want{
			res:    "OK token=2 nonce=2 ttl=10 acq=110",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L a token=2 nonce=2 ttl=10 acq=110",
			lock:   "a token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "a passed lease goes to the waiter, not to a newcomer",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(110, acq("L", "c", 10, 0))},
		want: want{
			res:    "LOCKED",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=110",
			lock:   "b token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "expire ends a passed lease",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, expire("L", 1))},
		want: want{
			res:    "OK token=1",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=110",
		},
	},
	{
		name: "expire before the deadline is ignored",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, expire("L", 1))},
		want: want{res: "IGNORED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "expire of an earlier hold is ignored",
		give: []step{
			at(100, acq("L", "a", 10, 0), rel("L", "a", 0), acq("L", "b", 10, 0)),
			at(120, expire("L", 1)),
		},
		want: want{res: "IGNORED", lock: "b token=2 nonce=2 ttl=10 at=100 exp=110"},
	},
	{
		name: "expire of an unknown lock is ignored",
		give: []step{at(100), at(100, expire("L", 1))},
		want: want{res: "IGNORED", same: true},
	},
	{
		name: "expire hands the lock to the first live waiter",
		give: []step{
			at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)),
			at(110, expire("L", 1)),
		},
		want: want{
			res:    "OK token=1 next=c",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L c token=2 nonce=2 ttl=10 acq=110",
			lock:   "c token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "a huge ttl saturates rather than overflows",
		give: []step{at(100, acq("L", "a", math.MaxInt64, 0))},
		want: want{
			res:    "OK token=1 nonce=1 ttl=9223372036854775807 acq=100",
			events: "granted L a token=1 nonce=1 ttl=9223372036854775807 acq=100",
			lock:   "a token=1 nonce=1 ttl=9223372036854775807 at=100 exp=9223372036854775807",
		},
	},
}

func TestLease(t *testing.T) { runRows(t, testLimits(), leaseRows) }

// "The state machine never reads a clock: it is a pure function of the log.
// ... Wall-clock readings travel beside it for display only. Cluster time
// therefore never jumps with a wall clock."
var clusterTimeRows = []row{
	{
		name: "an earlier stamp does not move time back",
		give: []step{at(100, acq("L", "a", 10, 0)), at(50, renew("L", "a", 0, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "a negative stamp does not move time back",
		give: []step{at(100, acq("L", "a", 10, 0)), at(-5, renew("L", "a", 0, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "an earlier stamp cannot revive a passed lease",
		give: []step{at(100, acq("L", "a", 10, 0)), at(120), at(105, renew("L", "a", 0, 0))},
		want: want{
			res:    "NOT_HELD",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=120",
		},
	},
	{
		name: "a wall clock going back only changes what is displayed",
		give: []step{at(100, acq("L", "a", 10, 0)), atWall(110, wallAt+3, acq("L", "b", 10, 0))},
		want: want{
			res:    "OK token=2 nonce=2 ttl=10 acq=3",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=3",
			lock:   "b token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "a wall clock jumping ahead does not pass a lease",
		give: []step{at(100, acq("L", "a", 10, 0)), atWall(105, wallAt+hour, renew("L", "a", 0, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=115"},
	},
}

func TestClusterTime(t *testing.T) { runRows(t, testLimits(), clusterTimeRows) }

// "When a node becomes leader it ... commits a leader-start command whose
// application re-arms every live lease to at least its full TTL from that
// command's time ...: a lease is a lower bound, never cut short by a failover
// or a clock jump, and never stretched by one beyond a full TTL."
var leaderStartRows = []row{
	{
		name: "a live lease is re-armed to a full ttl",
		give: []step{at(100, acq("L", "a", 10, 0)), at(108, leaderStart())},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=118"},
	},
	{
		name: "a lease is never stretched beyond a full ttl",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, leaderStart())},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "re-arming uses the ttl a renew set",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, renew("L", "a", 0, 30)), at(120, leaderStart())},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=30 at=100 exp=150"},
	},
	{
		name: "a passed lease stays passed",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, leaderStart())},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110"},
	},
	{
		name: "a leader start without a body is still a leader start",
		give: []step{at(100, acq("L", "a", 10, 0)), at(108, &fsmpb.Command{Op: &fsmpb.Command_LeaderStart{}})},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=118"},
	},
	{
		name: "with nothing held it changes nothing",
		give: []step{at(100), at(100, leaderStart())},
		want: want{res: "OK", same: true},
	},
}

func TestLeaderStart(t *testing.T) { runRows(t, testLimits(), leaderStartRows) }

// "Every grant returns a token that strictly grows, per lock and
// cluster-wide ... the state machine keeps a replicated counter, bumped on
// every grant, and the token is that counter. Query also returns the seed's
// per-lock `nonce` (a counter bumped on every grant of that lock)."
var fencingRows = []row{
	{
		name: "tokens grow across locks, nonces per lock",
		give: []step{at(100, acq("L", "a", 10, 0), acq("M", "b", 10, 0), rel("L", "a", 0), acq("L", "c", 10, 0))},
		want: want{
			res: "OK token=1 nonce=1 ttl=10 acq=100; OK token=2 nonce=1 ttl=10 acq=100; " +
				"OK token=1; OK token=3 nonce=2 ttl=10 acq=100",
			events: "granted L a token=1 nonce=1 ttl=10 acq=100; granted M b token=2 nonce=1 ttl=10 acq=100; " +
				"released L a token=1 nonce=1 ttl=10 acq=100; granted L c token=3 nonce=2 ttl=10 acq=100",
			lock: "c token=3 nonce=2 ttl=10 at=100 exp=110",
		},
	},
	{
		name: "a hand-on takes the next token",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(101, rel("L", "a", 1))},
		want: want{
			res:    "OK token=1 next=b",
			events: "released L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=101",
			lock:   "b token=2 nonce=2 ttl=10 at=101 exp=111",
		},
	},
}

func TestFencingToken(t *testing.T) { runRows(t, testLimits(), fencingRows) }
