package client

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// Client talks to a dlock cluster through any of its endpoints. It is safe for concurrent use by many
// goroutines; share one per process. Close it when done.
type Client struct {
	id        string
	opts      options
	endpoints []string
	conns     []*grpc.ClientConn

	preferred atomic.Int64 // index of the endpoint that answered last
	// leaderSought is set once the client has looked for the leader among its endpoints since the
	// last failover; see preferLeader.
	leaderSought atomic.Bool
	seq          atomic.Uint64 // last request sequence number handed out
	owners       atomic.Uint64 // last default owner number handed out

	closed chan struct{} // closed by Close

	mu      sync.Mutex
	isClose bool
	locks   map[*Lock]struct{} // handles that still hold (or may hold) their lock

	inflightMu sync.Mutex
	inflight   map[uint64]struct{} // seqs of writes whose answer may still be retried
}

// New returns a Client for a cluster reachable at endpoints ("host:port" each; the client addresses of
// any nodes, in any order). It does not connect: connections are made on first use, so New succeeds
// while the cluster is down. A bad option or endpoint is an error wrapping ErrInvalid.
func New(endpoints []string, opts ...Option) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, invalidf("no endpoints")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.clientID == "" {
		o.clientID = randomID()
	}
	c := &Client{
		id:        o.clientID,
		opts:      o,
		endpoints: append([]string(nil), endpoints...),
		closed:    make(chan struct{}),
		locks:     make(map[*Lock]struct{}),
	}
	// Sequence numbers start at the wall clock so that a restarted client reusing its id keeps
	// handing out numbers larger than any the cluster remembers.
	c.seq.Store(uint64(time.Now().UnixNano()))
	for _, ep := range c.endpoints {
		cc, err := dial(ep, o)
		if err != nil {
			c.closeConns()
			return nil, err
		}
		c.conns = append(c.conns, cc)
	}
	return c, nil
}

func dial(endpoint string, o options) (*grpc.ClientConn, error) {
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return nil, invalidf("endpoint %q: want host:port: %v", endpoint, err)
	}
	bo := backoff.DefaultConfig
	bo.BaseDelay = o.backoffMin
	bo.MaxDelay = o.backoffMax
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	cc, err := grpc.NewClient(endpoint, append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: o.dialTimeout}),
	}, o.tokenDialOptions()...)...)
	if err != nil {
		return nil, invalidf("endpoint %q: %v", endpoint, err)
	}
	return cc, nil
}

// randomID returns 20 characters from a 32-letter alphabet (100 random bits).
func randomID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 20)
	_, _ = cryptorand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b)
}

// ID returns the client id sent with every write (see WithClientID).
func (c *Client) ID() string { return c.id }

// Close ends the client at once: calls in flight fail with ErrClosed (or a context error), every lock
// handle stops renewing and closes Lost with an error wrapping ErrLockLost and ErrClosed, and later calls
// fail with ErrClosed. It does not release locks: their leases run out on the cluster (call
// Lock.Release first for a prompt hand-over). Close waits for the client's goroutines to stop. It is
// idempotent and safe to call concurrently; the Client cannot be reused.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.isClose {
		c.mu.Unlock()
		return nil
	}
	c.isClose = true
	close(c.closed)
	held := make([]*Lock, 0, len(c.locks))
	for l := range c.locks {
		held = append(held, l)
	}
	c.mu.Unlock()
	for _, l := range held {
		l.end(&lostError{name: l.name, why: "client closed", cause: ErrClosed})
		l.stopRenewer()
	}
	return c.closeConns()
}

func (c *Client) closeConns() error {
	var errs []error
	for _, cc := range c.conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// register records a live handle so that Close can stop it. It fails once the client is closed.
func (c *Client) register(l *Lock) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClose {
		return false
	}
	c.locks[l] = struct{}{}
	return true
}

func (c *Client) unregister(l *Lock) {
	c.mu.Lock()
	delete(c.locks, l)
	c.mu.Unlock()
}

// header returns a fresh request header and the func to call once the request's answer is final
// (it will not be sent again). Every attempt of one call sends the same header, so the cluster
// applies the call at most once. The header also tells the cluster the lowest seq still in flight:
// the cluster forgets the answers below it, so its memory holds only what may still be retried.
func (c *Client) header() (*dlockv1.RequestHeader, func()) {
	c.inflightMu.Lock()
	seq := c.seq.Add(1)
	if c.inflight == nil {
		c.inflight = make(map[uint64]struct{})
	}
	c.inflight[seq] = struct{}{}
	low := seq
	for s := range c.inflight {
		low = min(low, s)
	}
	c.inflightMu.Unlock()
	done := func() {
		c.inflightMu.Lock()
		delete(c.inflight, seq)
		c.inflightMu.Unlock()
	}
	return &dlockv1.RequestHeader{ClientId: c.id, Seq: seq, AckedBelow: low}, done
}

// attempt is one try of a call on one connection, under a context bounded by the attempt timeout.
type attempt func(ctx context.Context, cc *grpc.ClientConn) error

// call runs try on the preferred endpoint and, while the endpoint or the cluster is unavailable or the
// attempt times out, on the next one, pausing after each round in which every endpoint failed. It stops
// at the first answer, when ctx ends, when the client closes or after the retry limit. timeout bounds
// each attempt. The error it returns wraps a sentinel (see mapError).
func (c *Client) call(ctx context.Context, timeout func() time.Duration, try attempt) error {
	var last error // the latest retryable failure
	n := len(c.conns)
	if n > 1 && c.leaderSought.CompareAndSwap(false, true) {
		c.preferLeader(ctx)
	}
	for i := 0; i < c.opts.retryAttemptMax; i++ {
		if i > 0 && i%n == 0 {
			if err := c.pause(ctx, i/n); err == ErrClosed {
				return ErrClosed
			} else if err != nil {
				return &unavailableError{attempts: i, last: last, cause: err}
			}
		}
		if err := c.checkOpen(ctx, i, last); err != nil {
			return err
		}
		ep := c.preferred.Load()
		actx, cancel := context.WithTimeout(ctx, timeout())
		err := try(actx, c.conns[ep])
		cancel()
		if err == nil {
			return nil
		}
		switch {
		case retryable(err), timedOut(ctx, err):
			last = err
			c.preferred.CompareAndSwap(ep, (ep+1)%int64(n))
			c.leaderSought.Store(false) // a failover may have moved the leader: look again next call
		default:
			return c.finalError(ctx, i, last, err)
		}
	}
	return &unavailableError{attempts: c.opts.retryAttemptMax, last: last}
}

// checkOpen fails when the client is closed or ctx has ended before attempt i.
func (c *Client) checkOpen(ctx context.Context, i int, last error) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		if last != nil {
			return &unavailableError{attempts: i, last: last, cause: err}
		}
		return fmt.Errorf("dlock: %w", err)
	}
	return nil
}

// finalError maps the error that ended the loop. A context error after earlier unavailability reports
// both; a call cut off by Close reports ErrClosed.
func (c *Client) finalError(ctx context.Context, i int, last, err error) error {
	mapped := mapError(err)
	if reasonOf(err) != "" {
		return mapped // the cluster's answer
	}
	select {
	case <-c.closed:
		return fmt.Errorf("%w: %w", ErrClosed, mapped)
	default:
	}
	if ctx.Err() != nil && last != nil {
		return &unavailableError{attempts: i + 1, last: last, cause: ctx.Err()}
	}
	return mapped
}

// timedOut reports whether an attempt failed on its own timeout while ctx lives on: a deadline error
// without a dlock reason (the server's clock may end the call a moment before the client's does).
func timedOut(ctx context.Context, err error) bool {
	st, ok := status.FromError(err)
	return ok && ctx.Err() == nil && st.Code() == codes.DeadlineExceeded && reason(st) == ""
}

func reasonOf(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	return reason(st)
}

// pause sleeps the backoff of the given round (1, 2, ...), returning early with an error when ctx ends
// or the client closes.
func (c *Client) pause(ctx context.Context, round int) error {
	d := c.opts.backoffMin
	for r := 1; r < round && d < c.opts.backoffMax; r++ {
		d *= 2
	}
	d = min(d, c.opts.backoffMax)
	d = d/2 + rand.N(d/2+1) // jitter: spread clients that failed together
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	}
}

// fixed returns an attempt timeout of d.
func fixed(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

// leaderLookupTimeout bounds the status call preferLeader makes.
const leaderLookupTimeout = 500 * time.Millisecond

// preferLeader makes the leader's endpoint the preferred one when the cluster's status names a leader
// whose client address is one of the endpoints. Any node answers any call, but through the leader a
// write skips the forwarding hop, and a read or a wait need not wait for a follower to learn of the
// latest commits. It is best effort: on any failure, or when no endpoint matches (a node whose
// configured client address differs from how this client reaches it), the preference stays.
func (c *Client) preferLeader(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, leaderLookupTimeout)
	defer cancel()
	resp, err := dlockv1.NewClusterClient(c.conns[c.preferred.Load()]).Status(ctx, &dlockv1.StatusRequest{})
	if err != nil {
		return
	}
	for _, m := range resp.GetMembers() {
		if !m.GetLeader() {
			continue
		}
		if i := slices.Index(c.endpoints, m.GetClientAddress()); i >= 0 {
			c.preferred.Store(int64(i))
		}
		return
	}
}
