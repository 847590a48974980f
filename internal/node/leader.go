package node

import (
	"context"
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
	mu      sync.Mutex
	term    uint64
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

func (l *leaderState) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stamped, l.ready = false, false
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
// reports leadership changes.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var stopDuties context.CancelFunc
	layDown := func() {
		if stopDuties != nil {
			stopDuties()
			stopDuties = nil
		}
		n.lead.reset()
	}
	defer layDown()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-n.raft.LeaderCh():
			layDown()
			if isLeader {
				ctx, cancel := context.WithCancel(context.Background())
				stopDuties = cancel
				n.wg.Add(1)
				go n.leaderDuties(ctx)
			}
		}
	}
}

// leaderDuties runs while this node leads: it takes over cluster time,
// commits LeaderStart, then expires leases until ctx ends.
func (n *Node) leaderDuties(ctx context.Context) {
	defer n.wg.Done()
	for !n.takeOver(ctx) {
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
// Only then does the node serve.
func (n *Node) takeOver(ctx context.Context) bool {
	if n.raft.State() != raft.Leader {
		return false
	}
	if err := n.raft.Barrier(n.timing.ApplyTimeout).Error(); err != nil {
		n.log.Warn("leader barrier failed", "err", err)
		return false
	}
	var base int64
	n.replica.view(func(s *fsm.State) { base = s.Now() })
	n.lead.mu.Lock()
	n.lead.term = n.raft.CurrentTerm()
	n.lead.base, n.lead.start, n.lead.stamped = base, n.clock(), true
	n.lead.mu.Unlock()
	cmd := &fsmpb.Command{Op: &fsmpb.Command_LeaderStart{LeaderStart: &fsmpb.LeaderStart{LeaderId: n.cfg.ID.SelfID}}}
	if _, _, err := n.proposeLocal(ctx, []*fsmpb.Command{cmd}, true); err != nil {
		n.log.Warn("leader start failed", "err", err)
		return false
	}
	n.lead.mu.Lock()
	n.lead.ready = n.lead.stamped
	n.lead.mu.Unlock()
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
			if _, _, err := n.proposeLocal(ctx, cmds, false); err != nil && ctx.Err() == nil {
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
