package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/node"
)

// clusterService implements dlockv1.ClusterServer.
type clusterService struct {
	dlockv1.UnimplementedClusterServer
	*Server
}

// Status reports the answering node's view of the cluster.
func (s clusterService) Status(ctx context.Context, _ *dlockv1.StatusRequest) (*dlockv1.StatusResponse, error) {
	st, err := s.node.Status()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &dlockv1.StatusResponse{
		NodeId: st.ID, State: st.State, LeaderId: st.LeaderID, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Ready: st.Ready,
	}
	for _, m := range st.Members {
		suffrage := "nonvoter"
		if m.Voter {
			suffrage = "voter"
		}
		resp.Members = append(resp.Members, &dlockv1.Member{
			Id: m.ID, PeerAddress: m.PeerAddress, ClientAddress: m.ClientAddress, Suffrage: suffrage, Leader: m.Leader,
		})
	}
	return resp, nil
}

// TransferLeader hands leadership to another voter (any, when to_id is 0)
// and answers once a new leader serves. Leadership moves within an election
// timeout, so the call is bounded by the write timeout like a write.
func (s clusterService) TransferLeader(ctx context.Context, req *dlockv1.TransferLeaderRequest) (*dlockv1.TransferLeaderResponse, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	id, err := s.node.TransferLeadership(wctx, req.GetToId())
	if errors.Is(err, node.ErrInvalidTransfer) {
		return nil, statusError(codes.InvalidArgument, dlockv1.ReasonInvalid, fmt.Sprintf("to_id: %v", err))
	}
	if err != nil {
		return nil, boundedError(ctx, err)
	}
	return &dlockv1.TransferLeaderResponse{LeaderId: id}, nil
}
