package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
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
