// Package etcd drives an etcd v3 cluster through loadgen's System interface, with etcd's own lock
// recipe (client/v3/concurrency), so dlock's workloads run against it like for like.
//
// Each simulated client is one clientv3.Client (its own gRPC connection) and one concurrency.Session
// (its own lease, kept alive by the session's goroutine), as separate processes using etcd's recipe
// would be. Locks live under /dlock-bench/locks/ and keys under /dlock-bench/kv/.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/dlock-raft/dlock/internal/loadgen"
)

const (
	lockPrefix = "/dlock-bench/locks/"
	kvPrefix   = "/dlock-bench/kv/"
	// dialTimeout bounds how long a new session waits for its first connection. Past it the cluster is
	// not up, which the run should report rather than wait on.
	dialTimeout = 5 * time.Second
)

// System is a loadgen.System over one etcd cluster. It holds only the endpoints; every Session owns
// its own client, so System is safe for concurrent use.
type System struct {
	endpoints []string
}

// New returns a System that connects to the etcd client endpoints (host:port).
func New(endpoints []string) *System {
	return &System{endpoints: append([]string(nil), endpoints...)}
}

// Name implements loadgen.System.
func (s *System) Name() string { return "etcd" }

// Close implements loadgen.System. Sessions own their clients, so there is nothing to close.
func (s *System) Close() error { return nil }

// LeaseTTL is the etcd session lease for a loadgen TTL: whole seconds, rounded up, at least 1, because
// etcd leases are granted in seconds.
func LeaseTTL(ttl time.Duration) int {
	return max(1, int(math.Ceil(ttl.Seconds())))
}

// Session implements loadgen.System: it dials every endpoint and grants the session's lease. The
// lease is kept alive by concurrency.Session's goroutine until Close, which revokes it.
func (s *System) Session(ctx context.Context, cfg loadgen.SessionConfig) (loadgen.Session, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   s.endpoints,
		DialTimeout: dialTimeout,
		Context:     context.Background(),
		// clientv3 logs every retry during a failover; the run counts those as errors already.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: dial %v: %w", s.endpoints, err)
	}
	// The lease is granted here, under ctx, rather than by NewSession, which would grant it under the
	// client's context with no deadline; the keep-alive must outlive this call, so it is not tied to ctx.
	grantCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	lease, err := c.Grant(grantCtx, int64(LeaseTTL(cfg.TTL)))
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("etcd: grant a %ds lease: %w", LeaseTTL(cfg.TTL), err)
	}
	sess, err := concurrency.NewSession(c, concurrency.WithLease(lease.ID))
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("etcd: open session: %w", err)
	}
	return &session{c: c, s: sess, mutexes: map[string]*concurrency.Mutex{}}, nil
}

// session is one client. loadgen calls it from one goroutine, so mutexes needs no lock.
type session struct {
	c       *clientv3.Client
	s       *concurrency.Session
	mutexes map[string]*concurrency.Mutex
}

func (s *session) mutex(name string) *concurrency.Mutex {
	m, ok := s.mutexes[name]
	if !ok {
		m = concurrency.NewMutex(s.s, lockPrefix+name)
		s.mutexes[name] = m
	}
	return m
}

// Acquire is Mutex.Lock: it puts a key under the lock's prefix and waits until every older key is
// deleted. If ctx ends first, Lock deletes its key (with the client's context, not the dead one).
func (s *session) Acquire(ctx context.Context, name string) error {
	return s.mutex(name).Lock(ctx)
}

// Release is Mutex.Unlock: it deletes the session's key, which wakes the next waiter.
func (s *session) Release(ctx context.Context, name string) error {
	m, ok := s.mutexes[name]
	if !ok {
		return fmt.Errorf("etcd: release %q: not acquired by this session", name)
	}
	return m.Unlock(ctx)
}

// Put writes value under key; a Put is a Raft write, committed on a majority before it returns.
func (s *session) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.c.Put(ctx, kvPrefix+key, string(value))
	return err
}

// Get reads key with etcd's default read, which is linearizable (a ReadIndex round to the leader).
func (s *session) Get(ctx context.Context, key string) error {
	_, err := s.c.Get(ctx, kvPrefix+key)
	return err
}

// Query reads the lock's holder the way etcd's recipe defines it: the key under the lock's prefix with
// the lowest create revision. A linearizable read like Get.
func (s *session) Query(ctx context.Context, name string) error {
	_, err := s.c.Get(ctx, lockPrefix+name+"/", clientv3.WithFirstCreate()...)
	return err
}

// Close revokes the session's lease (which deletes any key it still holds) and closes the client. Both
// are attempted; their errors are joined.
func (s *session) Close() error {
	return errors.Join(s.s.Close(), s.c.Close())
}
