package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// TransferLeadership hands leadership to voter to (0: the follower Raft
// finds most up to date), from whichever node leads, and waits until a
// leader other than the old one serves. It returns the new leader's id.
func (n *Node) TransferLeadership(ctx context.Context, to uint32) (uint32, error) {
	if to != 0 {
		if _, ok := n.book.member(serverID(to)); !ok {
			return 0, fmt.Errorf("%w: no member with id %d", ErrInvalidTransfer, to)
		}
	}
	_, old := n.raft.LeaderWithID()
	if old != "" && old == serverID(to) {
		return to, nil // already there
	}
	if _, err := throughLeader(ctx, n, func() (struct{}, error) { return struct{}{}, n.transferOnce(ctx, to) }); err != nil {
		return 0, err
	}
	// Wait until some node other than the old leader serves as leader, as
	// seen from here.
	for {
		if _, id := n.raft.LeaderWithID(); id != "" && id != old && (to == 0 || id == serverID(to)) {
			if id != serverID(n.ID()) || n.isReady() {
				return parseID(id), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("dlock: wait for the new leader: %w", ctx.Err())
		case <-n.stop:
			return 0, ErrClosed
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ErrInvalidTransfer is returned for a transfer to a server that is not a
// voter of the cluster.
var ErrInvalidTransfer = fmt.Errorf("dlock: invalid leadership transfer")

func (n *Node) transferOnce(ctx context.Context, to uint32) error {
	if n.isReady() {
		return n.leaderTransfer(to)
	}
	addr, ok := n.leaderAddress()
	if !ok {
		return errNotLeader
	}
	c, err := n.peers.client(addr)
	if err != nil {
		return err
	}
	_, err = c.TransferLeadership(ctx, &peerpb.TransferLeadershipRequest{ToId: to})
	if status.Code(err) == codes.InvalidArgument {
		return fmt.Errorf("%w: %s", ErrInvalidTransfer, status.Convert(err).Message())
	}
	return err
}

// leaderTransfer runs the transfer on the leader and returns once Raft has
// handed leadership over (or failed to).
func (n *Node) leaderTransfer(to uint32) error {
	var f raft.Future
	if to == 0 {
		f = n.raft.LeadershipTransfer()
	} else {
		if to == n.ID() {
			return nil
		}
		// member, not the file's byID: a voter added at run time is only in
		// Raft's configuration.
		m, ok := n.book.member(serverID(to))
		if !ok {
			return fmt.Errorf("%w: node %d is not a voter", ErrInvalidTransfer, to)
		}
		f = n.raft.LeadershipTransferToServer(serverID(to), raft.ServerAddress(m.PeerAddress))
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("dlock: leadership transfer: %w", err)
	}
	return nil
}

func (p *peerService) TransferLeadership(ctx context.Context, req *peerpb.TransferLeadershipRequest) (*peerpb.TransferLeadershipResponse, error) {
	if !p.n.isReady() {
		return nil, status.Error(codes.FailedPrecondition, "dlock: not the leader")
	}
	if req.ToId != 0 {
		if _, ok := p.n.book.member(serverID(req.ToId)); !ok {
			return nil, status.Errorf(codes.InvalidArgument, "no member with id %d", req.ToId)
		}
	}
	if err := p.n.leaderTransfer(req.ToId); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &peerpb.TransferLeadershipResponse{}, nil
}
