package fsm

import (
	"testing"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// refused builds a row whose last step, at the time of a grant of L to a,
// sends cmd and must be refused with res, changing nothing.
func refused(name string, cmd *fsmpb.Command, res string) row {
	return row{
		name: name,
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, cmd)},
		want: want{res: res, lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	}
}

// "A bad request (empty name, TTL <= 0, sizes over the limits) gets
// InvalidArgument and changes nothing." Sizes get LIMIT (ResourceExhausted):
// "over a limit the request is refused with ResourceExhausted".
var validationRows = []row{
	refused("acquire with an empty name", acq("", "b", 10, 0), "INVALID"),
	refused("acquire with an empty owner", acq("L", "", 10, 0), "INVALID"),
	refused("acquire with a zero ttl", acq("M", "b", 0, 0), "INVALID"),
	refused("acquire with a negative ttl", acq("M", "b", -1, 0), "INVALID"),
	refused("acquire with a negative wait", acq("L", "b", 10, -1), "INVALID"),
	refused("acquire with a name over the limit", acq("L23456789", "b", 10, 0), "LIMIT"),
	refused("acquire with an owner over the limit", acq("L", "b23456789", 10, 0), "LIMIT"),
	refused("acquire with a name that is not UTF-8", acq("M\xff", "b", 10, 0), "INVALID"),
	refused("acquire both malformed and over a limit is malformed", acq("L23456789", "", 10, 0), "INVALID"),
	refused("renew with an empty name", renew("", "a", 0, 0), "INVALID"),
	refused("renew with an empty owner", renew("L", "", 0, 0), "INVALID"),
	refused("renew with a negative ttl", renew("L", "a", 0, -1), "INVALID"),
	refused("renew with a name over the limit", renew("L23456789", "a", 0, 0), "LIMIT"),
	refused("release with an empty name", rel("", "a", 0), "INVALID"),
	refused("release with an empty owner", rel("L", "", 0), "INVALID"),
	refused("release with an owner over the limit", rel("L", "a23456789", 0), "LIMIT"),
	refused("withdraw with an empty name", wd("", "a"), "INVALID"),
	refused("withdraw with an empty owner", wd("L", ""), "INVALID"),
	refused("withdraw without an attempt", withdrawBy("L", "a", 0), "INVALID"),
	refused("expire with an empty name", expire("", 1), "INVALID"),
	refused("expire with token 0", expire("L", 0), "INVALID"),
	refused("expire with a name over the limit", expire("L23456789", 1), "LIMIT"),
	refused("put with an empty key", put("", "v"), "INVALID"),
	refused("put with a key that is not UTF-8", put("k\xff", "v"), "INVALID"),
	refused("put with a key over the limit", put("k23456789", "v"), "LIMIT"),
	refused("put with a value over the limit", put("k", "12345"), "LIMIT"),
	refused("delete with an empty key", del(""), "INVALID"),
	refused("delete with a key over the limit", del("k23456789"), "LIMIT"),
	refused("a command without an operation", &fsmpb.Command{}, "INVALID"),
	refused("a nil command", nil, "INVALID"),
	refused("an acquire without a body", &fsmpb.Command{Op: &fsmpb.Command_Acquire{}}, "INVALID"),
	refused("a renew without a body", &fsmpb.Command{Op: &fsmpb.Command_Renew{}}, "INVALID"),
	refused("a release without a body", &fsmpb.Command{Op: &fsmpb.Command_Release{}}, "INVALID"),
	refused("a withdraw without a body", &fsmpb.Command{Op: &fsmpb.Command_Withdraw{}}, "INVALID"),
	refused("an expire without a body", &fsmpb.Command{Op: &fsmpb.Command_Expire{}}, "INVALID"),
	refused("a put without a body", &fsmpb.Command{Op: &fsmpb.Command_Put{}}, "INVALID"),
	refused("a delete without a body", &fsmpb.Command{Op: &fsmpb.Command_Delete{}}, "INVALID"),
	refused("a client id over the limit is refused, not remembered", as("c23456789", 1, put("k", "v")), "LIMIT"),
	refused("a client id that is not UTF-8 is refused", as("c\xff", 1, put("k", "v")), "INVALID"),
}

func TestValidation(t *testing.T) { runRows(t, testLimits(), validationRows) }

// "Limits (configurable, enforced, documented): lock name and key <= 1 KiB,
// value <= 1 MiB, waiters per lock and holds per cluster bounded; over a
// limit the request is refused with ResourceExhausted, nothing else is
// affected." (The queue limit is in fifoRows.)
var limitRows = []row{
	{
		name: "a lock record beyond LocksMax is refused",
		give: []step{at(100, acq("A", "a", 10, 0), acq("B", "a", 10, 0), acq("C", "a", 10, 0)), at(100, acq("L", "a", 10, 0))},
		want: want{res: "LIMIT", same: true},
	},
	{
		name: "released records count until pruned",
		give: []step{at(100, acq("A", "a", 10, 0), rel("A", "a", 0), acq("B", "a", 10, 0), acq("C", "a", 10, 0)), at(100, acq("L", "a", 10, 0))},
		want: want{res: "LIMIT", same: true},
	},
	{
		name: "a known lock at LocksMax is still served",
		give: []step{at(100, acq("A", "a", 10, 0), acq("B", "a", 10, 0), acq("L", "a", 10, 0)), at(100, acq("L", "b", 10, 50))},
		want: want{res: "QUEUED ttl=10 pos=1", lock: "a token=3 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)"},
	},
	{
		name: "a name at the limit is accepted",
		give: []step{at(100, acq("L2345678", "a2345678", 10, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", events: "granted L2345678 a2345678 token=1 nonce=1 ttl=10 acq=100"},
	},
	{
		name: "a key beyond KeysMax is refused",
		give: []step{at(100, put("a", "1"), put("b", "2")), at(100, put("c", "3"))},
		want: want{res: "LIMIT", kv: "a=1 b=2", same: true},
	},
	{
		name: "a known key at KeysMax is overwritten",
		give: []step{at(100, put("a", "1"), put("b", "2")), at(100, put("a", "9"))},
		want: want{res: "OK", kv: "a=9 b=2"},
	},
	{
		name: "a deleted key makes room",
		give: []step{at(100, put("a", "1"), put("b", "2"), del("a")), at(100, put("c", "3"))},
		want: want{res: "OK created=true", kv: "b=2 c=3"},
	},
	{
		name: "a value at the limit is accepted",
		give: []step{at(100, put("k", "1234"))},
		want: want{res: "OK created=true", kv: "k=1234"},
	},
}

func TestLimits(t *testing.T) { runRows(t, testLimits(), limitRows) }

// "a small linearizable key-value store rides along"
var kvRows = []row{
	{
		name: "put creates a key",
		give: []step{at(100, put("k", "v"))},
		want: want{res: "OK created=true", kv: "k=v"},
	},
	{
		name: "put overwrites a key",
		give: []step{at(100, put("k", "v")), at(100, put("k", "w"))},
		want: want{res: "OK", kv: "k=w"},
	},
	{
		name: "an empty value is a value",
		give: []step{at(100, put("k", ""))},
		want: want{res: "OK created=true", kv: "k="},
	},
	{
		name: "delete removes a key",
		give: []step{at(100, put("k", "v"), put("j", "v")), at(100, del("k"))},
		want: want{res: "OK", kv: "j=v"},
	},
	{
		name: "delete of a missing key is not found",
		give: []step{at(100, put("j", "v")), at(100, del("k"))},
		want: want{res: "NOT_FOUND", kv: "j=v", same: true},
	},
}

func TestKV(t *testing.T) { runRows(t, testLimits(), kvRows) }

// "Every mutating request carries (client id, request sequence); the state
// machine remembers recent results per client, so a retry after a timeout or
// a leader change is applied once. The table is bounded: per client only the
// latest results ..." (ClientsMax 2, ResultsPerClientMax 2 here.)
var idempotencyRows = []row{
	{
		name: "a retry gets the remembered result and changes nothing",
		give: []step{at(100, as("c", 1, acq("L", "a", 10, 0))), at(100, as("c", 1, acq("L", "a", 10, 0)))},
		want: want{
			res:    "OK token=1 nonce=1 ttl=10 acq=100 replayed=true",
			lock:   "a token=1 nonce=1 ttl=10 at=100 exp=110",
			client: "c@100:1=OK",
			same:   true,
		},
	},
	{
		name: "a retried release is not applied to the next holder",
		give: []step{
			at(100, as("c", 1, acq("L", "a", 10, 0)), acq("L", "b", 10, 50)),
			at(101, as("c", 2, rel("L", "a", 0))),
			at(101, as("c", 2, rel("L", "a", 0))),
		},
		want: want{
			res:    "OK token=1 next=b replayed=true",
			lock:   "b token=2 nonce=2 ttl=10 at=101 exp=111",
			client: "c@101:1=OK,2=OK",
			same:   true,
		},
	},
	{
		name: "a retry gets the first answer even if a new one would differ",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acq("L", "b", 10, 0))),
			at(100, rel("L", "a", 0)),
			at(100, as("c", 1, acq("L", "b", 10, 0))),
		},
		want: want{res: "LOCKED replayed=true", lock: "free nonce=1 released=100", client: "c@100:1=LOCKED", same: true},
	},
	{
		name: "a seq answers with its result whatever the command",
		give: []step{at(100, as("c", 1, put("k", "v"))), at(100, as("c", 1, del("k")))},
		want: want{res: "OK created=true replayed=true", kv: "k=v", client: "c@100:1=OK", same: true},
	},
	{
		name: "malformed commands are remembered too",
		give: []step{at(100, as("c", 1, acq("", "a", 10, 0)))},
		want: want{res: "INVALID", client: "c@100:1=INVALID"},
	},
	{
		name: "seq 0 is applied every time",
		give: []step{at(100, as("c", 0, put("k", "v"))), at(100, as("c", 0, put("k", "w")))},
		want: want{res: "OK", kv: "k=w"},
	},
	{
		name: "a seq older than a full memory is stale",
		give: []step{
			at(100, as("c", 1, put("a", "1")), as("c", 2, put("b", "2")), as("c", 3, put("a", "3"))),
			at(100, as("c", 1, put("a", "1"))),
		},
		want: want{res: "STALE_REQUEST", kv: "a=3 b=2", client: "c@100:2=OK,3=OK", same: true},
	},
	{
		name: "a seq older than a memory not yet full is applied",
		give: []step{at(100, as("c", 5, put("a", "1"))), at(100, as("c", 3, put("b", "2")))},
		want: want{res: "OK created=true", kv: "a=1 b=2", client: "c@100:3=OK,5=OK"},
	},
	{
		name: "a gap inside the memory is applied and the oldest forgotten",
		give: []step{at(100, as("c", 1, put("a", "1")), as("c", 3, put("a", "2"))), at(100, as("c", 2, put("b", "2")))},
		want: want{res: "OK created=true", kv: "a=2 b=2", client: "c@100:2=OK,3=OK"},
	},
	{
		name: "a new client beyond ClientsMax evicts the least recently seen",
		give: []step{at(100, as("a", 1, put("a", "1"))), at(200, as("b", 1, put("b", "1"))), at(300, as("c", 1, del("a")))},
		want: want{res: "OK", kv: "b=1", client: "b@200:1=OK c@300:1=OK"},
	},
	{
		name: "eviction breaks ties by client id, not by order",
		give: []step{at(100, as("b", 1, put("a", "1")), as("a", 1, put("b", "1"))), at(200, as("c", 1, del("a")))},
		want: want{res: "OK", kv: "b=1", client: "b@100:1=OK c@200:1=OK"},
	},
	{
		name: "a command marks its client seen",
		give: []step{
			at(100, as("a", 1, put("a", "1"))), at(200, as("b", 1, put("b", "1"))),
			at(300, as("a", 2, put("a", "2"))), at(400, as("c", 1, del("b"))),
		},
		want: want{res: "OK", kv: "a=2", client: "a@300:1=OK,2=OK c@400:1=OK"},
	},
	{
		name: "a retry does not mark its client seen",
		give: []step{at(100, as("a", 1, put("a", "1"))), at(200, as("b", 1, put("b", "1"))), at(300, as("a", 1, put("a", "1")))},
		want: want{res: "OK created=true replayed=true", kv: "a=1 b=1", client: "a@100:1=OK b@200:1=OK"},
	},
	{
		name: "expire is never deduplicated",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, as("c", 1, expire("L", 1)))},
		want: want{res: "OK token=1", events: "expired L a token=1 nonce=1 ttl=10 acq=100", lock: "free nonce=1 released=110"},
	},
	{
		name: "leader start is never deduplicated",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, as("c", 1, leaderStart())), at(108, as("c", 1, leaderStart()))},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=118"},
	},
}

func TestIdempotency(t *testing.T) { runRows(t, testLimits(), idempotencyRows) }

// Results the client acknowledged are forgotten, so the memory holds only
// requests still in flight; a seq below the mark is never applied again.
var acknowledgeRows = []row{
	{
		name: "acknowledged results are forgotten",
		give: []step{at(100, acked("c", 1, 0, put("a", "1")), acked("c", 2, 1, put("b", "2")), acked("c", 3, 3, put("a", "3")))},
		want: want{res: "OK created=true; OK created=true; OK", kv: "a=3 b=2", client: "c@100:3=OK"},
	},
	{
		name: "an acknowledged seq is refused, not applied again",
		give: []step{at(100, acked("c", 1, 0, put("a", "1")), acked("c", 2, 2, put("a", "2"))), at(100, acked("c", 1, 0, put("a", "1")))},
		want: want{res: "STALE_REQUEST", kv: "a=2", client: "c@100:2=OK", same: true},
	},
	{
		name: "an unacknowledged retry is answered from memory while newer ones pass",
		give: []step{
			at(100, acked("c", 1, 0, put("a", "1")), acked("c", 2, 1, put("b", "1"))),
			at(100, acked("c", 1, 0, put("a", "1"))),
		},
		want: want{res: "OK created=true replayed=true", kv: "a=1 b=1", client: "c@100:1=OK,2=OK", same: true},
	},
	{
		name: "a mark above the request's own seq only acknowledges up to it",
		give: []step{at(100, acked("c", 1, 0, put("a", "1")), acked("c", 2, 9, put("b", "2")))},
		want: want{res: "OK created=true; OK created=true", kv: "a=1 b=2", client: "c@100:2=OK"},
	},
}

func TestAcknowledge(t *testing.T) { runRows(t, testLimits(), acknowledgeRows) }

// Past ResultsPerClientMax the oldest answer that is not QUEUED is evicted
// first: a queued acquire is the request likely to be retried long after
// it was sent. An evicted seq is refused, never applied again.
var evictionRows = []row{
	{
		name: "a queued acquire outlives newer answers",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acq("L", "b", 10, 50)), as("c", 2, put("k", "1")), as("c", 3, put("k", "2"))),
			at(100, as("c", 1, acq("L", "b", 10, 50))),
		},
		want: want{res: "QUEUED ttl=10 pos=1 replayed=true", kv: "k=2", client: "c@100:1=QUEUED,3=OK",
			lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", same: true},
	},
	{
		name: "an evicted answer's seq is refused",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acq("L", "b", 10, 50)), as("c", 2, put("k", "1")), as("c", 3, put("k", "2"))),
			at(100, as("c", 2, put("k", "1"))),
		},
		want: want{res: "STALE_REQUEST", kv: "k=2", client: "c@100:1=QUEUED,3=OK",
			lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", same: true},
	},
}

func TestEviction(t *testing.T) { runRows(t, testLimits(), evictionRows) }

// "The table is bounded: ... clients idle past a horizon (in log time) are
// forgotten." Released lock records are pruned likewise, so LocksMax bounds
// what is in use, not every name ever used.
var pruneRows = []row{
	{
		name: "a client idle over ClientIdleMax is forgotten",
		give: []step{at(1*minute, as("c", 1, put("k", "v"))), at(11*minute + 1)},
		want: want{kv: "k=v"},
	},
	{
		name: "a client idle exactly ClientIdleMax is kept",
		give: []step{at(1*minute, as("c", 1, put("k", "v"))), at(11 * minute)},
		want: want{kv: "k=v", client: "c@60000000000:1=OK"},
	},
	{
		name: "pruning waits a PruneInterval after the last pass",
		give: []step{at(1*minute, as("c", 1, put("k", "v"))), at(11 * minute), at(12*minute - 1)},
		want: want{kv: "k=v", client: "c@60000000000:1=OK"},
	},
	{
		name: "pruning runs once a PruneInterval has passed",
		give: []step{at(1*minute, as("c", 1, put("k", "v"))), at(11 * minute), at(12 * minute)},
		want: want{kv: "k=v"},
	},
	{
		name: "a released lock idle over LockIdleMax is forgotten",
		give: []step{at(1*minute, acq("L", "a", 10, 0), rel("L", "a", 0)), at(61*minute + 1)},
		want: want{},
	},
	{
		name: "a released lock idle exactly LockIdleMax is kept",
		give: []step{at(1*minute, acq("L", "a", 10, 0), rel("L", "a", 0)), at(61 * minute)},
		want: want{lock: "free nonce=1 released=60000000000"},
	},
	{
		name: "a held lock is never pruned, even with its lease passed",
		give: []step{at(1*minute, acq("L", "a", 10, 0)), at(200 * minute)},
		want: want{lock: "a token=1 nonce=1 ttl=10 at=60000000000 exp=60000000010"},
	},
	{
		name: "a pruned lock starts its nonce again, but not its token",
		give: []step{at(1*minute, acq("L", "a", 10, 0), rel("L", "a", 0)), at(62*minute, acq("L", "b", 10, 0))},
		want: want{
			res:    "OK token=2 nonce=1 ttl=10 acq=3720000000000",
			events: "granted L b token=2 nonce=1 ttl=10 acq=3720000000000",
			lock:   "b token=2 nonce=1 ttl=10 at=3720000000000 exp=3720000000010",
		},
	},
	{
		name: "pruning makes room under LocksMax",
		give: []step{
			at(1*minute, acq("A", "a", 10, 0), acq("B", "a", 10, 0), acq("C", "a", 10, 0), rel("C", "a", 0)),
			at(62*minute, acq("L", "b", 10, 0)),
		},
		want: want{
			res:    "OK token=4 nonce=1 ttl=10 acq=3720000000000",
			events: "granted L b token=4 nonce=1 ttl=10 acq=3720000000000",
			lock:   "b token=4 nonce=1 ttl=10 at=3720000000000 exp=3720000000010",
		},
	},
}

func TestPrune(t *testing.T) { runRows(t, testLimits(), pruneRows) }
