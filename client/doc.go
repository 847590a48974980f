// Package client is the Go client of dlock, a Raft-replicated lock service: named locks with leases,
// fencing tokens and a FIFO wait queue, plus a small linearizable key-value store.
//
// A user's duties, in order:
//
//  1. Create one Client per process with New, giving it the client endpoints of some or all nodes.
//     Any node serves any request; the client sticks to the endpoint that answered last and moves to
//     the next one when an endpoint is unavailable, the cluster has no leader, or an attempt times out.
//     New does not connect, so it succeeds while the cluster is down.
//
//  2. Take a lock with Acquire, which waits in the lock's FIFO queue, or TryAcquire, which does not.
//     Bound the wait with the context's deadline or WithWait; Acquire ends its wait shortly before the
//     deadline so that the answer arrives in time. Each Acquire uses a fresh owner id, so goroutines
//     sharing the Client exclude each other.
//
//  3. While you hold the lock, pass Lock.Token to whatever the lock protects: the fencing token strictly
//     grows with every grant, so a resource that remembers the largest token it has seen can refuse a
//     holder whose lease has passed without its knowing (a long GC pause, a partition).
//
//  4. Watch Lock.Lost. The handle renews its lease every TTL/3; the channel closes when the client can
//     no longer prove it holds the lock: a renewal was refused, or no renewal succeeded before the lease
//     ran out as the client counts it (from the send time of the request that granted or last renewed
//     it, on the local monotonic clock, so never later than the cluster's count). Lock.Err says why.
//     WARNING: stop touching the protected resource as soon as Lost closes; the cluster may already have
//     granted the lock to someone else.
//
//  5. Release the lock with Lock.Release when done, which hands it to the next waiter at once. A lock
//     you never release is freed by the cluster when its lease runs out.
//
//  6. Close the Client when the process is done with it. Close stops every handle's renewer; it does
//     not release locks (their leases run out), so release first when a prompt hand-over matters.
//
// # Ambiguous outcomes
//
// Every write (Acquire, Renew, Release, Put, Delete) carries the client id and a sequence number, and
// every retry of one call (after an unavailable endpoint, a lost leader or an attempt timeout) sends the
// same pair, so the cluster applies the call once and answers a retry with the first attempt's result.
// But a write that fails with ErrUnavailable or a context error may still have been applied: the reply
// was lost, not the request. Read the state (Query, Get) to find out, or repeat the call when it is
// harmless to do so (Release of a handle resends the same header; Put of the same value).
// ErrStaleRequest means the cluster has forgotten a request too old to deduplicate; it too may have
// been applied.
//
// # Access control
//
// A cluster whose nodes set auth.enabled wants credentials: WithToken (sent only over TLS unless
// AllowInsecureToken), or a TLS client certificate. Calls no rule of the principal permits fail with
// ErrPermissionDenied; calls without valid credentials with ErrUnauthenticated; neither changed
// anything. Bootstrap, CreateToken, Grant and the other access control calls manage principals; see
// docs/security.md (Access control).
//
// # Errors
//
// Errors wrap one of the sentinels (ErrLocked, ErrNotHeld, ...); test them with errors.Is. The message
// keeps the cluster's explanation. An error the cluster sent also carries its gRPC status, for
// status.FromError.
//
// # Concurrency
//
// A Client and its Lock handles are safe for concurrent use. Each Lock with auto-renewal owns one
// goroutine, stopped by Release, by the end of the hold, or by Client.Close, which waits for it.
package client
