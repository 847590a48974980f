package fsm

import "testing"

// "Waiters are served strictly in the order their requests were applied ...
// Each waiter has a deadline ...; a waiter past its deadline is dropped and is
// never granted. ... A repeated Acquire by a queued owner keeps its place and
// extends its deadline."
var fifoRows = []row{
	{
		name: "an acquirer that will not wait is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, acq("L", "b", 10, 0))},
		want: want{res: "LOCKED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "waiters queue in the order applied",
		give: []step{at(100, acq("L", "a", 10, 0)), at(101, acq("L", "b", 10, 50), acq("L", "c", 20, 50))},
		want: want{
			res:  "QUEUED ttl=10 pos=1; QUEUED ttl=20 pos=2",
			lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=151),c(ttl=20,dl=151)",
		},
	},
	{
		name: "a release serves the first waiter with its own ttl",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 30, 50), acq("L", "c", 20, 50)), at(102, rel("L", "a", 0))},
		want: want{
			res:    "OK token=1 next=b",
			events: "released L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=30 acq=102",
			lock:   "b token=2 nonce=2 ttl=30 at=102 exp=132 q=c(ttl=20,dl=150)",
		},
	},
	{
		name: "a waiter past its deadline is dropped, never granted",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(106, rel("L", "a", 0))},
		want: want{
			res:    "OK token=1 next=c",
			events: "released L a token=1 nonce=1 ttl=10 acq=100; granted L c token=2 nonce=2 ttl=10 acq=106",
			lock:   "c token=2 nonce=2 ttl=10 at=106 exp=116",
		},
	},
	{
		name: "a waiter at its deadline is still served",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(105, rel("L", "a", 0))},
		want: want{
			res:    "OK token=1 next=b",
			events: "released L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=105",
			lock:   "b token=2 nonce=2 ttl=10 at=105 exp=115 q=c(ttl=10,dl=150)",
		},
	},
	{
		name: "with no live waiter a release frees the lock",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5)), at(106, rel("L", "a", 0))},
		want: want{
			res:    "OK token=1",
			events: "released L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=106",
		},
	},
	{
		name: "a queued owner keeps its place, extends its deadline and sets its ttl",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(102, acq("L", "b", 30, 80))},
		want: want{
			res:  "QUEUED ttl=30 pos=1",
			lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=30,dl=182),c(ttl=10,dl=150)",
		},
	},
	{
		name: "a shorter wait never shortens a deadline",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5)), at(102, acq("L", "b", 10, 1))},
		want: want{res: "QUEUED ttl=10 pos=1", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=105)"},
	},
	{
		name: "a queued owner that will not wait is refused and keeps its place",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(100, acq("L", "b", 10, 0))},
		want: want{res: "LOCKED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", same: true},
	},
	{
		name: "a full queue refuses a newcomer",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), acq("L", "c", 10, 50)), at(100, acq("L", "d", 10, 50))},
		want: want{
			res:  "LIMIT",
			lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150),c(ttl=10,dl=150)",
			same: true,
		},
	},
	{
		name: "a full queue still takes a queued owner's repeat",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), acq("L", "c", 10, 50)), at(100, acq("L", "c", 10, 60))},
		want: want{res: "QUEUED ttl=10 pos=2", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150),c(ttl=10,dl=160)"},
	},
	{
		name: "dead waiters make room in a full queue",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(106, acq("L", "d", 10, 50))},
		want: want{res: "QUEUED ttl=10 pos=2", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=c(ttl=10,dl=150),d(ttl=10,dl=156)"},
	},
	{
		name: "a dead waiter that asks again goes to the back",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5), acq("L", "c", 10, 50)), at(106, acq("L", "b", 10, 50))},
		want: want{res: "QUEUED ttl=10 pos=2", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=c(ttl=10,dl=150),b(ttl=10,dl=156)"},
	},
}

func TestFIFOQueue(t *testing.T) { runRows(t, testLimits(), fifoRows) }

// "A waiter that gives up withdraws: the withdrawal removes it from the
// queue, or releases the lock if a grant raced with its timeout, so no lock
// is ever left with an owner who stopped waiting for it."
var withdrawRows = []row{
	{
		name: "a queued waiter leaves the queue",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), acq("L", "c", 10, 50)), at(101, wd("L", "b"))},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=c(ttl=10,dl=150)"},
	},
	{
		name: "a dead waiter leaves the queue",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 5)), at(106, wd("L", "b"))},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110"},
	},
	{
		name: "a waiter granted before it gave up releases the lock",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(101, rel("L", "a", 0)), at(102, wd("L", "b"))},
		want: want{
			res:    "OK token=2 released=true",
			events: "released L b token=2 nonce=2 ttl=10 acq=101",
			lock:   "free nonce=2 released=102",
		},
	},
	{
		name: "a release on withdrawal hands the lock on",
		give: []step{
			at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), acq("L", "c", 10, 50)),
			at(101, rel("L", "a", 0)),
			at(102, wd("L", "b")),
		},
		want: want{
			res:    "OK token=2 next=c released=true",
			events: "released L b token=2 nonce=2 ttl=10 acq=101; granted L c token=3 nonce=3 ttl=10 acq=102",
			lock:   "c token=3 nonce=3 ttl=10 at=102 exp=112",
		},
	},
	{
		name: "a waiter handed a passed lease releases it at once",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(110, wd("L", "b"))},
		want: want{
			res: "OK token=2 released=true",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=110; " +
				"released L b token=2 nonce=2 ttl=10 acq=110",
			lock: "free nonce=2 released=110",
		},
	},
	{
		name: "a holder whose lease passed ends it and is ignored",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, wd("L", "a"))},
		want: want{
			res:    "IGNORED",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=110",
		},
	},
	{
		name: "a stranger's withdrawal is ignored",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, wd("L", "z"))},
		want: want{res: "IGNORED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "a withdrawal from an unknown lock is ignored",
		give: []step{at(100), at(100, wd("L", "a"))},
		want: want{res: "IGNORED", same: true},
	},
}

func TestWithdraw(t *testing.T) { runRows(t, testLimits(), withdrawRows) }

// A call that gives up withdraws only its own claim: the wait (or the hold
// granted from it, or at once) ends only when no call still claims it. A
// holder's refresh claims the hold too, so neither its failure nor that of
// the call the hold was granted to ends a hold another call was told it
// has; a retried request claims the wait it was queued in.
var attemptRows = []row{
	{
		name: "a failed refresh by the holder leaves the hold",
		give: []step{at(100, acqBy("L", "a", 10, 50, 1)), at(101, acqBy("L", "a", 10, 50, 2)), at(101, withdrawBy("L", "a", 2))},
		want: want{res: "OK token=1", lock: "a token=1 nonce=1 ttl=10 at=100 exp=111"},
	},
	{
		// The call the hold was granted to gave up while a second call of
		// the same owner was told it holds the lock.
		name: "the granted call leaving keeps a hold a refresh was told it has",
		give: []step{
			at(100, acq("L", "x", 10, 0), acqBy("L", "a", 10, 50, 1)), at(101, rel("L", "x", 0)),
			at(102, acqBy("L", "a", 10, 50, 2)), at(103, withdrawBy("L", "a", 1)),
		},
		want: want{res: "OK token=2", lock: "a token=2 nonce=2 ttl=10 at=101 exp=112"},
	},
	{
		name: "a hold ends when the granted call and its refresh both leave",
		give: []step{
			at(100, acqBy("L", "a", 10, 50, 1)), at(101, acqBy("L", "a", 10, 50, 2)),
			at(102, withdrawBy("L", "a", 1), withdrawBy("L", "a", 2)),
		},
		want: want{res: "OK token=1; OK token=1 released=true", events: "released L a token=1 nonce=1 ttl=10 acq=100",
			lock: "free nonce=1 released=102"},
	},
	{
		name: "a caller gone right after an immediate grant releases it",
		give: []step{at(100, acqBy("L", "a", 10, 50, 1)), at(101, withdrawBy("L", "a", 1))},
		want: want{res: "OK token=1 released=true", events: "released L a token=1 nonce=1 ttl=10 acq=100", lock: "free nonce=1 released=101"},
	},
	{
		name: "another call's withdrawal leaves the wait alone",
		give: []step{at(100, acq("L", "a", 10, 0), acqBy("L", "b", 10, 50, 1)), at(100, withdrawBy("L", "b", 2))},
		want: want{res: "IGNORED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", same: true},
	},
	{
		name: "a wait claimed by two calls stays when one leaves",
		give: []step{at(100, acq("L", "a", 10, 0), acqBy("L", "b", 10, 50, 1)), at(101, acqBy("L", "b", 10, 50, 2)), at(101, withdrawBy("L", "b", 1))},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=151)"},
	},
	{
		name: "a wait leaves the queue when its last call leaves",
		give: []step{
			at(100, acq("L", "a", 10, 0), acqBy("L", "b", 10, 50, 1)), at(101, acqBy("L", "b", 10, 50, 2)),
			at(101, withdrawBy("L", "b", 1), withdrawBy("L", "b", 2)),
		},
		want: want{res: "OK; OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110"},
	},
	{
		name: "a hold granted to two waiting calls survives one leaving",
		give: []step{
			at(100, acq("L", "a", 10, 0), acqBy("L", "b", 10, 50, 1)), at(101, acqBy("L", "b", 10, 50, 2)),
			at(102, rel("L", "a", 0)), at(102, withdrawBy("L", "b", 2)),
		},
		want: want{res: "OK token=2", lock: "b token=2 nonce=2 ttl=10 at=102 exp=112"},
	},
	{
		// The client listens only to its latest attempt.
		name: "a retried acquire takes the wait's claim over from the first call",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, as("c", 1, acqBy("L", "b", 10, 50, 2))),
			at(101, withdrawBy("L", "b", 1)),
		},
		want: want{res: "IGNORED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", client: "c@100:1=QUEUED", same: true},
	},
	{
		// Its wait ended (WAIT_TIMEOUT) while the first call, on a node the
		// client no longer hears from, never withdrew: nothing is left
		// queued to be granted to an owner that was told it waits nowhere.
		name: "a retry that gives up withdraws its request's wait",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, as("c", 1, acqBy("L", "b", 10, 50, 2))),
			at(102, withdrawBy("L", "b", 2)),
		},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", client: "c@100:1=QUEUED"},
	},
	{
		// Found by the nemesis (in-process seed 35705): the client's first
		// send reached the cluster only after its retry was applied.
		name: "an earlier send applied after the retry claims nothing",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, try(2, acqBy("L", "b", 10, 50, 2)))),
			at(101, as("c", 1, try(1, acqBy("L", "b", 10, 50, 1)))),
			at(101, withdrawBy("L", "b", 1)),
		},
		want: want{res: "IGNORED", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110 q=b(ttl=10,dl=150)", client: "c@100:1=QUEUED", same: true},
	},
	{
		name: "a retry's wait ends: its withdrawal leaves nothing an earlier late send could keep",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, try(2, acqBy("L", "b", 10, 50, 2)))),
			at(101, as("c", 1, try(1, acqBy("L", "b", 10, 50, 1)))),
			at(102, withdrawBy("L", "b", 2)),
			at(103, rel("L", "a", 0)),
		},
		want: want{res: "OK token=1", events: "released L a token=1 nonce=1 ttl=10 acq=100",
			lock: "free nonce=1 released=103", client: "c@100:1=QUEUED"},
	},
	{
		name: "a later send takes the claim over from an earlier one",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, try(1, acqBy("L", "b", 10, 50, 1)))),
			at(101, as("c", 1, try(2, acqBy("L", "b", 10, 50, 2)))),
			at(102, withdrawBy("L", "b", 2)),
		},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", client: "c@100:1=QUEUED"},
	},
	{
		name: "a retried acquire claims the hold granted from its wait",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, rel("L", "a", 0)),
			at(102, as("c", 1, acqBy("L", "b", 10, 50, 2))),
			at(103, withdrawBy("L", "b", 1), withdrawBy("L", "b", 2)),
		},
		want: want{
			res:    "IGNORED; OK token=2 released=true",
			events: "released L b token=2 nonce=2 ttl=10 acq=101",
			lock:   "free nonce=2 released=103",
			client: "c@100:1=QUEUED",
		},
	},
	{
		name: "a stale replay of the first call does not end the retry's hold",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, as("c", 1, acqBy("L", "b", 10, 50, 2)), withdrawBy("L", "b", 1), as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(102, rel("L", "a", 0)),
			at(102, withdrawBy("L", "b", 1)),
		},
		want: want{res: "IGNORED", lock: "b token=2 nonce=2 ttl=10 at=102 exp=112", client: "c@100:1=QUEUED", same: true},
	},
	{
		name: "a retried acquire claims the hold it was granted at once",
		give: []step{
			at(100, as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, as("c", 1, acqBy("L", "b", 10, 50, 2))),
			at(101, withdrawBy("L", "b", 1)),
		},
		want: want{res: "IGNORED", lock: "b token=1 nonce=1 ttl=10 at=100 exp=110", client: "c@100:1=OK", same: true},
	},
	{
		name: "a retry does not claim a later hold of the owner",
		give: []step{
			at(100, as("c", 1, acqBy("L", "b", 10, 50, 1))),
			at(101, withdrawBy("L", "b", 1), acqBy("L", "b", 10, 50, 3)),
			at(102, as("c", 1, acqBy("L", "b", 10, 50, 2))),
			at(102, withdrawBy("L", "b", 2)),
		},
		want: want{res: "IGNORED", lock: "b token=2 nonce=2 ttl=10 at=101 exp=111", client: "c@100:1=OK", same: true},
	},
	{
		name: "only a queued answer is claimed by a retry",
		give: []step{
			at(100, acq("L", "a", 10, 0), as("c", 1, acqBy("L", "b", 10, 0, 1)), acqBy("L", "b", 10, 50, 2)),
			at(101, as("c", 1, acqBy("L", "b", 10, 0, 3))),
			at(101, withdrawBy("L", "b", 2)),
		},
		want: want{res: "OK", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", client: "c@100:1=LOCKED"},
	},
}

func TestWithdrawAttempts(t *testing.T) { runRows(t, testLimits(), attemptRows) }

// "Acquire by the current owner returns the same token and refreshes the
// lease (this is also what makes a retried Acquire safe)."
var reentrancyRows = []row{
	{
		name: "same token, lease from now, new ttl, no event",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, acq("L", "a", 20, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=20 acq=100", lock: "a token=1 nonce=1 ttl=20 at=100 exp=125"},
	},
	{
		name: "a shorter ttl shortens the lease",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, acq("L", "a", 3, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=3 acq=100", lock: "a token=1 nonce=1 ttl=3 at=100 exp=108"},
	},
	{
		name: "an acquire that would wait is reentrant, not queued",
		give: []step{at(100, acq("L", "a", 10, 0)), at(105, acq("L", "a", 10, 50))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=115"},
	},
	{
		name: "reentry leaves the queue alone",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(105, acq("L", "a", 10, 0))},
		want: want{res: "OK token=1 nonce=1 ttl=10 acq=100", lock: "a token=1 nonce=1 ttl=10 at=100 exp=115 q=b(ttl=10,dl=150)"},
	},
}

func TestReentrancy(t *testing.T) { runRows(t, testLimits(), reentrancyRows) }

// "Only the owner (and, if given, the matching token) may release; otherwise
// a typed error says why (not held, held by someone else, already expired).
// A release grants the lock to the next waiter in the same state-machine
// step."
var releaseRows = []row{
	{
		name: "the owner releases",
		give: []step{at(100, acq("L", "a", 10, 0)), at(101, rel("L", "a", 0))},
		want: want{res: "OK token=1", events: "released L a token=1 nonce=1 ttl=10 acq=100", lock: "free nonce=1 released=101"},
	},
	{
		name: "the owner releases with its token",
		give: []step{at(100, acq("L", "a", 10, 0)), at(101, rel("L", "a", 1))},
		want: want{res: "OK token=1", events: "released L a token=1 nonce=1 ttl=10 acq=100", lock: "free nonce=1 released=101"},
	},
	{
		name: "the owner with another token is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, rel("L", "a", 2))},
		want: want{res: "TOKEN_MISMATCH", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "another owner is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, rel("L", "b", 0))},
		want: want{res: "HELD_BY_OTHER", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "another owner with the right token is refused",
		give: []step{at(100, acq("L", "a", 10, 0)), at(100, rel("L", "b", 1))},
		want: want{res: "HELD_BY_OTHER", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110", same: true},
	},
	{
		name: "an unknown lock is not held",
		give: []step{at(100), at(100, rel("L", "a", 0))},
		want: want{res: "NOT_HELD", same: true},
	},
	{
		name: "a released lock is not held",
		give: []step{at(100, acq("L", "a", 10, 0), rel("L", "a", 0)), at(100, rel("L", "a", 0))},
		want: want{res: "NOT_HELD", lock: "free nonce=1 released=100", same: true},
	},
	{
		name: "a passed lease is not held, and ends",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, rel("L", "a", 1))},
		want: want{
			res:    "NOT_HELD",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100",
			lock:   "free nonce=1 released=110",
		},
	},
	{
		name: "a passed lease ends and goes to the first live waiter",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)), at(110, rel("L", "a", 0))},
		want: want{
			res:    "NOT_HELD next=b",
			events: "expired L a token=1 nonce=1 ttl=10 acq=100; granted L b token=2 nonce=2 ttl=10 acq=110",
			lock:   "b token=2 nonce=2 ttl=10 at=110 exp=120",
		},
	},
	{
		name: "another owner of a passed lease is refused as such, and nothing ends",
		give: []step{at(100, acq("L", "a", 10, 0)), at(110, rel("L", "b", 0))},
		want: want{res: "HELD_BY_OTHER", lock: "a token=1 nonce=1 ttl=10 at=100 exp=110"},
	},
	{
		name: "a release grants the next waiter in the same step",
		give: []step{at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50), rel("L", "a", 0))},
		want: want{
			res: "OK token=1 nonce=1 ttl=10 acq=100; QUEUED ttl=10 pos=1; OK token=1 next=b",
			events: "granted L a token=1 nonce=1 ttl=10 acq=100; released L a token=1 nonce=1 ttl=10 acq=100; " +
				"granted L b token=2 nonce=2 ttl=10 acq=100",
			lock: "b token=2 nonce=2 ttl=10 at=100 exp=110",
		},
	},
}

func TestRelease(t *testing.T) { runRows(t, testLimits(), releaseRows) }
