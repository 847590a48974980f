package node

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// Read runs fn on this node's state. Unless stale, it first makes the read
// linearizable: it learns from the leader an index covering every write
// the leader has acknowledged (after the leader confirms it still leads),
// and waits until this node has applied that index. fn must not keep the
// state nor block.
func (n *Node) Read(ctx context.Context, stale bool, fn func(s *fsm.State)) error {
	if !stale {
		idx, err := n.ReadIndex(ctx)
		if err != nil {
			return err
		}
		if err := n.WaitApplied(ctx, idx); err != nil {
			return err
		}
	}
	n.replica.view(fn)
	return nil
}

// WaitApplied blocks until this node has applied index or ctx ends. On a
// node removed from the cluster, which receives no more entries, it fails
// with ErrRemoved instead, so that its callers move to another node.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if n.replica.appliedIndex() >= index {
		return nil
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-n.removed:
			cancel(ErrRemoved)
		case <-wctx.Done():
		}
	}()
	if n.replica.waitApplied(index, wctx.Done()) {
		return nil
	}
	why := ctx.Err()
	if why == nil {
		why = context.Cause(wctx) // ErrRemoved
	}
	return fmt.Errorf("dlock: wait for index %d (applied %d): %w", index, n.replica.appliedIndex(), why)
}

// ReadIndex returns an index that covers every write acknowledged by the
// cluster so far, asking the leader (with retries until ctx ends).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	return throughLeader(ctx, n, func() (uint64, error) { return n.readIndexOnce(ctx) })
}

func (n *Node) readIndexOnce(ctx context.Context) (uint64, error) {
	if n.isReady() {
		return n.leaderReadIndex()
	}
	addr, ok := n.leaderAddress()
	if !ok {
		return 0, errNotLeader
	}
	c, err := n.peers.client(addr)
	if err != nil {
		return 0, err
	}
	resp, err := c.ReadIndex(ctx, &peerpb.ReadIndexRequest{})
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// leaderReadIndex confirms leadership with a quorum and returns the commit
// index: every acknowledged write was applied here, so it is at or below.
func (n *Node) leaderReadIndex() (uint64, error) {
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	if !n.isReady() {
		return 0, errNotLeader
	}
	return idx, nil
}

// ClusterNow is this node's estimate of cluster time: exact on the leader,
// and on a follower the last applied entry's time plus local time since.
func (n *Node) ClusterNow() int64 {
	if now, ok := n.leaderClusterNow(); ok {
		return now
	}
	return n.replica.clusterNow()
}

// ID is this node's id.
func (n *Node) ID() uint32 { return n.cfg.ID.SelfID }

// Ready reports whether this node knows a leader that serves (or is one).
func (n *Node) Ready() bool {
	if n.isReady() {
		return true
	}
	_, id := n.raft.LeaderWithID()
	return id != "" && id != serverID(n.cfg.ID.SelfID)
}

// Member is one server in the Raft configuration.
type Member struct {
	ID            uint32
	PeerAddress   string
	ClientAddress string
	Voter         bool
	Leader        bool
}

// Status is this node's view of the cluster.
type Status struct {
	ID           uint32
	State        string
	LeaderID     uint32
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Ready        bool
	Members      []Member
}

// Status reports this node's view of the cluster.
func (n *Node) Status() (Status, error) {
	_, leaderID := n.raft.LeaderWithID()
	st := Status{
		ID:           n.ID(),
		State:        n.raft.State().String(),
		LeaderID:     parseID(leaderID),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.replica.appliedIndex(),
		Ready:        n.Ready(),
	}
	st.Members = n.members(leaderID)
	return st, nil
}

func parseID(id raft.ServerID) uint32 {
	v, _ := strconv.ParseUint(string(id), 10, 32)
	return uint32(v)
}

// peerService answers other nodes' forwarded calls on the peer plane.
type peerService struct {
	peerpb.UnimplementedPeerServer
	n *Node
}

func (p *peerService) Propose(ctx context.Context, req *peerpb.ProposeRequest) (*peerpb.ProposeResponse, error) {
	if !p.n.isReady() {
		return nil, status.Error(codes.FailedPrecondition, "dlock: not the leader")
	}
	for _, c := range req.Commands {
		if _, ok := c.Op.(*fsmpb.Command_LeaderStart); ok {
			return nil, status.Error(codes.InvalidArgument, "dlock: LeaderStart cannot be forwarded")
		}
	}
	res, idx, err := p.n.proposeLocal(ctx, req.Commands, false)
	if err != nil {
		if retryable(err) {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return nil, peerError(err)
	}
	return &peerpb.ProposeResponse{Results: res, Index: idx}, nil
}

func (p *peerService) ReadIndex(ctx context.Context, _ *peerpb.ReadIndexRequest) (*peerpb.ReadIndexResponse, error) {
	if !p.n.isReady() {
		return nil, status.Error(codes.FailedPrecondition, "dlock: not the leader")
	}
	idx, err := p.n.leaderReadIndex()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &peerpb.ReadIndexResponse{Index: idx}, nil
}
