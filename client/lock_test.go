package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/client/clienttest"
)

// acquireRequests returns the Acquire requests s received from c.
func acquireRequests(s *clienttest.Server, c *client.Client) []*dlockv1.AcquireRequest {
	var out []*dlockv1.AcquireRequest
	for _, call := range callsBy(s, c.ID(), dlockv1.Lock_Acquire_FullMethodName) {
		out = append(out, call.Request.(*dlockv1.AcquireRequest))
	}
	return out
}

func renewsBy(s *clienttest.Server, owner string) int {
	n := 0
	for _, call := range s.Calls(dlockv1.Lock_Renew_FullMethodName) {
		if call.Request.(*dlockv1.RenewRequest).GetOwner() == owner {
			n++
		}
	}
	return n
}

// Proves: a blocked Acquire is granted when the holder releases, with a larger fencing token, and the
// release closes the first handle's Lost with a nil Err.
func TestAcquireWaitsForReleaseAndGetsLargerToken(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)

	first, err := c.Acquire(ctx, "job")
	if err != nil {
		t.Fatalf("Acquire(job) = %v, want the lock", err)
	}
	second := make(chan *client.Lock, 1)
	errs := make(chan error, 1)
	go func() {
		l, err := c.Acquire(ctx, "job", client.WithWait(5*time.Second))
		second <- l
		errs <- err
	}()
	waitUntil(t, 5*time.Second, "the second Acquire to queue", func() bool {
		info, err := c.Query(ctx, "job")
		return err == nil && info.Waiters == 1
	})
	if err := first.Release(ctx); err != nil {
		t.Fatalf("Release = %v, want nil", err)
	}
	l := <-second
	if err := <-errs; err != nil {
		t.Fatalf("queued Acquire = %v, want the lock after the release", err)
	}
	defer l.Release(ctx)
	if l.Token() <= first.Token() {
		t.Errorf("second token = %d, want above the first's %d", l.Token(), first.Token())
	}
	if l.Owner() == first.Owner() {
		t.Errorf("both handles have owner %q, want a fresh owner per handle", l.Owner())
	}
	if !isClosed(first.Lost()) || first.Err() != nil {
		t.Errorf("released handle: Lost closed %v, Err %v; want closed and nil", isClosed(first.Lost()), first.Err())
	}
}

// DESIGN.md: "the idiomatic client gives every lock handle its own owner id, so two goroutines sharing a
// client still exclude each other."
func TestHandlesOfOneClientExcludeEachOther(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	l, err := c.TryAcquire(ctx, "job")
	if err != nil {
		t.Fatalf("TryAcquire = %v, want the lock", err)
	}
	defer l.Release(ctx)
	if _, err := c.TryAcquire(ctx, "job"); !errors.Is(err, client.ErrLocked) {
		t.Errorf("second TryAcquire through the same client = %v, want ErrLocked", err)
	}
}

func TestAcquireWithOwnerIsReentrant(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	a, err := c.TryAcquire(ctx, "job", client.WithOwner("me"), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("TryAcquire = %v", err)
	}
	b, err := c.TryAcquire(ctx, "job", client.WithOwner("me"), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("TryAcquire by the owner again = %v, want the lock (reentrant)", err)
	}
	if a.Token() != b.Token() {
		t.Errorf("reentrant token = %d, want the same %d", b.Token(), a.Token())
	}
	if err := c.ReleaseOwned(ctx, "job", "me", b.Token()); err != nil {
		t.Errorf("ReleaseOwned = %v, want nil", err)
	}
}

// The brief: the client asks the server to wait until shortly before the context's deadline, so that
// the answer arrives in time; without a deadline, the seed's 2500ms.
func TestAcquireWaitFitsTheContext(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	holdAs(t, s, "busy", "other", time.Minute)

	// A 2s context leaves a 200ms margin: the wait is about 1.8s.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := c.Acquire(ctx, "busy")
	if !errors.Is(err, client.ErrWaitTimeout) {
		t.Fatalf("Acquire of a held lock with a 2s context = %v, want ErrWaitTimeout before the deadline", err)
	}
	reqs := acquireRequests(s, c)
	if len(reqs) != 1 || reqs[0].GetWaitMs() < 1600 || reqs[0].GetWaitMs() > 1800 {
		t.Errorf("requests %v, want one with wait_ms in [1600, 1800]", reqs)
	}

	if _, err := c.Acquire(context.Background(), "free", client.WithoutAutoRenew()); err != nil {
		t.Fatalf("Acquire(free) = %v", err)
	}
	reqs = acquireRequests(s, c)
	if got := reqs[len(reqs)-1].GetWaitMs(); got != 2500 {
		t.Errorf("wait_ms without a deadline = %d, want 2500", got)
	}
	if got := reqs[len(reqs)-1].GetTtlMs(); got != client.DefaultTTL.Milliseconds() {
		t.Errorf("ttl_ms = %d, want the default %d", got, client.DefaultTTL.Milliseconds())
	}

	// A context of hours asks for no more than the cluster's default acquire_timeout_max allows.
	long, cancelLong := context.WithTimeout(t.Context(), 3*time.Hour)
	defer cancelLong()
	if _, err := c.Acquire(long, "free2", client.WithoutAutoRenew()); err != nil {
		t.Fatalf("Acquire(free2) with a 3h context = %v", err)
	}
	reqs = acquireRequests(s, c)
	if got := reqs[len(reqs)-1].GetWaitMs(); got != client.ImplicitWaitMax.Milliseconds() {
		t.Errorf("wait_ms with a 3h context = %d, want ImplicitWaitMax (%d)", got, client.ImplicitWaitMax.Milliseconds())
	}
}

func TestTryAcquireDoesNotWait(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	holdAs(t, s, "busy", "other", time.Minute)
	if _, err := c.TryAcquire(testCtx(t), "busy", client.WithWait(time.Minute)); !errors.Is(err, client.ErrLocked) {
		t.Errorf("TryAcquire of a held lock = %v, want ErrLocked", err)
	}
	if reqs := acquireRequests(s, c); len(reqs) != 1 || reqs[0].GetWaitMs() != 0 {
		t.Errorf("requests %v, want one with wait_ms 0", reqs)
	}
}

func TestAcquireRefusesBadOptions(t *testing.T) {
	c := newClient(t, []string{"127.0.0.1:1"})
	tests := []struct {
		name string
		give []client.LockOption
	}{
		{"zero ttl", []client.LockOption{client.WithTTL(0)}},
		{"sub-millisecond ttl", []client.LockOption{client.WithTTL(time.Microsecond)}},
		{"negative wait", []client.LockOption{client.WithWait(-time.Second)}},
		{"empty owner", []client.LockOption{client.WithOwner("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Acquire(testCtx(t), "l", tt.give...); !errors.Is(err, client.ErrInvalid) {
				t.Errorf("Acquire = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := c.Acquire(testCtx(t), ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Acquire of an empty name = %v, want ErrInvalid", err)
	}
}

// DESIGN.md: "A waiter that gives up withdraws: the withdrawal removes it from the queue."
func TestCancelledAcquireLeavesTheQueue(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	holdAs(t, s, "busy", "other", time.Minute)

	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx, "busy", client.WithWait(time.Minute))
		errs <- err
	}()
	waitUntil(t, 5*time.Second, "the Acquire to queue", func() bool {
		info, err := c.Query(testCtx(t), "busy")
		return err == nil && info.Waiters == 1
	})
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Acquire = %v, want context.Canceled", err)
	}
	waitUntil(t, 5*time.Second, "the waiter to leave the queue", func() bool {
		info, err := c.Query(testCtx(t), "busy")
		return err == nil && info.Waiters == 0
	})
}

// DESIGN.md: "the idiomatic client renews automatically while the handle is held."
func TestAutoRenewKeepsTheLock(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	l, err := c.Acquire(ctx, "job", client.WithTTL(300*time.Millisecond))
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	waitUntil(t, 5*time.Second, "three renewals (over three leases' worth of time)", func() bool {
		return renewsBy(s, l.Owner()) >= 3
	})
	if isClosed(l.Lost()) {
		t.Fatalf("Lost closed while renewals succeed: %v", l.Err())
	}
	info, err := c.Query(ctx, "job")
	if err != nil || info.Owner != l.Owner() || info.Token != l.Token() {
		t.Errorf("Query = %+v, %v; want held by %q with token %d", info, err, l.Owner(), l.Token())
	}
	if err := l.Release(ctx); err != nil {
		t.Errorf("Release = %v, want nil", err)
	}
}

// DESIGN.md: "closes a Lost() channel when it can no longer prove it holds the lock."
func TestLostClosesWhenRenewalIsRefused(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	l, err := c.Acquire(testCtx(t), "job", client.WithTTL(300*time.Millisecond))
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	s.SetFault(clienttest.Fail(clienttest.Error(codes.FailedPrecondition, dlockv1.ReasonNotHeld, "lease passed"),
		dlockv1.Lock_Renew_FullMethodName))

	waitClosed(t, l.Lost(), 5*time.Second, "Lost to close after a refused renewal")
	if err := l.Err(); !errors.Is(err, client.ErrLockLost) || !errors.Is(err, client.ErrNotHeld) {
		t.Errorf("Err() = %v, want ErrLockLost wrapping ErrNotHeld", err)
	}
	if err := l.Renew(testCtx(t)); !errors.Is(err, client.ErrLockLost) {
		t.Errorf("Renew after loss = %v, want ErrLockLost", err)
	}
}

func TestLostClosesWhenTheLeaseRunsOutUnrenewed(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	s.SetFault(clienttest.Hang(dlockv1.Lock_Renew_FullMethodName))
	const ttl = 300 * time.Millisecond
	start := time.Now()
	l, err := c.Acquire(testCtx(t), "job", client.WithTTL(ttl))
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	waitClosed(t, l.Lost(), 5*time.Second, "Lost to close when renewals hang")
	if elapsed := time.Since(start); elapsed < ttl {
		t.Errorf("Lost closed %s after Acquire began, want no earlier than the %s lease", elapsed, ttl)
	}
	if err := l.Err(); !errors.Is(err, client.ErrLockLost) {
		t.Errorf("Err() = %v, want ErrLockLost", err)
	}
}

func TestWithoutAutoRenewTheLeaseEnds(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	l, err := c.Acquire(testCtx(t), "job", client.WithTTL(200*time.Millisecond), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	// Acquire itself renews once if the grant was slow (see TestLateGrantIsConfirmedByARenewal).
	confirmations := renewsBy(s, l.Owner())
	waitClosed(t, l.Lost(), 5*time.Second, "Lost to close at the lease end")
	if got := renewsBy(s, l.Owner()) - confirmations; got != 0 {
		t.Errorf("renewals after Acquire returned = %d, want 0 with WithoutAutoRenew", got)
	}
	if !errors.Is(l.Err(), client.ErrLockLost) {
		t.Errorf("Err() = %v, want ErrLockLost", l.Err())
	}
}

func TestManualRenewExtendsTheLease(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	l, err := c.Acquire(ctx, "job", client.WithTTL(time.Minute), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("Renew = %v, want nil", err)
	}
	if got := renewsBy(s, l.Owner()); got != 1 {
		t.Errorf("renewals = %d, want 1", got)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
	if err := l.Renew(ctx); !errors.Is(err, client.ErrNotHeld) {
		t.Errorf("Renew after Release = %v, want ErrNotHeld", err)
	}
}

// A grant that came after a long wait cannot be proven from the request's send time: Acquire confirms
// it with a renewal before returning it.
func TestLateGrantIsConfirmedByARenewal(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	holdAs(t, s, "job", "other", 200*time.Millisecond) // not renewed: the lease ends after 200ms

	l, err := c.Acquire(testCtx(t), "job", client.WithTTL(300*time.Millisecond), client.WithWait(5*time.Second))
	if err != nil {
		t.Fatalf("Acquire = %v, want the lock when the other lease ends", err)
	}
	defer l.Release(testCtx(t))
	if got := renewsBy(s, l.Owner()); got < 1 {
		t.Errorf("renewals before Acquire returned = %d, want at least 1 (the confirmation)", got)
	}
	if isClosed(l.Lost()) {
		t.Errorf("Lost closed on a confirmed grant: %v", l.Err())
	}
}

func TestReleaseRetryReusesTheHeader(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()}, client.WithRetryLimit(1))
	ctx := testCtx(t)
	l, err := c.Acquire(ctx, "job")
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	s.SetFault(clienttest.Fail(clienttest.Error(codes.Unavailable, dlockv1.ReasonNoLeader, "election"),
		dlockv1.Lock_Release_FullMethodName))
	if err := l.Release(ctx); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Release during an election = %v, want ErrUnavailable", err)
	}
	s.SetFault(nil)
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release again = %v, want nil", err)
	}
	calls := s.Calls(dlockv1.Lock_Release_FullMethodName)
	if len(calls) != 2 || calls[0].Header.GetSeq() != calls[1].Header.GetSeq() {
		t.Errorf("release calls %v, want two with the same seq", calls)
	}
	if err := l.Release(ctx); err != nil {
		t.Errorf("third Release = %v, want nil (the same final result)", err)
	}
}

func TestReleaseOfALostHoldIsRefused(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	l, err := c.Acquire(ctx, "job", client.WithTTL(100*time.Millisecond), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	waitClosed(t, l.Lost(), 5*time.Second, "the lease to end")
	// The client counts its lease from the send time, so the cluster may free the lock a moment later.
	other := newClient(t, []string{s.Addr()})
	if _, err := other.Acquire(ctx, "job", client.WithOwner("other"), client.WithWait(5*time.Second)); err != nil {
		t.Fatalf("Acquire by another owner after the lease = %v, want the lock", err)
	}
	if err := l.Release(ctx); !errors.Is(err, client.ErrHeldByOther) {
		t.Errorf("Release after the lock passed to another owner = %v, want ErrHeldByOther", err)
	}
}

func TestCloseEndsEveryHandle(t *testing.T) {
	s := clienttest.NewServer(t)
	c, err := client.New([]string{s.Addr()})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx := testCtx(t)
	renewed, err := c.Acquire(ctx, "a")
	if err != nil {
		t.Fatalf("Acquire(a) = %v", err)
	}
	plain, err := c.Acquire(ctx, "b", client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("Acquire(b) = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for _, l := range []*client.Lock{renewed, plain} {
		if !isClosed(l.Lost()) {
			t.Errorf("%s: Lost open after Close", l.Name())
		}
		if err := l.Err(); !errors.Is(err, client.ErrLockLost) || !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s: Err() = %v, want ErrLockLost and ErrClosed", l.Name(), err)
		}
		if err := l.Release(ctx); !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s: Release after Close = %v, want ErrClosed", l.Name(), err)
		}
	}
}
