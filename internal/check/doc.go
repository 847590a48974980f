// Package check decides whether a recorded history of client operations
// (internal/history) is one a correct dlock cluster could have produced.
// Each checker returns a Result listing violations; a checker that cannot
// fail proves nothing, so each has tests with histories it must reject.
//
// # Checkers and what they prove
//
//  1. KV: put, get and delete are linearizable per key (porcupine). An
//     unanswered op may take effect once at any moment after its invoke,
//     or never (the client retries with dedup, never applying twice).
//  2. Locks: acquire, renew, release and query are linearizable per lock
//     against a model of one lock (holder, token, grant count). Tokens of
//     successive grants grow; reentrant acquires return the same token;
//     refusals happen only when the lock is held by someone else (or not
//     held by the caller with that token); queries match exactly.
//  3. Mutex: holds of one lock, as the clients saw them, never overlap,
//     their tokens grow in time order, and a fenced Resource written to
//     inside a hold accepts the write.
//  4. FIFO: a waiter known to be queued is not overtaken, while still
//     inside its wait, by an owner that asked later.
//  5. Leases: no acknowledged hold ends before its lease (a lower bound
//     counted from the request's invoke) unless its owner released it.
//  6. Durability: what survives a full restart agrees with the history.
//
// Run applies them all and returns a Report.
//
// # Assumptions
//
// Times are offsets on one monotonic clock shared by all clients, and the
// cluster's nodes run their clocks at the same rate (one machine): cluster
// time never runs faster than the recording's clock, so a lease or wait of
// d that began after t lasts past t+d on it.
//
// Every lock name and key is fresh when the recording starts, and the run
// is shorter than fsm.LockIdleMax (released lock records are then never
// pruned, and a grant count never restarts).
//
// A client runs one op at a time and records the op's first invoke and its
// final return. OK acquires record ResToken (and ResNonce, or 0 if the
// client does not report it: 0 is never checked). An acquire records the
// wait it sent to the cluster, after any cut the client library made to fit
// its context. Put values are unique per key. Refused is definite: nothing
// happened, with two exceptions the checkers model, because the server
// does them: an acquire with a wait that is refused may have been granted
// and withdrawn (its grant raced the end of the wait, or the withdrawal is
// still to come), and an unanswered acquire's grant may be withdrawn at any
// time. Such a never-acknowledged hold is a "ghost": it uses a token and a
// grant, blocks others while it lasts, and may end at any moment.
//
// Locks assumes leases never expire during the run (Config.LongLeases):
// the workload must ask for TTLs longer than the run. Mutex, FIFO and
// Leases hold for any TTLs. Mutex and Leases read a hold's lease from its
// acknowledgements; an unanswered acquire or renew by the owner counts as
// possibly shortening it to its TTL.
//
// FIFO can only judge acquires whose Op.Queued the workload set, and only
// as well as that time is right: the workload must set it only when it is
// sure the cluster had queued that acquire (a query's waiter count alone
// does not say whose waits it counts).
//
// A refused acquire is not taken as evidence that the caller's earlier hold
// ended: an acquire can be refused for reasons other than the lock (a full
// queue, a bad argument).
//
// # Cost
//
// The linearizability checks are NP-hard in general. Partitioning by key
// and lock, dropping ops that cannot matter (unanswered reads and renews,
// refused puts, unanswered puts nobody read), pinning unanswered puts that
// someone read, and letting unanswered ops be placed only to take effect
// (see endOfHistory) keep them fast: all six checkers take about 30 ms on
// a 2,000-op history over 20 locks and 20 keys by 16 clients with 5% of the
// ops unanswered, legal or not. What grows the search is unanswered
// acquires and releases, which stay pending to the end of the history:
// past a few hundred ops and a dozen or two such ops in one lock, an
// illegal history can take the search to its timeout. The checkers stop at
// LinOptions.Timeout and report TimedOut, which is neither a pass nor a
// failure.
package check
