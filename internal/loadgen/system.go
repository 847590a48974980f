package loadgen

import (
	"context"
	"time"
)

// A System is a lock service under load: dlock, or a peer such as etcd or ZooKeeper driven through its
// own lock recipe. Session is called once per simulated client, from that client's goroutine, so a
// System must allow concurrent calls; Close is called once, after every Session is closed.
type System interface {
	// Name is a short label for reports: "dlock", "etcd", "zookeeper".
	Name() string
	// Session opens one client's connection (and, where the recipe needs one, its lease or session).
	Session(ctx context.Context, cfg SessionConfig) (Session, error)
	Close() error
}

// SessionConfig says how a simulated client is set up.
type SessionConfig struct {
	// ID numbers the client from 0; sessions use it to make names and owners unique.
	ID int
	// TTL is the lease of a hold: dlock's per-acquire TTL, etcd's session lease, ZooKeeper's session
	// timeout.
	TTL time.Duration
}

// A Session is one client. The runner calls its methods from one goroutine only, one at a time.
type Session interface {
	// Acquire takes the named lock, waiting in its queue until it is granted or ctx ends.
	Acquire(ctx context.Context, name string) error
	// Release releases the named lock this session holds, handing it to the next waiter.
	Release(ctx context.Context, name string) error
	// Put writes value under key.
	Put(ctx context.Context, key string, value []byte) error
	// Get reads key with a linearizable read; a missing key is not an error.
	Get(ctx context.Context, key string) error
	// Query reads the named lock's holder with a linearizable read; a free lock is not an error.
	Query(ctx context.Context, name string) error
	Close() error
}
