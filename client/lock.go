package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// waitMarginMax caps the time Acquire keeps between the end of its wait and the context's deadline, so
// that the cluster's answer (granted or WAIT_TIMEOUT) arrives before the context ends. The margin is a
// tenth of the time left, up to this.
const waitMarginMax = time.Second

// Acquire takes the named lock, waiting in the cluster's FIFO queue while another owner holds it. It
// blocks until the lock is granted (it returns a held *Lock), the wait ends (ErrWaitTimeout), or ctx
// ends (a context error; the cluster withdraws the waiter when the call is cancelled, and releases the
// lock if a grant raced with the cancellation).
//
// The wait is WithWait's, cut short to end before ctx's deadline with a margin; without WithWait it
// lasts until that margin (at most ImplicitWaitMax), and without either it is DefaultWait. The lease
// is WithTTL's (DefaultTTL). The owner is a fresh "<client id>/<n>" unless WithOwner says otherwise,
// so two Acquires through one Client exclude each other; an Acquire by the lock's current owner is
// reentrant and returns the same token.
//
// Unless WithoutAutoRenew, the handle renews the lease every TTL/3 until Release, loss or Client.Close.
// Retries after an unavailable endpoint reuse the request header, so the cluster queues or grants the
// request once. If Acquire fails with ErrUnavailable or a context error, the request may still have been
// granted; the lease then runs out on the cluster unless renewed.
func (c *Client) Acquire(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	o, err := lockOpts(opts)
	if err != nil {
		return nil, err
	}
	return c.acquire(ctx, name, o)
}

// TryAcquire is Acquire without waiting: it fails at once with ErrLocked if another owner holds the
// lock. WithWait is ignored.
func (c *Client) TryAcquire(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	o, err := lockOpts(opts)
	if err != nil {
		return nil, err
	}
	o.wait, o.waitSet = 0, true
	return c.acquire(ctx, name, o)
}

func lockOpts(opts []LockOption) (lockOptions, error) {
	o := lockOptions{ttl: DefaultTTL, autoRenew: true}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// waitFor returns how long Acquire asks the cluster to wait: the option's wait, cut to end a margin
// before ctx's deadline; without the option, until that margin (at most ImplicitWaitMax), or
// DefaultWait if ctx has no deadline.
func waitFor(ctx context.Context, o lockOptions) (time.Duration, error) {
	wait := DefaultWait
	if o.waitSet {
		wait = o.wait
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return wait, nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 0, fmt.Errorf("dlock: %w", context.DeadlineExceeded)
	}
	budget := left - min(left/10, waitMarginMax)
	switch {
	case !o.waitSet:
		wait = min(budget, ImplicitWaitMax)
	case wait > budget:
		wait = budget
	}
	return wait, nil
}

func (c *Client) acquire(ctx context.Context, name string, o lockOptions) (*Lock, error) {
	if name == "" {
		return nil, invalidf("empty lock name")
	}
	wait, err := waitFor(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.owner == "" {
		o.owner = fmt.Sprintf("%s/%d", c.id, c.owners.Add(1))
	}
	sent := time.Now()
	resp, err := c.acquireCall(ctx, name, o, sent, wait)
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(resp.GetTtlMs()) * time.Millisecond
	if ttl <= 0 {
		ttl = o.ttl
	}
	leaseEnd := sent.Add(ttl)
	if time.Since(sent) > ttl/3 {
		// A late grant (after a wait in the queue): the client can prove only a lease counted from
		// the send time, which may have passed. A renewal proves the same hold is still current
		// (the token matches) and counts the lease anew from its own send time.
		leaseEnd, err = c.confirm(ctx, name, o.owner, resp.GetToken(), ttl)
		if err != nil {
			return nil, err
		}
	}
	l := &Lock{
		c: c, name: name, owner: o.owner, token: resp.GetToken(), nonce: resp.GetNonce(), ttl: ttl,
		lost: make(chan struct{}), leaseEnd: leaseEnd,
	}
	l.mu.Lock() // the watchdog may fire at once; it must find itself assigned
	l.watchdog = time.AfterFunc(time.Until(leaseEnd), l.leaseCheck)
	l.mu.Unlock()
	if o.autoRenew {
		rctx, cancel := context.WithCancel(context.Background())
		l.stopRenew, l.renewDone = cancel, make(chan struct{})
		go l.renewLoop(rctx)
	}
	if !c.register(l) {
		l.end(&lostError{name: name, why: "client closed", cause: ErrClosed})
		l.stopRenewer()
		return nil, fmt.Errorf("%w: lock %q was granted as the client closed; its lease will run out",
			ErrClosed, name)
	}
	return l, nil
}

func (c *Client) acquireCall(ctx context.Context, name string, o lockOptions, sent time.Time,
	wait time.Duration) (*dlockv1.AcquireResponse, error) {
	hdr, done := c.header()
	defer done()
	waitEnd := sent.Add(wait)
	var resp *dlockv1.AcquireResponse
	timeout := func() time.Duration { return max(time.Until(waitEnd), 0) + c.opts.callTimeout }
	var tries uint32
	err := c.call(ctx, timeout, func(ctx context.Context, cc *grpc.ClientConn) error {
		if tries > 0 { // a retry waits only for what is left of the wait
			wait = max(time.Until(waitEnd), 0)
		}
		tries++
		// Each send is numbered, so that a queued wait belongs to the latest:
		// an earlier send that reaches the cluster late claims nothing.
		h := &dlockv1.RequestHeader{ClientId: hdr.GetClientId(), Seq: hdr.GetSeq(), AckedBelow: hdr.GetAckedBelow(), Try: tries}
		req := &dlockv1.AcquireRequest{Header: h, Name: name, Owner: o.owner, TtlMs: millis(o.ttl),
			WaitMs: millis(wait)}
		r, err := dlockv1.NewLockClient(cc).Acquire(ctx, req)
		resp = r
		return err
	})
	return resp, err
}

// confirm renews a late grant and returns the lease end it proves. If the renewal fails without a
// refusal the hold may still be current, so confirm releases it (best effort) rather than leave an
// owner who never learnt it held the lock.
func (c *Client) confirm(ctx context.Context, name, owner string, token uint64, ttl time.Duration) (
	time.Time, error) {
	sent := time.Now()
	lease, err := c.RenewOwned(ctx, name, owner, token, ttl)
	if err == nil {
		return sent.Add(lease), nil
	}
	if !refused(err) {
		rctx, cancel := context.WithTimeout(context.Background(), c.opts.callTimeout)
		_ = c.ReleaseOwned(rctx, name, owner, token) // best effort; the lease runs out otherwise
		cancel()
	}
	return time.Time{}, &lostError{name: name, why: "granted late and the confirming renewal failed", cause: err}
}

func millis(d time.Duration) int64 { return int64(d / time.Millisecond) }

// ReleaseOwned releases the named lock held by owner. A token other than 0 must match the current
// hold (ErrTokenMismatch otherwise). It fails with ErrNotHeld, ErrHeldByOther or ErrTokenMismatch when
// owner does not hold the lock. It is for tools and facades that track owners themselves; a *Lock
// handle's Release is the usual way.
//
// Retries reuse the request header, so the release is applied once. If it fails with ErrUnavailable or
// a context error it may still have been applied.
func (c *Client) ReleaseOwned(ctx context.Context, name, owner string, token uint64) error {
	if name == "" || owner == "" {
		return invalidf("empty lock name or owner")
	}
	hdr, done := c.header()
	defer done()
	return c.release(ctx, hdr, name, owner, token)
}

func (c *Client) release(ctx context.Context, hdr *dlockv1.RequestHeader, name, owner string,
	token uint64) error {
	req := &dlockv1.ReleaseRequest{Header: hdr, Name: name, Owner: owner, Token: token}
	return c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := dlockv1.NewLockClient(cc).Release(ctx, req)
		return err
	})
}

// RenewOwned refreshes the lease of the named lock held by owner to ttl from now (0 keeps the TTL the
// hold was granted with) and returns the lease now in force. A token other than 0 must match the
// current hold. It fails with ErrNotHeld, ErrHeldByOther or ErrTokenMismatch when owner does not hold
// the lock. Retries reuse the request header; a renewal that failed with ErrUnavailable or a context
// error may still have been applied.
func (c *Client) RenewOwned(ctx context.Context, name, owner string, token uint64, ttl time.Duration) (
	time.Duration, error) {
	if name == "" || owner == "" {
		return 0, invalidf("empty lock name or owner")
	}
	if ttl < 0 || (ttl > 0 && ttl < time.Millisecond) {
		return 0, invalidf("ttl %s: want 0 (keep) or at least 1ms", ttl)
	}
	hdr, done := c.header()
	defer done()
	req := &dlockv1.RenewRequest{Header: hdr, Name: name, Owner: owner, Token: token, TtlMs: millis(ttl)}
	var resp *dlockv1.RenewResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewLockClient(cc).Renew(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return 0, err
	}
	lease := time.Duration(resp.GetTtlMs()) * time.Millisecond
	if lease <= 0 {
		lease = ttl
	}
	return lease, nil
}

// Lock is a held lock: the handle Acquire returns. Its methods are safe for concurrent use. The
// handle's lease, as the client counts it, starts when the request that granted or last renewed it was
// sent, so the client's view of the lease is never longer than the cluster's.
type Lock struct {
	c     *Client
	name  string
	owner string
	token uint64
	nonce uint64
	ttl   time.Duration

	lost      chan struct{}      // closed when the handle stops holding
	stopRenew context.CancelFunc // nil without auto-renew
	renewDone chan struct{}      // closed when the renewer has exited; nil without auto-renew

	mu           sync.Mutex
	leaseEnd     time.Time   // conservative lease end on the local monotonic clock
	watchdog     *time.Timer // fires at leaseEnd
	ended        bool
	err          error // why the handle ended; nil after a successful Release
	lastRenew    error // the latest failed renewal, reported if the lease runs out
	releaseHdr   *dlockv1.RequestHeader
	releaseFinal func() // marks releaseHdr's answer final
	releaseDone  bool
	releaseErr   error
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.name }

// Owner returns the owner id the lock is held by.
func (l *Lock) Owner() string { return l.owner }

// Token returns the fencing token of this hold: it strictly grows with every grant, cluster-wide. Pass
// it to the resources the lock protects so they can refuse a stale holder's writes.
func (l *Lock) Token() uint64 { return l.token }

// Nonce returns the number of grants of this lock, this one included.
func (l *Lock) Nonce() uint64 { return l.nonce }

// TTL returns the lease the lock was granted with.
func (l *Lock) TTL() time.Duration { return l.ttl }

// Lost returns a channel that is closed, never sent on, when the handle stops holding the lock: when
// the client can no longer prove it holds it (a renewal was refused, or the lease ran out, as the
// client counts it, before a renewal succeeded; then Err wraps ErrLockLost), when the Client is closed
// (Err wraps ErrLockLost and ErrClosed), or after a successful Release (Err is nil). Stop using what the
// lock protects as soon as it is closed. Every call returns the same channel.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err returns nil while the handle holds the lock and after a successful Release; once Lost is closed
// for any other reason it returns an error wrapping ErrLockLost and the cause.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Renew refreshes the lease now, as the auto-renewer does every TTL/3. A refusal (ErrNotHeld,
// ErrHeldByOther, ErrTokenMismatch) ends the handle: Lost closes and the returned error wraps
// ErrLockLost and the refusal. Other errors (ErrUnavailable, context errors) leave the handle holding
// until its lease runs out; such a renewal may still have been applied. After the handle ended, Renew
// returns Err (or ErrNotHeld after Release) without contacting the cluster.
func (l *Lock) Renew(ctx context.Context) error {
	l.mu.Lock()
	ended, err := l.ended, l.err
	l.mu.Unlock()
	if ended {
		if err == nil {
			return fmt.Errorf("%w: lock %q was released", ErrNotHeld, l.name)
		}
		return err
	}
	sent := time.Now()
	lease, err := l.c.RenewOwned(ctx, l.name, l.owner, l.token, l.ttl)
	if err == nil {
		l.extend(sent.Add(lease))
		return nil
	}
	if refused(err) {
		lost := &lostError{name: l.name, why: "renewal refused", cause: err}
		l.end(lost)
		return lost
	}
	l.mu.Lock()
	l.lastRenew = err
	l.mu.Unlock()
	return err
}

// Release stops the renewer and releases the lock, handing it to the next waiter. On success Lost
// closes and Err stays nil. A refusal (ErrNotHeld, ErrHeldByOther, ErrTokenMismatch: the hold had
// already ended) is returned and ends the handle too. Both outcomes are final: later calls return the
// same result without contacting the cluster.
//
// If Release fails with ErrUnavailable, ErrClosed or a context error the lock may or may not have been
// released; the handle no longer renews, so at worst the lease runs out. Calling Release again is safe
// and sends the same request header, so the cluster applies the release once.
func (l *Lock) Release(ctx context.Context) error {
	l.stopRenewer()
	l.mu.Lock()
	if l.releaseDone {
		defer l.mu.Unlock()
		return l.releaseErr
	}
	if l.releaseHdr == nil {
		// The header stays in flight until the answer is final: a later
		// Release resends it after an ambiguous failure.
		l.releaseHdr, l.releaseFinal = l.c.header()
	}
	hdr := l.releaseHdr
	l.mu.Unlock()

	err := l.c.release(ctx, hdr, l.name, l.owner, l.token)
	// A refusal is final, and so is STALE_REQUEST: the cluster will never
	// apply this header again, and the lease ends the hold if it was not.
	if err != nil && !refused(err) && !errors.Is(err, ErrStaleRequest) {
		return err
	}
	l.mu.Lock()
	l.releaseDone, l.releaseErr = true, err
	l.mu.Unlock()
	l.releaseFinal()
	if err != nil {
		l.end(&lostError{name: l.name, why: "release refused", cause: err})
		return err
	}
	l.end(nil)
	return nil
}

// extend moves the lease end forward after a successful renewal sent when the new lease started.
func (l *Lock) extend(end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended || !end.After(l.leaseEnd) {
		return
	}
	l.leaseEnd = end
	l.lastRenew = nil
	l.watchdog.Reset(time.Until(end))
}

// leaseCheck runs when the watchdog fires: if the lease has really run out (it was not extended
// meanwhile) the handle is lost.
func (l *Lock) leaseCheck() {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	if left := time.Until(l.leaseEnd); left > 0 {
		l.watchdog.Reset(left)
		l.mu.Unlock()
		return
	}
	cause := l.lastRenew
	if cause == nil {
		cause = fmt.Errorf("no renewal within the %s lease", l.ttl)
	}
	lost := &lostError{name: l.name, why: "lease ran out before a renewal succeeded", cause: cause}
	l.endLocked(lost)
	l.mu.Unlock()
	l.afterEnd()
}

// end ends the handle with err (nil: released); only the first call counts.
func (l *Lock) end(err error) {
	l.mu.Lock()
	first := l.endLocked(err)
	l.mu.Unlock()
	if first {
		l.afterEnd()
	}
}

func (l *Lock) endLocked(err error) bool {
	if l.ended {
		return false
	}
	l.ended, l.err = true, err
	l.watchdog.Stop()
	close(l.lost)
	return true
}

// afterEnd tells the renewer to stop (without waiting: it may be the caller) and forgets the handle.
func (l *Lock) afterEnd() {
	if l.stopRenew != nil {
		l.stopRenew()
	}
	l.c.unregister(l)
}

// stopRenewer stops the renewer and waits for it to exit. It must not run on the renewer goroutine.
func (l *Lock) stopRenewer() {
	if l.stopRenew == nil {
		return
	}
	l.stopRenew()
	<-l.renewDone
}

// renewLoop renews the lease every TTL/3 (counted from the last successful renewal's send time) until
// ctx is cancelled or the handle ends. A failed renewal is retried after a backoff until the lease runs
// out, when the watchdog ends the handle.
func (l *Lock) renewLoop(ctx context.Context) {
	defer close(l.renewDone)
	t := time.NewTimer(0)
	defer t.Stop()
	backoff := time.Duration(0)
	for {
		l.mu.Lock()
		due, leaseEnd := l.leaseEnd.Add(-2*l.ttl/3), l.leaseEnd
		l.mu.Unlock()
		if backoff > 0 {
			due = time.Now().Add(backoff)
		}
		t.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-l.lost:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithDeadline(ctx, leaseEnd)
		err := l.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			backoff = 0
		case backoff == 0:
			backoff = l.c.opts.backoffMin
		default:
			backoff = min(2*backoff, l.c.opts.backoffMax)
		}
	}
}

// lostError says why a handle stopped holding its lock. It wraps ErrLockLost and the cause.
type lostError struct {
	name  string
	why   string
	cause error
}

func (e *lostError) Error() string {
	return fmt.Sprintf("%v: %q: %s: %v", ErrLockLost, e.name, e.why, e.cause)
}

func (e *lostError) Unwrap() []error { return []error{ErrLockLost, e.cause} }
