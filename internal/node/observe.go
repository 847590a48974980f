package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dlock-raft/dlock/internal/fsm"
)

// Observer is told what a node does, for metrics. Its methods are called
// on the node's hot paths (every batch, every applied entry): they must be
// cheap, safe for concurrent use and never block.
type Observer interface {
	// Batched: this leader proposed one Raft entry of commands commands,
	// gathered from proposals callers.
	Batched(proposals, commands int)
	// Committed: an entry this leader proposed was applied (err nil) or
	// failed, d after it was handed to Raft.
	Committed(d time.Duration, err error)
	// Applied: an applied batch of entries granted, released, expired and
	// renewed holds this many times. Every node applies every entry.
	Applied(grants, releases, expiries, renewals int)
	// Snapshot: a snapshot step took d; op is "capture" (copy the state),
	// "persist" (write it to disk) or "restore" (replace the state with
	// one), and bytes its size.
	Snapshot(op string, d time.Duration, bytes int)
	// LeaderChanged: this node learned of a new leader (an election or a
	// transfer, the first one included).
	LeaderChanged()
}

// nopObserver is the Observer of a node given none.
type nopObserver struct{}

func (nopObserver) Batched(int, int)                    {}
func (nopObserver) Committed(time.Duration, error)      {}
func (nopObserver) Applied(int, int, int, int)          {}
func (nopObserver) Snapshot(string, time.Duration, int) {}
func (nopObserver) LeaderChanged()                      {}

// Gauges is a node's state at one instant, for metrics: read it with
// Gauges when a scraper asks, not on a hot path.
type Gauges struct {
	// State is Raft's state: Follower, Candidate, Leader or Shutdown.
	State string
	// LeaderID is the leader this node knows, 0 if none.
	LeaderID     uint32
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	// Ready and NotReady are Readiness's answer.
	Ready    bool
	NotReady string
	// Counts of the applied state (see fsm.State.Counts).
	Locks, Held, Waiters, Keys, Clients int
}

// Gauges reads the node's state for metrics. Safe for concurrent use.
func (n *Node) Gauges() Gauges {
	_, leaderID := n.raft.LeaderWithID()
	g := Gauges{
		State:        n.raft.State().String(),
		LeaderID:     parseID(leaderID),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.replica.appliedIndex(),
		LastIndex:    n.raft.LastIndex(),
	}
	g.Ready, g.NotReady = n.Readiness()
	n.replica.view(func(s *fsm.State) { g.Locks, g.Held, g.Waiters, g.Keys, g.Clients = s.Counts() })
	return g
}

// catchUpLagMax is how many committed entries a ready node may have left to
// apply. A node applies each entry a moment after it learns it committed,
// so a busy node is always a few behind; one further behind is still
// catching up (from a snapshot, or after a pause).
const catchUpLagMax = 1024

// Readiness reports whether this node serves clients well: it is a member
// of the cluster's configuration, knows a leader that serves (or is one),
// has heard from that leader within two election timeouts, and has applied
// the log up to within catchUpLagMax entries of the commit index it knows.
// When not ready, reason says why in one line. Safe for concurrent use.
func (n *Node) Readiness() (ready bool, reason string) {
	select {
	case <-n.removed:
		return false, "removed from the cluster"
	case <-n.stop:
		return false, "shutting down"
	default:
	}
	self := serverID(n.ID())
	servers := n.book.servers()
	member := false
	for _, s := range servers {
		member = member || s.ID == self
	}
	if !member {
		return false, "not a member of the cluster's configuration (yet)"
	}
	_, leader := n.raft.LeaderWithID()
	switch {
	case leader == "":
		return false, "no known leader"
	case leader == self && !n.isReady():
		return false, "leader, still taking over (applying the log)"
	case leader != self:
		if since := time.Since(n.raft.LastContact()); since > 2*n.timing.ElectionTimeout {
			return false, fmt.Sprintf("no contact with leader %s for %s", leader, since.Round(time.Millisecond))
		}
	}
	commit, applied := n.raft.CommitIndex(), n.replica.appliedIndex()
	if commit > applied+catchUpLagMax {
		return false, fmt.Sprintf("catching up: applied index %d, commit index %d", applied, commit)
	}
	return true, ""
}

// watchLeaders counts and logs every leader this node learns of, from
// Raft's leader observations, until the node closes.
func (n *Node) watchLeaders() {
	defer n.workers.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	var last raft.ServerID
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			lo, ok := o.Data.(raft.LeaderObservation)
			if !ok || lo.LeaderID == last {
				continue
			}
			last = lo.LeaderID
			if last == "" {
				n.log.Warn("lost the leader", "term", n.raft.CurrentTerm())
				continue
			}
			n.observer.LeaderChanged()
			n.log.Info("leader changed", "leader", string(last), "term", n.raft.CurrentTerm(),
				"self", last == serverID(n.ID()))
		}
	}
}

// SetLogLevel sets the level of hashicorp/raft's log lines to follow l (the
// node's own lines follow the slog handler the node was given). Raft has
// four levels: Debug, Info, Warning and Error; Notice maps to Warning and
// Critical to Error, as at startup.
func (n *Node) SetLogLevel(l slog.Level) {
	if n.raftLog != nil {
		n.raftLog.SetLevel(hclogLevel(l))
	}
}
