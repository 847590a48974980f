package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/node"
)

// memberChangeTimeoutMax bounds a membership change whose caller set no
// earlier deadline. An add waits for the new node to catch up with the log,
// which takes longer than a write.
const memberChangeTimeoutMax = time.Minute

// memberOutcomes maps the node's membership errors to what a client sees.
var memberOutcomes = []struct {
	err error
	outcome
}{
	{node.ErrInvalidMember, outcome{codes.InvalidArgument, dlockv1.ReasonInvalid}},
	{node.ErrMembersMax, outcome{codes.ResourceExhausted, dlockv1.ReasonLimit}},
	{node.ErrChangeInProgress, outcome{codes.FailedPrecondition, dlockv1.ReasonChangeInProgress}},
	{node.ErrLastVoter, outcome{codes.FailedPrecondition, dlockv1.ReasonLastVoter}},
	{node.ErrMemberUnreachable, outcome{codes.FailedPrecondition, dlockv1.ReasonMemberUnreachable}},
	{node.ErrNotCaughtUp, outcome{codes.DeadlineExceeded, dlockv1.ReasonNotCaughtUp}},
}

// AddMember adds a node: as a non-voter, then, once it has caught up, as a
// voter (unless nonvoter). Any node accepts it and passes it to the leader.
// The call is bounded by the caller's deadline (at most
// memberChangeTimeoutMax), which the new node's catch-up counts against.
func (s clusterService) AddMember(ctx context.Context, req *dlockv1.AddMemberRequest) (*dlockv1.AddMemberResponse, error) {
	mctx, cancel := context.WithTimeout(ctx, memberChangeTimeoutMax)
	defer cancel()
	ms, err := s.node.AddMember(mctx, node.Member{
		ID: req.GetId(), PeerAddress: req.GetPeerAddress(), ClientAddress: req.GetClientAddress(), Voter: !req.GetNonvoter(),
	})
	if err != nil {
		return nil, memberError(ctx, err)
	}
	return &dlockv1.AddMemberResponse{Members: toAPIMembers(ms)}, nil
}

// RemoveMember removes a node; removing the leader hands leadership to
// another voter first. Any node accepts it and passes it to the leader.
func (s clusterService) RemoveMember(ctx context.Context, req *dlockv1.RemoveMemberRequest) (*dlockv1.RemoveMemberResponse, error) {
	mctx, cancel := context.WithTimeout(ctx, memberChangeTimeoutMax)
	defer cancel()
	ms, err := s.node.RemoveMember(mctx, req.GetId())
	if err != nil {
		return nil, memberError(ctx, err)
	}
	return &dlockv1.RemoveMemberResponse{Members: toAPIMembers(ms)}, nil
}

// memberError maps a membership change's failure.
func memberError(caller context.Context, err error) error {
	for _, o := range memberOutcomes {
		if errors.Is(err, o.err) {
			return statusError(o.code, o.reason, err.Error())
		}
	}
	return boundedError(caller, err)
}

func toAPIMembers(ms []node.Member) []*dlockv1.Member {
	out := make([]*dlockv1.Member, len(ms))
	for i, m := range ms {
		suffrage := "nonvoter"
		if m.Voter {
			suffrage = "voter"
		}
		out[i] = &dlockv1.Member{Id: m.ID, PeerAddress: m.PeerAddress, ClientAddress: m.ClientAddress, Suffrage: suffrage, Leader: m.Leader}
	}
	return out
}
