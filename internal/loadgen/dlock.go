package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlock-raft/dlock/client"
)

// Dlock is the System for a dlock cluster: each session is its own client.Client on all endpoints,
// so sessions share nothing but the cluster, as separate processes would.
type Dlock struct {
	endpoints []string
	opts      []client.Option
}

// NewDlock returns a System that connects to endpoints with opts (TLS, credentials, timeouts).
func NewDlock(endpoints []string, opts ...client.Option) *Dlock {
	return &Dlock{endpoints: endpoints, opts: opts}
}

// Name implements System.
func (d *Dlock) Name() string { return "dlock" }

// Session implements System. It checks the connection with a Status call, so a wrong endpoint fails
// here rather than as a run of errors.
func (d *Dlock) Session(ctx context.Context, cfg SessionConfig) (Session, error) {
	c, err := client.New(d.endpoints, d.opts...)
	if err != nil {
		return nil, err
	}
	if _, err := c.Status(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("reach %v: %w", d.endpoints, err)
	}
	return &dlockSession{c: c, ttl: cfg.TTL, held: map[string]*client.Lock{}}, nil
}

// Close implements System; sessions own their clients, so there is nothing left to close.
func (d *Dlock) Close() error { return nil }

type dlockSession struct {
	c    *client.Client
	ttl  time.Duration
	held map[string]*client.Lock
}

// Acquire waits in the lock's queue until ctx's deadline (the client leaves a margin for the answer).
// The runner releases every hold well inside its TTL, so the lease is not renewed.
func (s *dlockSession) Acquire(ctx context.Context, name string) error {
	l, err := s.c.Acquire(ctx, name, client.WithTTL(s.ttl), client.WithoutAutoRenew())
	if err != nil {
		return err
	}
	s.held[name] = l
	return nil
}

func (s *dlockSession) Release(ctx context.Context, name string) error {
	l, ok := s.held[name]
	if !ok {
		return fmt.Errorf("loadgen: release %q: not held by this session", name)
	}
	delete(s.held, name)
	return l.Release(ctx)
}

func (s *dlockSession) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.c.Put(ctx, key, value)
	return err
}

func (s *dlockSession) Get(ctx context.Context, key string) error {
	_, err := s.c.Get(ctx, key)
	if errors.Is(err, client.ErrNotFound) {
		return nil
	}
	return err
}

func (s *dlockSession) Query(ctx context.Context, name string) error {
	_, err := s.c.Query(ctx, name)
	if errors.Is(err, client.ErrNotFound) {
		return nil // a lock never acquired reads as free
	}
	return err
}

func (s *dlockSession) Close() error { return s.c.Close() }
