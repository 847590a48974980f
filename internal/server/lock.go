package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// lockService implements dlockv1.LockServer.
type lockService struct {
	dlockv1.UnimplementedLockServer
	*Server
}

// withdrawTimeout bounds the withdrawal of a waiter that gave up; it runs
// on a fresh context because the caller's has ended.
const withdrawTimeout = 5 * time.Second

// Acquire grants the lock or queues the caller and waits server-side for
// the grant until wait_ms (or the caller's context) ends.
func (s lockService) Acquire(ctx context.Context, req *dlockv1.AcquireRequest) (resp *dlockv1.AcquireResponse, err error) {
	start := time.Now()
	if err := s.validateAcquire(req); err != nil {
		return nil, err
	}
	// A caller that may be in the queue and leaves without a grant (its wait
	// ended, it went away, or the outcome of its acquire is unknown) is
	// withdrawn, so nobody is granted a lock on behalf of a gone waiter.
	// The withdrawal names this call's attempt, so it never touches a wait
	// or hold of another call of the same owner.
	mayBeQueued := req.WaitMs > 0
	attempt := newAttempt()
	defer func() {
		if err == nil || !mayBeQueued {
			return
		}
		if s.isStopping() {
			// A stopping node leaves the wait in place for the client's
			// retry on another node. Its timer may have fired as the stop
			// began, but the queue may still grant this owner: the answer
			// is the stop's, never WAIT_TIMEOUT.
			if reasonOf(err) == dlockv1.ReasonWaitTimeout {
				err = errShuttingDown()
			}
			return
		}
		if werr := s.withdraw(req.Name, req.Owner, attempt); werr != nil && reasonOf(err) == dlockv1.ReasonWaitTimeout {
			// WAIT_TIMEOUT promises the caller holds nothing and waits
			// nowhere. Without a committed withdrawal the queue may still
			// grant this owner until the wait's deadline passes in cluster
			// time, so the outcome is unknown: the caller may retry (the
			// retry withdraws again) or let the lease run out.
			err = statusError(codes.Unavailable, dlockv1.ReasonNoLeader, fmt.Sprintf(
				"dlock: lock %s: the wait ended but its withdrawal was not committed (%v); the lock may still be granted to this owner",
				quote(req.Name), werr))
		}
	}()
	cmd := withHeader(req.Header, &fsmpb.Command{Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{
		Name: req.Name, Owner: req.Owner, TtlNanos: int64(ms(req.TtlMs)), WaitNanos: int64(ms(req.WaitMs)),
		Attempt: attempt, Try: req.GetHeader().GetTry(),
	}}})
	res, idx, err := s.propose1(ctx, cmd)
	if err != nil {
		return nil, err
	}
	switch {
	case res.Code == fsmpb.Code_OK && !res.Replayed:
		return acquireResponse(res.Token, res.Nonce, res.TtlNanos, res.AcquiredUnixNanos), nil
	case res.Code != fsmpb.Code_OK && res.Code != fsmpb.Code_QUEUED:
		// A definite answer that queued and granted nothing.
		mayBeQueued = false
		return nil, resultError(res)
	case res.Code == fsmpb.Code_QUEUED:
		// A retry whose wait ran out asks for no wait (wait_ms 0), but if an
		// earlier send of its request queued, this call took over that
		// send's place in the queue (whose own withdrawal is now ignored):
		// only this call's withdrawal can take the owner out of it.
		mayBeQueued = true
	}
	// Queued, or a remembered answer: look at this node's state once it
	// has applied the acquire.
	if err := s.node.WaitApplied(ctx, idx); err != nil {
		return nil, nodeError(err)
	}
	if res.Code == fsmpb.Code_OK {
		return s.confirmGrant(req, res)
	}
	return s.awaitGrant(ctx, req, start.Add(ms(req.WaitMs)))
}

// confirmGrant answers a remembered OK only if the hold it names is still
// current. A retried acquire gets the first attempt's result, and that hold
// may since have been withdrawn, released or expired: the caller must not
// be told it holds a lock it does not.
func (s lockService) confirmGrant(req *dlockv1.AcquireRequest, res *fsmpb.Result) (*dlockv1.AcquireResponse, error) {
	resp, ok := s.heldBy(req.Name, req.Owner)
	if !ok || resp.Token != res.Token {
		return nil, statusError(codes.FailedPrecondition, dlockv1.ReasonNotHeld,
			"dlock: lock "+quote(req.Name)+" was granted to this owner but is no longer held (released, withdrawn or expired)")
	}
	return resp, nil
}

func (s *Server) validateAcquire(req *dlockv1.AcquireRequest) error {
	if err := s.checkName("name", req.Name); err != nil {
		return err
	}
	if err := s.checkName("owner", req.Owner); err != nil {
		return err
	}
	if err := s.checkTTL(req.TtlMs, false); err != nil {
		return err
	}
	return s.checkWait(req.WaitMs)
}

// awaitGrant waits for a queued owner's grant until deadline or ctx ends.
// Its caller withdraws the waiter on failure, which also releases a grant
// that raced with the timeout, so no lock is left with an owner who stopped
// waiting.
func (s *Server) awaitGrant(ctx context.Context, req *dlockv1.AcquireRequest, deadline time.Time) (*dlockv1.AcquireResponse, error) {
	// Watch before the first look at the state: a grant applied before the
	// watch shows in the state, one applied after it signals.
	granted, stop := s.waiters.watch(req.Name, req.Owner)
	defer stop()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		resp, held, queued := s.waitState(req.Name, req.Owner)
		if held {
			return resp, nil
		}
		if !queued {
			// Granted and already released or expired, or withdrawn by an
			// earlier attempt of this request: nothing left to wait for.
			return nil, statusError(codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout,
				"dlock: lock "+quote(req.Name)+": this owner is no longer queued")
		}
		select {
		case <-granted:
			continue
		case <-timer.C:
			return nil, statusError(codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout,
				"dlock: lock "+quote(req.Name)+" not granted within wait_ms")
		case <-ctx.Done():
			return nil, nodeError(ctx.Err())
		case <-s.stopping:
			return nil, errShuttingDown()
		}
	}
}

// errShuttingDown answers an acquire that was waiting on a node that began
// to stop: its wait is left in place.
func errShuttingDown() error {
	return statusError(codes.Unavailable, dlockv1.ReasonShuttingDown,
		"dlock: this node is stopping; retry the acquire on another node to keep its place")
}

// heldBy reports the hold if owner holds name on this node's state.
func (s *Server) heldBy(name, owner string) (*dlockv1.AcquireResponse, bool) {
	resp, held, _ := s.waitState(name, owner)
	return resp, held
}

// waitState reads, on this node's state, whether owner holds name (and the
// hold) and whether it waits in name's queue.
func (s *Server) waitState(name, owner string) (resp *dlockv1.AcquireResponse, held, queued bool) {
	var v fsm.LockView
	var ok bool
	_ = s.node.Read(context.Background(), true, func(st *fsm.State) {
		v, ok = st.Lock(name)
		queued = st.Queued(name, owner)
	})
	if !ok || !v.Held || v.Owner != owner {
		return nil, false, queued
	}
	return acquireResponse(v.Token, v.Nonce, v.TTL, v.AcquiredUnixNanos), true, false
}

// newAttempt returns a random, non-zero id for one Acquire call.
func newAttempt() uint64 {
	for {
		if a := rand.Uint64(); a != 0 {
			return a
		}
	}
}

// withdraw commits the withdrawal of attempt's claim on owner's wait or
// hold of name.
func (s *Server) withdraw(name, owner string, attempt uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	cmd := &fsmpb.Command{Op: &fsmpb.Command_Withdraw{Withdraw: &fsmpb.Withdraw{Name: name, Owner: owner, Attempt: attempt}}}
	if _, _, err := s.node.Propose(ctx, []*fsmpb.Command{cmd}); err != nil {
		// The waiter's deadline is in the replicated queue too: it is never
		// granted past it, even if this withdrawal is lost.
		s.log.Warn("withdraw waiter failed", "lock", name, "owner", owner, "err", err)
		return err
	}
	return nil
}

func acquireResponse(token, nonce uint64, ttl, acquired int64) *dlockv1.AcquireResponse {
	return &dlockv1.AcquireResponse{Token: token, Nonce: nonce, TtlMs: time.Duration(ttl).Milliseconds(), AcquiredUnixNano: acquired}
}

// Renew refreshes a held lock's lease.
func (s lockService) Renew(ctx context.Context, req *dlockv1.RenewRequest) (*dlockv1.RenewResponse, error) {
	if err := s.checkName("name", req.Name); err != nil {
		return nil, err
	}
	if err := s.checkName("owner", req.Owner); err != nil {
		return nil, err
	}
	if err := s.checkTTL(req.TtlMs, true); err != nil {
		return nil, err
	}
	res, _, err := s.propose1(ctx, withHeader(req.Header, &fsmpb.Command{Op: &fsmpb.Command_Renew{Renew: &fsmpb.Renew{
		Name: req.Name, Owner: req.Owner, Token: req.Token, TtlNanos: int64(ms(req.TtlMs)),
	}}}))
	if err != nil {
		return nil, err
	}
	if res.Code != fsmpb.Code_OK {
		return nil, resultError(res)
	}
	return &dlockv1.RenewResponse{Token: res.Token, TtlMs: time.Duration(res.TtlNanos).Milliseconds()}, nil
}

// Release frees a held lock and hands it to the next waiter.
func (s lockService) Release(ctx context.Context, req *dlockv1.ReleaseRequest) (*dlockv1.ReleaseResponse, error) {
	if err := s.checkName("name", req.Name); err != nil {
		return nil, err
	}
	if err := s.checkName("owner", req.Owner); err != nil {
		return nil, err
	}
	res, _, err := s.propose1(ctx, withHeader(req.Header, &fsmpb.Command{Op: &fsmpb.Command_Release{Release: &fsmpb.Release{
		Name: req.Name, Owner: req.Owner, Token: req.Token,
	}}}))
	if err != nil {
		return nil, err
	}
	if res.Code != fsmpb.Code_OK {
		return nil, resultError(res)
	}
	return &dlockv1.ReleaseResponse{NextOwner: res.NextOwner}, nil
}

// Query reports one lock.
func (s lockService) Query(ctx context.Context, req *dlockv1.QueryRequest) (*dlockv1.QueryResponse, error) {
	if err := s.checkName("name", req.Name); err != nil {
		return nil, err
	}
	var v fsm.LockView
	var ok bool
	if err := s.read(ctx, req.Stale, func(st *fsm.State) { v, ok = st.Lock(req.Name) }); err != nil {
		return nil, err
	}
	if !ok {
		return nil, statusError(codes.NotFound, dlockv1.ReasonNotFound, "dlock: lock "+quote(req.Name)+" not found")
	}
	return &dlockv1.QueryResponse{Lock: s.lockInfo(v)}, nil
}

// List reports locks in name order, a page at a time.
func (s lockService) List(ctx context.Context, req *dlockv1.ListLocksRequest) (*dlockv1.ListLocksResponse, error) {
	var views []fsm.LockView
	var more bool
	err := s.read(ctx, req.Stale, func(st *fsm.State) {
		views, more = st.Locks(req.Prefix, req.StartAfter, pageSize(req.Limit))
	})
	if err != nil {
		return nil, err
	}
	resp := &dlockv1.ListLocksResponse{More: more}
	for _, v := range views {
		resp.Locks = append(resp.Locks, s.lockInfo(v))
	}
	return resp, nil
}

func (s *Server) lockInfo(v fsm.LockView) *dlockv1.LockInfo {
	// A free lock reports its last hold's token, TTL and grant time, with
	// no owner and nothing remaining.
	li := &dlockv1.LockInfo{Name: v.Name, Nonce: v.Nonce, Waiters: uint32(v.Waiters), Token: v.Token,
		TtlMs: time.Duration(v.TTL).Milliseconds(), AcquiredUnixNano: v.AcquiredUnixNanos}
	if v.Held {
		li.Owner = v.Owner
		li.RemainingMs = max(time.Duration(v.ExpiresNanos-s.node.ClusterNow()).Milliseconds(), 0)
	}
	return li
}

// quote quotes a name for a message, cut to about 64 bytes on a rune
// boundary: a status message must be valid UTF-8 to carry its details.
func quote(s string) string {
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return `"` + s + `"`
}
