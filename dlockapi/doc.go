// Package dlockapi is the seed-compatible client of dlock: the same names and signatures as the seed's
// dlock_api package (DLockRaftClientAPI, AcquireDLock, QueryDLock, ReleaseDLock, PutState, GetState,
// DelState), so that seed programs and tests port by changing an import path. New code should use
// package client, which has contexts, typed errors, fencing-token handles and automatic lease renewal.
//
// Compatibility. Every method takes the node's "ip:port" client address first and an optional timeout
// in milliseconds last (default 2500); results are a bool or a value, as in the seed. Any node serves
// any call, so the address may be any node's. Locks are held by the handler's ClientId, whichever node
// was used to take them: acquire through one node and release through another.
//
// Differences from the seed, all on purpose:
//   - AcquireDLock returns true only when the cluster granted the lock to this ClientId (a real grant,
//     with a fencing token). The seed's client could report success without owning the lock.
//   - A preset client id given to NewDLockRaftClientAPI is used as is; without one, a KSUID-formatted
//     id is generated, as the seed documents.
//   - A handler is safe for concurrent use by many goroutines. It keeps one connection per address,
//     created on first use; call Close to release them.
//   - AcquireDLock blocks at most its timeout plus one second (the margin for the cluster's answer);
//     the other calls at most their timeout.
//   - Leases are not renewed: a lock acquired with expire ms is released by the cluster expire ms after
//     the grant unless released first, as in the seed.
//   - Every write is retried after a lost connection with the same request id, so the cluster applies
//     it once. A call that returns false because the node did not answer in time may still have taken
//     effect (query to find out).
package dlockapi
