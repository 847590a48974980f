// Package fsm is dlock's replicated state machine: locks with leases and FIFO
// queues, fencing tokens, a small KV store and the idempotency table. It is a
// pure function of the Raft log: it reads no clock, draws no random number,
// never depends on map order, starts no goroutine and does no I/O beyond the
// io.Writer and io.Reader handed to it. Every replica that applies the same
// entries returns the same results and holds the same bytes in its snapshot.
//
// # Model
//
// A log entry (fsmpb.Entry) is a batch of commands stamped with one cluster
// time. Cluster time, Now(), is max(Now(), entry.now_nanos): it never goes
// back, and every decision (lease passed? waiter dead? client idle?) uses it.
// The entry's wall clock is only copied into grants for display.
//
// A lock record holds at most one hold (owner, fencing token, TTL, lease
// deadline) and, while held, a FIFO queue of waiters, each with a deadline.
// Every grant takes the next value of one cluster-wide counter as its token,
// so tokens strictly grow per lock and across the cluster, across failovers,
// restarts and restores; each lock also counts its own grants (nonce).
//
// Leases are lower bounds. A hold whose deadline is <= Now() has lapsed: it
// is dead. It is ended (reported as EventExpired, the lock handed to the
// first live waiter) by the leader's Expire(name, token), or earlier by any
// Acquire, Renew, Release or Withdraw that touches the lock. A waiter whose
// deadline is < Now() is dead: it is dropped before the queue is served or
// grown, and is never granted. Release of a lapsed hold by its owner answers
// NOT_HELD and ends it; Renew of a lapsed hold answers NOT_HELD and ends it.
//
// A command carrying (client id, seq) is applied once: its result is
// remembered (the latest ResultsPerClientMax per client, ClientsMax clients),
// and a retry gets the remembered result back and changes nothing. Expire and
// LeaderStart are never deduplicated. Every PruneInterval of cluster time,
// clients unseen for ClientIdleMax and released lock records idle for
// LockIdleMax are forgotten, except clients whose queued acquire still
// waits (or holds the lock it waited for): see State.waiting.
//
// Access control (acl.go): principals, their rules and the SHA-256 of their
// tokens are replicated state too. A command that names a principal
// (Command.principal, set by nodes with access control on) applies only if
// one of the principal's rules permits it; otherwise it gets DENIED (or, if
// it is a retry of a command applied earlier, that command's remembered
// result) and changes nothing.
//
// Malformed commands get INVALID and commands over a Limits ceiling get
// LIMIT; neither changes anything. A broken invariant (a token that does not
// grow, a duplicate waiter, a holder also queued) is a bug: it panics, naming
// the invariant and the values.
//
// # Duties of the caller (the node layer)
//
//  1. Build the State with New(limits), or Restore(snapshot, limits). Every
//     replica must use the same Limits.
//  2. Serialize all access: State is not safe for concurrent use. Hold one
//     lock around Apply, reads (Lock, Locks, Get, Keys, NextExpiry, Expired,
//     Counts) and WriteSnapshot or Clone.
//  3. Apply committed entries in log order with ApplyBytes (or Apply). Hand
//     Output.Results back to the proposers, one per command in order, and
//     Output.Events to whatever wakes blocked Acquires. A QUEUED result,
//     fresh or remembered, may be overtaken by a grant in a later entry:
//     check Lock(name) before blocking on an event.
//  4. As a new leader, wait until the log is applied (raft.Barrier), then
//     commit a LeaderStart before serving: it re-arms every live lease to at
//     least its full TTL from that entry's time.
//  5. As leader, after every apply re-arm a timer on NextExpiry (renewals
//     and reentrant Acquires move deadlines without an event), and when it
//     fires propose Expire(name, token) for each hold Expired returns for
//     your estimate of cluster time. A stale leader's Expire is IGNORED, so
//     this is always safe.
//  6. Stamp every entry with cluster time: the Now() of the state when you
//     became leader plus your monotonic clock since, never a wall clock.
//  7. For a Raft snapshot, run WriteSnapshot into a buffer under the lock and
//     write the bytes out after releasing it. Encoding is faster than Clone
//     (BenchmarkWriteSnapshot, BenchmarkClone), so encoding a copy outside
//     the lock would make writes wait longer, not shorter. Restore verifies
//     everything it reads; on error keep the old State.
//
// WARNING: results and events depend on cluster time only. If leaders stamp
// entries from wall clocks, a clock jump expires leases early.
package fsm
