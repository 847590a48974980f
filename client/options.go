package client

import (
	"crypto/tls"
	"time"
)

// Defaults and bounds of the Client options. Each bound keeps a misconfigured client from hammering
// the cluster or hanging for ever.
const (
	// DefaultDialTimeout bounds how long an attempt waits for a connection to one endpoint before it
	// moves on to the next.
	DefaultDialTimeout = 2 * time.Second
	// DefaultCallTimeout bounds one attempt of a non-blocking call (everything except Acquire's wait).
	DefaultCallTimeout = 5 * time.Second
	// DefaultRetryBackoffMin and DefaultRetryBackoffMax bound the pause after a round in which every
	// endpoint was unavailable; the pause doubles each round, with jitter.
	DefaultRetryBackoffMin = 50 * time.Millisecond
	DefaultRetryBackoffMax = 1 * time.Second
	// DefaultRetryAttemptsMax caps the attempts of one call, across all endpoints. The context bounds a
	// call too; this cap bounds calls whose context has no deadline.
	DefaultRetryAttemptsMax = 32

	// ClientIDMax is the longest client id WithClientID accepts, in bytes.
	ClientIDMax = 128
	// TimeoutMax bounds WithDialTimeout, WithCallTimeout and the retry backoff.
	TimeoutMax = 10 * time.Minute
	// RetryAttemptsMax bounds WithRetryLimit.
	RetryAttemptsMax = 1000
)

// Option configures a Client; pass them to New. An option given a bad value makes New fail with an
// error wrapping ErrInvalid.
type Option func(*options) error

type options struct {
	tls             *tls.Config // nil: plaintext; see WithTLS
	clientID        string
	dialTimeout     time.Duration
	callTimeout     time.Duration
	backoffMin      time.Duration
	backoffMax      time.Duration
	retryAttemptMax int
	token           string // see WithToken
	insecureToken   bool   // see AllowInsecureToken
}

func defaultOptions() options {
	return options{
		dialTimeout:     DefaultDialTimeout,
		callTimeout:     DefaultCallTimeout,
		backoffMin:      DefaultRetryBackoffMin,
		backoffMax:      DefaultRetryBackoffMax,
		retryAttemptMax: DefaultRetryAttemptsMax,
	}
}

// WithClientID sets the id that identifies this client to the cluster: the cluster deduplicates
// retried writes by (client id, sequence number), and the default owner of a lock handle is
// "<client id>/<n>". Default: a random 20-character id.
//
// WARNING: two Clients running at the same time must not share an id, or the cluster may take one's
// request for a retry of the other's. A restarted process may reuse its id: sequence numbers start from
// the wall clock, so they keep growing across restarts.
func WithClientID(id string) Option {
	return func(o *options) error {
		if id == "" || len(id) > ClientIDMax {
			return invalidf("client id %q: want 1 to %d bytes", id, ClientIDMax)
		}
		o.clientID = id
		return nil
	}
}

// WithDialTimeout bounds how long one attempt waits to connect to an endpoint before the call moves on
// to the next endpoint. Default DefaultDialTimeout; must be in (0, TimeoutMax].
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) error {
		if err := checkDuration("dial timeout", d); err != nil {
			return err
		}
		o.dialTimeout = d
		return nil
	}
}

// WithCallTimeout bounds one attempt of a non-blocking call (Release, Renew, Query, Put, ...). An
// attempt that times out moves on to the next endpoint, with the same request header. Acquire's
// attempts get its wait on top. Default DefaultCallTimeout; must be in (0, TimeoutMax].
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) error {
		if err := checkDuration("call timeout", d); err != nil {
			return err
		}
		o.callTimeout = d
		return nil
	}
}

// WithRetryBackoff sets the pause after a round in which every endpoint failed: it starts at min and
// doubles each round up to max, with jitter. Defaults DefaultRetryBackoffMin and DefaultRetryBackoffMax;
// need 0 < min <= max <= TimeoutMax.
func WithRetryBackoff(min, max time.Duration) Option {
	return func(o *options) error {
		if err := checkDuration("retry backoff min", min); err != nil {
			return err
		}
		if err := checkDuration("retry backoff max", max); err != nil {
			return err
		}
		if max < min {
			return invalidf("retry backoff max %s below min %s", max, min)
		}
		o.backoffMin, o.backoffMax = min, max
		return nil
	}
}

// WithRetryLimit caps the attempts of one call across all endpoints (1: no retry). Default
// DefaultRetryAttemptsMax; must be in [1, RetryAttemptsMax].
func WithRetryLimit(attempts int) Option {
	return func(o *options) error {
		if attempts < 1 || attempts > RetryAttemptsMax {
			return invalidf("retry limit %d: want 1 to %d attempts", attempts, RetryAttemptsMax)
		}
		o.retryAttemptMax = attempts
		return nil
	}
}

func checkDuration(what string, d time.Duration) error {
	if d <= 0 || d > TimeoutMax {
		return invalidf("%s %s: want above 0 and at most %s", what, d, TimeoutMax)
	}
	return nil
}

// LockOption configures one Acquire or TryAcquire. A bad value makes the call fail with an error
// wrapping ErrInvalid before anything is sent.
type LockOption func(*lockOptions) error

type lockOptions struct {
	ttl       time.Duration
	wait      time.Duration
	waitSet   bool
	owner     string
	autoRenew bool
}

// Defaults of the lock options.
const (
	// DefaultTTL is the lease of a lock acquired without WithTTL.
	DefaultTTL = 15 * time.Second
	// DefaultWait is how long Acquire waits in the queue when neither WithWait nor the context's
	// deadline says otherwise; the seed's default acquire timeout.
	DefaultWait = 2500 * time.Millisecond
	// ImplicitWaitMax caps the wait an Acquire without WithWait takes from its context's deadline: the
	// cluster's default limits.acquire_timeout_max, which refuses longer waits. A context of hours
	// should not make every Acquire fail; a wait past the hour is asked for with WithWait.
	ImplicitWaitMax = time.Hour
	// OwnerMax is the longest owner id WithOwner accepts, in bytes.
	OwnerMax = 1024
)

// WithTTL sets the lease: the cluster releases the lock if this long passes without a renewal. The
// handle renews it every TTL/3 unless WithoutAutoRenew. Default DefaultTTL; must be at least 1ms and
// is sent in whole milliseconds.
func WithTTL(d time.Duration) LockOption {
	return func(o *lockOptions) error {
		if d < time.Millisecond {
			return invalidf("ttl %s: want at least 1ms", d)
		}
		o.ttl = d
		return nil
	}
}

// WithWait sets how long Acquire waits in the lock's FIFO queue (0: do not wait). It is cut short so
// that the cluster answers before the context's deadline. Default: until shortly before the context's
// deadline but at most ImplicitWaitMax, or DefaultWait if the context has none. TryAcquire ignores it.
func WithWait(d time.Duration) LockOption {
	return func(o *lockOptions) error {
		if d < 0 {
			return invalidf("wait %s: want 0 or more", d)
		}
		o.wait, o.waitSet = d, true
		return nil
	}
}

// WithOwner sets the owner id the lock is held by. Default: a fresh owner per handle,
// "<client id>/<n>", so two goroutines sharing a Client exclude each other. Give an explicit owner to
// share a hold between processes or to release it later with Client.ReleaseOwned; an Acquire by the
// current owner is reentrant: it returns the same token and refreshes the lease.
func WithOwner(owner string) LockOption {
	return func(o *lockOptions) error {
		if owner == "" || len(owner) > OwnerMax {
			return invalidf("owner %q: want 1 to %d bytes", owner, OwnerMax)
		}
		o.owner = owner
		return nil
	}
}

// WithoutAutoRenew turns off the handle's renewal goroutine: the lease then ends TTL after the grant
// unless the caller renews it (Lock.Renew or Client.RenewOwned). Lost still closes when the lease, as
// the client counts it, has passed.
func WithoutAutoRenew() LockOption {
	return func(o *lockOptions) error {
		o.autoRenew = false
		return nil
	}
}

// ReadOption configures a read (Query, Locks, Get, Keys).
type ReadOption func(*readOptions)

type readOptions struct {
	stale bool
}

// Stale lets the answering node read its own replica without a round trip to the leader: faster and
// available without a quorum, but it may miss the latest writes. Default: linearizable reads.
func Stale() ReadOption {
	return func(o *readOptions) { o.stale = true }
}

func readOpts(opts []ReadOption) readOptions {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
