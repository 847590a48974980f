package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// WAIT_TIMEOUT is a promise that the caller holds nothing and waits
// nowhere. When the wait ends on a node that cannot commit the waiter's
// withdrawal (no quorum), the queue may still grant the lock, so the answer
// is Unavailable (outcome unknown), not WAIT_TIMEOUT.
func TestWaitEndingWithoutQuorumIsNotAWaitTimeout(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	ctx := ctxT(t)
	leader := c.WaitLeader(10 * time.Second)
	f1, f2 := (leader+1)%3, (leader+2)%3
	cl := dial(t, c)
	if _, err := cl.lock[leader].Acquire(ctx, &dlockv1.AcquireRequest{Name: "L", Owner: "holder", TtlMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cl.lock[f1].Acquire(ctx, &dlockv1.AcquireRequest{Name: "L", Owner: "waiter", TtlMs: 60_000, WaitMs: 1500})
		done <- err
	}()
	// Once the waiter is queued, the node it waits on loses its quorum.
	for {
		resp, err := cl.lock[f1].Query(ctx, &dlockv1.QueryRequest{Name: "L", Stale: true})
		if err == nil && resp.GetLock().GetWaiters() == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Crash(leader)
	c.Crash(f2)
	err := <-done
	wantErr(t, "wait ended without quorum", err, codes.Unavailable, dlockv1.ReasonNoLeader)
}

// A client retries an acquire after its wait ran out, so the retry asks to
// wait 0 ms. It is the same request as the first send, which is still
// queued, so the retry takes over that send's place in the queue. The retry's
// WAIT_TIMEOUT must leave nothing queued: when the holder releases, the lock
// goes to nobody. This is the history a chaos campaign caught (inprocess seed
// 534111): a waiter told its wait had ended was granted the lock 30 ms later.
func TestRetryWithNoWaitLeftLeavesTheQueue(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	cl := dial(t, c)
	ctx := ctxT(t)
	held, err := cl.lock[0].Acquire(ctx, &dlockv1.AcquireRequest{Name: "l", Owner: "holder", TtlMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(try uint32) *dlockv1.RequestHeader {
		return &dlockv1.RequestHeader{ClientId: "c", Seq: 1, Try: try}
	}
	// The first send queues and waits; the client stops listening to it
	// (its connection to that node is cut, so the node does not know yet).
	abandoned, abandon := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := cl.lock[1].Acquire(abandoned, &dlockv1.AcquireRequest{Header: hdr(1), Name: "l", Owner: "o", TtlMs: 60_000, WaitMs: 60_000})
		first <- err
	}()
	waitWaiters(t, cl.lock[2], "l", 1)
	_, err = cl.lock[2].Acquire(ctx, &dlockv1.AcquireRequest{Header: hdr(2), Name: "l", Owner: "o", TtlMs: 60_000, WaitMs: 0})
	wantErr(t, "retry with no wait left", err, codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout)
	waitWaiters(t, cl.lock[0], "l", 0)
	// The abandoned send ends late; its withdrawal names a send the retry
	// replaced and changes nothing.
	abandon()
	if err := <-first; status.Code(err) != codes.Canceled {
		t.Fatalf("the abandoned first send: %v, want Canceled", err)
	}
	if _, err := cl.lock[0].Release(ctx, &dlockv1.ReleaseRequest{Name: "l", Owner: "holder", Token: held.Token}); err != nil {
		t.Fatal(err)
	}
	q, err := cl.lock[1].Query(ctx, &dlockv1.QueryRequest{Name: "l"})
	if err != nil || q.Lock.Owner != "" {
		t.Fatalf("lock after the release: %v, %v; want free (the retry was told its wait ended)", q, err)
	}
}
