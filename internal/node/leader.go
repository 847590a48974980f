package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// leaderState is what this node knows while it leads: the cluster time it
// took over at and its monotonic clock reading then. Cluster time on the
// leader is base + clock elapsed since start, so it never follows a wall
// clock jump and stands still between leaders.
type leaderState struct {
	mu sync.Mutex
	// epoch counts leadership changes (resets). Leader duties write the
	// fields below only for the epoch they were started in: a cancelled
	// duty from an earlier leadership may still be running, and must not
	// overwrite a newer leader's state or revive a laid-down one.
	epoch   uint64
	stamped bool // base and start are set: this leader may stamp entries
	ready   bool // its LeaderStart is applied: it serves clients
	base    int64
	start   time.Time
}

func (l *leaderState) snapshot() (stamped, ready bool, base int64, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stamped, l.ready, l.base, l.start
}

// reset lays leadership down and starts a new epoch, which it returns.
func (l *leaderState) reset() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stamped, l.ready = false, false
	l.epoch++
	return l.epoch
}

// stamp starts cluster time at base as of start, if epoch is current.
func (l *leaderState) stamp(epoch uint64, base int64, start time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch {
		return false
	}
	l.base, l.start, l.stamped = base, start, true
	return true
}

// serve marks the leader ready to serve, if epoch is current.
func (l *leaderState) serve(epoch uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch || !l.stamped {
		return false
	}
	l.ready = true
	return true
}

// leaderClusterNow returns cluster time by this leader's clock, and false
// if this node may not stamp entries.
func (n *Node) leaderClusterNow() (int64, bool) {
	stamped, _, base, start := n.lead.snapshot()
	if !stamped {
		return 0, false
	}
	return base + int64(n.clock().Sub(start)), true
}

// isReady reports whether this node leads and serves client writes.
func (n *Node) isReady() bool {
	_, ready, _, _ := n.lead.snapshot()
	return ready
}

// watchLeadership takes up and lays down the leader's duties as Raft
// reports leadership changes. It cancels old duties without waiting for
// them (they may be blocked on a Raft future); the epoch fences them off.
func (n *Node) watchLeadership() {
	defer n.workers.Done()
	var stopDuties context.CancelFunc
	layDown := func() uint64 {
		if stopDuties != nil {
			stopDuties()
			stopDuties = nil
		}
		return n.lead.reset()
	}
	defer layDown()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-n.raft.LeaderCh():
			epoch := layDown()
			if isLeader {
				ctx, cancel := context.WithCancel(context.Background())
				stopDuties = cancel
				n.workers.Add(1)
				go n.leaderDuties(ctx, epoch)
			}
		}
	}
}

// leaderDuties runs while this node leads in epoch: it takes over cluster
// time, commits LeaderStart, then expires leases until ctx ends.
func (n *Node) leaderDuties(ctx context.Context, epoch uint64) {
	defer n.workers.Done()
	for !n.takeOver(ctx, epoch) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.timing.CommitTimeout):
		}
	}
	n.expireLeases(ctx)
}

// takeOver applies the whole log (Barrier), starts cluster time from the
// last applied entry's, and commits LeaderStart, which re-arms every lease.
// Only then does the node serve. It changes leader state only while epoch
// is current, so a takeOver outliving its leadership changes nothing.
func (n *Node) takeOver(ctx context.Context, epoch uint64) bool {
	if ctx.Err() != nil || n.raft.State() != raft.Leader {
		return false
	}
	if err := n.raft.Barrier(n.timing.ApplyTimeout).Error(); err != nil {
		n.log.Warn("leader barrier failed", "err", err)
		return false
	}
	var base int64
	n.replica.view(func(s *fsm.State) { base = s.Now() })
	if !n.lead.stamp(epoch, base, n.clock()) {
		return false
	}
	cmd := &fsmpb.Command{Op: &fsmpb.Command_LeaderStart{LeaderStart: &fsmpb.LeaderStart{LeaderId: n.cfg.ID.SelfID}}}
	if _, _, err := n.proposeLocal(ctx, []*fsmpb.Command{cmd}, true); err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			n.log.Warn("leader start failed", "err", err)
		}
		return false
	}
	if !n.lead.serve(epoch) {
		return false
	}
	n.log.Info("leading", "term", n.raft.CurrentTerm(), "cluster_time", time.Duration(base))
	return true
}

// expiryPollMax bounds how late a lease's expiry can be proposed after a
// new hold with an earlier deadline appears; leases only ever end late.
const expiryPollMax = 50 * time.Millisecond

// expireBatchMax bounds the Expire commands proposed at once.
const expireBatchMax = 256

// expireLeases proposes Expire for every hold whose deadline has passed on
// this leader's clock. The state machine checks again, so a stale leader's
// proposal is harmless.
func (n *Node) expireLeases(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now, ok := n.leaderClusterNow()
		if !ok {
			return
		}
		var cmds []*fsmpb.Command
		n.replica.view(func(s *fsm.State) {
			for _, h := range s.Expired(now, expireBatchMax) {
				cmds = append(cmds, &fsmpb.Command{Op: &fsmpb.Command_Expire{Expire: &fsmpb.Expire{Name: h.Name, Token: h.Token}}})
			}
		})
		if len(cmds) > 0 {
			if _, _, err := n.proposeLocal(ctx, cmds, false); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				n.log.Warn("expire leases failed", "err", err, "holds", len(cmds))
			}
		}
		timer.Reset(n.nextExpiryWait())
	}
}

func (n *Node) nextExpiryWait() time.Duration {
	now, ok := n.leaderClusterNow()
	if !ok {
		return expiryPollMax
	}
	wait := expiryPollMax
	n.replica.view(func(s *fsm.State) {
		if _, _, at, ok := s.NextExpiry(); ok {
			wait = min(wait, max(time.Duration(at-now), 0))
		}
	})
	return wait
}
