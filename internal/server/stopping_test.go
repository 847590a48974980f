package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// On a node that has begun to stop, a waiting acquire leaves its wait in
// place for the client's retry elsewhere, so it must never answer
// WAIT_TIMEOUT: the queue may still grant the owner. Here a retry with no
// wait left takes over its request's place in the queue as the node stops;
// its expired timer and the stop are both ready when it waits, and either
// may be picked, so the call is made many times.
func TestStoppingNodeNeverAnswersWaitTimeoutForAWaitItLeaves(t *testing.T) {
	limits := config.Default().Limits
	for i := range 64 {
		n := &fsmNode{st: fsm.New(stateLimits(limits))}
		s := New(n, NewWaiters(), Options{Limits: limits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		header := func(try uint32) *fsmpb.Command {
			return &fsmpb.Command{ClientId: "c", Seq: 1, Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{
				Name: "l", Owner: "o", TtlNanos: int64(time.Minute), WaitNanos: int64(time.Minute), Attempt: 1, Try: try}}}
		}
		// The holder, then the request's first send, queued.
		if _, _, err := n.Propose(context.Background(), []*fsmpb.Command{{Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{
			Name: "l", Owner: "holder", TtlNanos: int64(time.Minute), Attempt: 9}}}, header(1)}); err != nil {
			t.Fatal(err)
		}
		s.stoppingOnce.Do(func() { close(s.stopping) })
		_, err := lockService{Server: s}.Acquire(context.Background(), &dlockv1.AcquireRequest{
			Header: &dlockv1.RequestHeader{ClientId: "c", Seq: 1, Try: 2}, Name: "l", Owner: "o", TtlMs: 60_000})
		if reason := reasonOf(err); reason != dlockv1.ReasonShuttingDown || !n.st.Queued("l", "o") {
			t.Fatalf("call %d: the retry on a stopping node answered %v (reason %q), owner still queued %t; "+
				"want SHUTTING_DOWN with the wait left in place", i, err, reason, n.st.Queued("l", "o"))
		}
	}
}
