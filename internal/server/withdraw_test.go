package server_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

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
