package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type conns struct {
	lock []dlockv1.LockClient
	kv   []dlockv1.KVClient
}

func dial(t *testing.T, c *testcluster.InProcess) conns {
	t.Helper()
	var out conns
	for _, ep := range c.Endpoints() {
		cc, err := grpc.NewClient("passthrough:///"+ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		out.lock = append(out.lock, dlockv1.NewLockClient(cc))
		out.kv = append(out.kv, dlockv1.NewKVClient(cc))
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reason extracts the ErrorInfo reason of a gRPC error.
func reason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func wantErr(t *testing.T, what string, err error, code codes.Code, why string) {
	t.Helper()
	if status.Code(err) != code || reason(err) != why {
		t.Fatalf("%s: got %v (code %v, reason %q), want code %v reason %q", what, err, status.Code(err), reason(err), code, why)
	}
}

// A bad request gets InvalidArgument naming what was wrong, and changes nothing.
func TestBadRequestsChangeNothing(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	long := strings.Repeat("x", 1025)
	tests := []struct {
		name string
		call func() error
		want string // part of the message
	}{
		{"acquire with empty name", func() error {
			_, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Owner: "o", TtlMs: 1000})
			return err
		}, "name is empty"},
		{"acquire with empty owner", func() error {
			_, err := cl.lock[1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", TtlMs: 1000})
			return err
		}, "owner is empty"},
		{"acquire with ttl 0", func() error {
			_, err := cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "o"})
			return err
		}, "ttl_ms 0"},
		{"acquire with negative ttl", func() error {
			_, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: -5})
			return err
		}, "ttl_ms -5"},
		{"acquire with ttl over lease_max", func() error {
			_, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1 << 40})
			return err
		}, "limits.lease_max"},
		{"acquire with negative wait", func() error {
			_, err := cl.lock[1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1000, WaitMs: -1})
			return err
		}, "wait_ms -1"},
		{"acquire with an over-long name", func() error {
			_, err := cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Name: long, Owner: "o", TtlMs: 1000})
			return err
		}, "limits.name_bytes_max"},
		{"put with empty key", func() error {
			_, err := cl.kv[0].Put(ctx, &dlockv1.PutRequest{Value: []byte("v")})
			return err
		}, "key is empty"},
		{"put with a value over the limit", func() error {
			_, err := cl.kv[1].Put(ctx, &dlockv1.PutRequest{Key: "k", Value: make([]byte, 1<<20+1)})
			return err
		}, "limits.value_bytes_max"},
		{"release with empty owner", func() error {
			_, err := cl.lock[2].Release(ctx, &dlockv1.ReleaseRequest{Name: "l"})
			return err
		}, "owner is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantErr(t, tt.name, err, codes.InvalidArgument, dlockv1.ReasonInvalid)
			if !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Fatalf("message %q does not say %q", status.Convert(err).Message(), tt.want)
			}
		})
	}
	locks, err := cl.lock[0].List(ctx, &dlockv1.ListLocksRequest{})
	if err != nil || len(locks.Locks) != 0 {
		t.Fatalf("locks after bad requests = %v, %v; want none", locks, err)
	}
	keys, err := cl.kv[0].List(ctx, &dlockv1.ListKeysRequest{})
	if err != nil || len(keys.Kvs) != 0 {
		t.Fatalf("keys after bad requests = %v, %v; want none", keys, err)
	}
}

// Releases and renewals by the wrong party are refused with a reason.
func TestWrongPartyIsRefused(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	got, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "a", TtlMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.lock[1].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "b"})
	wantErr(t, "release by another owner", err, codes.FailedPrecondition, dlockv1.ReasonHeldByOther)
	_, err = cl.lock[2].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "a", Token: got.Token + 1})
	wantErr(t, "release with a wrong token", err, codes.FailedPrecondition, dlockv1.ReasonTokenMismatch)
	_, err = cl.lock[0].Release(ctx, &dlockv1.ReleaseRequest{Name: "never", Owner: "a"})
	wantErr(t, "release of an unknown lock", err, codes.FailedPrecondition, dlockv1.ReasonNotHeld)
	_, err = cl.lock[1].Renew(ctx, &dlockv1.RenewRequest{Name: "l", Owner: "b"})
	wantErr(t, "renew by another owner", err, codes.FailedPrecondition, dlockv1.ReasonHeldByOther)
	_, err = cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "b", TtlMs: 1000})
	wantErr(t, "try-acquire of a held lock", err, codes.FailedPrecondition, dlockv1.ReasonLocked)
	_, err = cl.kv[0].Get(ctx, &dlockv1.GetRequest{Key: "missing"})
	wantErr(t, "get of a missing key", err, codes.NotFound, dlockv1.ReasonNotFound)
	_, err = cl.lock[0].Query(ctx, &dlockv1.QueryRequest{Name: "never"})
	wantErr(t, "query of an unknown lock", err, codes.NotFound, dlockv1.ReasonNotFound)
	q, err := cl.lock[1].Query(ctx, &dlockv1.QueryRequest{Name: "l"})
	if err != nil || q.Lock.Owner != "a" || q.Lock.Token != got.Token {
		t.Fatalf("lock after refused calls = %v, %v; want still held by a with token %d", q, err, got.Token)
	}
}

// A waiter whose wait ends, or whose caller goes away, leaves the queue.
func TestWaiterWhoGivesUpLeavesTheQueue(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	if _, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "a", TtlMs: 60000}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.lock[1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "b", TtlMs: 1000, WaitMs: 200})
	wantErr(t, "acquire whose wait ends", err, codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout)
	waitWaiters(t, cl.lock[2], "l", 0)

	gone, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cl.lock[2].Acquire(gone, &dlockv1.AcquireRequest{Name: "l", Owner: "c", TtlMs: 1000, WaitMs: 60000})
		done <- err
	}()
	waitWaiters(t, cl.lock[0], "l", 1)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled acquire returned %v, want Canceled", err)
	}
	waitWaiters(t, cl.lock[0], "l", 0)
}

func waitWaiters(t *testing.T, lc dlockv1.LockClient, name string, n uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := lc.Query(context.Background(), &dlockv1.QueryRequest{Name: name})
		if err == nil && q.Lock.Waiters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: %v, %v after 10s; want %d waiters", name, q, err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A release hands the lock to a waiter blocked on another node, with a
// larger fencing token, in the same step.
func TestReleaseHandsOverToWaiterOnAnotherNode(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	first, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "a", TtlMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *dlockv1.AcquireResponse, 1)
	go func() {
		r, err := cl.lock[1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "b", TtlMs: 60000, WaitMs: 20000})
		if err != nil {
			t.Errorf("waiting acquire: %v", err)
		}
		got <- r
	}()
	waitWaiters(t, cl.lock[2], "l", 1)
	rel, err := cl.lock[2].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "a", Token: first.Token})
	if err != nil || rel.NextOwner != "b" {
		t.Fatalf("release = %v, %v; want handed to b", rel, err)
	}
	second := <-got
	if second == nil || second.Token <= first.Token || second.Nonce != first.Nonce+1 {
		t.Fatalf("waiter's grant = %v after %v; want a larger token and the next nonce", second, first)
	}
}

// A retried write (same client id and seq) is applied once: a retried
// release answers like the first, and an acquire retried after its lock
// was released neither takes the lock again nor claims to hold it.
func TestRetriedWritesApplyOnce(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	acq := &dlockv1.AcquireRequest{Header: &dlockv1.RequestHeader{ClientId: "c", Seq: 1}, Name: "l", Owner: "a", TtlMs: 60000}
	first, err := cl.lock[0].Acquire(ctx, acq)
	if err != nil {
		t.Fatal(err)
	}
	rel := &dlockv1.ReleaseRequest{Header: &dlockv1.RequestHeader{ClientId: "c", Seq: 2}, Name: "l", Owner: "a"}
	for i := 0; i < 2; i++ {
		if _, err := cl.lock[i].Release(ctx, rel); err != nil {
			t.Fatalf("release attempt %d: %v (a retry must return the first answer)", i+1, err)
		}
	}
	again, err := cl.lock[2].Acquire(ctx, acq)
	wantErr(t, "acquire retried after its release", err, codes.FailedPrecondition, dlockv1.ReasonNotHeld)
	if again != nil {
		t.Fatalf("retried acquire answered %v (first grant had token %d); want no grant", again, first.Token)
	}
	q, err := cl.lock[1].Query(ctx, &dlockv1.QueryRequest{Name: "l"})
	if err != nil || q.Lock.Owner != "" {
		t.Fatalf("lock after a retried acquire = %v, %v; want free", q, err)
	}
	_, err = cl.lock[0].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "a"})
	if reason(err) != dlockv1.ReasonNotHeld {
		t.Fatalf("a new release = %v, want NOT_HELD", err)
	}
}

// A flood of waiters past limits.waiters_per_lock_max is refused with
// ResourceExhausted; the queue keeps the waiters it had.
func TestWaitersPastTheLimitAreRefused(t *testing.T) {
	c := testcluster.StartInProcessWith(t, 3, func(cfg *config.Config) { cfg.Limits.WaitersPerLockMax = 2 })
	cl := dial(t, c)
	ctx := ctxT(t)
	if _, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "holder", TtlMs: 60000}); err != nil {
		t.Fatal(err)
	}
	queued, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	for i, owner := range []string{"w1", "w2"} {
		go func() {
			_, err := cl.lock[i].Acquire(queued, &dlockv1.AcquireRequest{Name: "l", Owner: owner, TtlMs: 1000, WaitMs: 60000})
			done <- err
		}()
		waitWaiters(t, cl.lock[2], "l", uint32(i+1))
	}
	_, err := cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "w3", TtlMs: 1000, WaitMs: 60000})
	wantErr(t, "a third waiter on a queue of two", err, codes.ResourceExhausted, dlockv1.ReasonLimit)
	waitWaiters(t, cl.lock[1], "l", 2)
	cancel()
	for range 2 {
		<-done
	}
}

// An owner's refresh (a repeated acquire) that fails never releases the
// hold it already has: the lock is not handed to the next waiter early.
func TestFailedRefreshKeepsTheHold(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	first, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := cl.lock[1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "next", TtlMs: 1000, WaitMs: 20000})
		waiting <- err
	}()
	waitWaiters(t, cl.lock[2], "l", 1)
	for i := range 20 {
		short, cancel := context.WithTimeout(ctx, time.Duration(200+100*i)*time.Microsecond)
		_, _ = cl.lock[i%3].Acquire(short, &dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 60000, WaitMs: 5000})
		cancel()
	}
	for i := range 3 {
		q, err := cl.lock[i].Query(ctx, &dlockv1.QueryRequest{Name: "l"})
		if err != nil || q.Lock.Owner != "o" || q.Lock.Token != first.Token {
			t.Fatalf("after failed refreshes node %d reports %v, %v; want still held by o with token %d", i+1, q, err, first.Token)
		}
	}
	if _, err := cl.lock[0].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "o"}); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the waiter was not granted the lock after its release: %v", err)
	}
}

// A retried acquire whose first attempt's wait was withdrawn does not sit
// out its whole wait: it is told at once that it is no longer queued.
func TestRetryOfAWithdrawnWaitEndsAtOnce(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	if _, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "holder", TtlMs: 60000}); err != nil {
		t.Fatal(err)
	}
	req := &dlockv1.AcquireRequest{Header: &dlockv1.RequestHeader{ClientId: "c", Seq: 9}, Name: "l", Owner: "o", TtlMs: 1000, WaitMs: 60000}
	gone, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cl.lock[1].Acquire(gone, req)
		done <- err
	}()
	waitWaiters(t, cl.lock[2], "l", 1)
	cancel()
	<-done
	waitWaiters(t, cl.lock[2], "l", 0)
	retry, cancelRetry := context.WithTimeout(ctx, 20*time.Second)
	defer cancelRetry()
	_, err := cl.lock[2].Acquire(retry, req)
	wantErr(t, "retry of a withdrawn wait", err, codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout)
}

// A waiter whose node stops gracefully keeps its place: the client retries
// on another node and is granted the lock before a waiter queued after it.
func TestWaiterKeepsItsPlaceWhenItsNodeStops(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	if _, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "holder", TtlMs: 60000}); err != nil {
		t.Fatal(err)
	}
	eps := c.Endpoints()
	first, err := client.New([]string{eps[1], eps[2]})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	granted := make(chan string, 2)
	go func() {
		l, err := first.Acquire(ctx, "l", client.WithOwner("first"), client.WithWait(20*time.Second), client.WithoutAutoRenew())
		if err != nil {
			t.Errorf("first waiter: %v", err)
			granted <- ""
			return
		}
		granted <- l.Owner()
		l.Release(ctx)
	}()
	waitWaiters(t, cl.lock[0], "l", 1)
	go func() {
		_, err := cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "second", TtlMs: 60000, WaitMs: 20000})
		if err != nil {
			t.Errorf("second waiter: %v", err)
		}
		granted <- "second"
	}()
	waitWaiters(t, cl.lock[0], "l", 2)
	c.StopServer(1)
	if _, err := cl.lock[0].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "holder"}); err != nil {
		t.Fatal(err)
	}
	if a, b := <-granted, <-granted; a != "first" || b != "second" {
		t.Fatalf("grant order after the first waiter's node stopped = %q, %q; want first, second", a, b)
	}
}
