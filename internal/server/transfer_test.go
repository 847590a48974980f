package server_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

func clusterClient(t *testing.T, endpoint string) dlockv1.ClusterClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return dlockv1.NewClusterClient(cc)
}

// A transfer asked of any node moves leadership to the named voter, and
// the cluster keeps serving writes through the new leader.
func TestTransferLeaderMovesLeadership(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	ctx := ctxT(t)
	old := c.WaitLeader(10 * time.Second)
	to, asked := (old+1)%3, (old+2)%3 // ask a follower that is not the target
	resp, err := clusterClient(t, c.Endpoints()[asked]).TransferLeader(ctx,
		&dlockv1.TransferLeaderRequest{ToId: uint32(to + 1)})
	if err != nil {
		t.Fatalf("transfer to node %d: %v", to+1, err)
	}
	if resp.LeaderId != uint32(to+1) {
		t.Fatalf("transfer answered leader %d, want %d", resp.LeaderId, to+1)
	}
	if now := c.WaitLeader(10 * time.Second); now != to {
		t.Fatalf("leader is node %d after the transfer, want node %d", now+1, to+1)
	}
	cl := dial(t, c)
	if _, err := cl.kv[old].Put(ctx, &dlockv1.PutRequest{Key: "after", Value: []byte("transfer")}); err != nil {
		t.Fatalf("put through the old leader after the transfer: %v", err)
	}

	// With no target, leadership moves to some other voter.
	resp, err = clusterClient(t, c.Endpoints()[to]).TransferLeader(ctx, &dlockv1.TransferLeaderRequest{})
	if err != nil || resp.LeaderId == uint32(to+1) || resp.LeaderId == 0 {
		t.Fatalf("transfer to any voter: leader %d, err %v; want a node other than %d", resp.GetLeaderId(), err, to+1)
	}
}

func TestTransferLeaderToUnknownNodeIsRefused(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	_, err := clusterClient(t, c.Endpoints()[0]).TransferLeader(ctxT(t), &dlockv1.TransferLeaderRequest{ToId: 9})
	wantErr(t, "transfer to node 9", err, codes.InvalidArgument, dlockv1.ReasonInvalid)
	if !strings.Contains(err.Error(), "to_id") || !strings.Contains(err.Error(), "9") {
		t.Fatalf("error %q does not name to_id 9", err)
	}
	if now := c.WaitLeader(10 * time.Second); now != leader {
		t.Fatalf("a refused transfer moved leadership from node %d to %d", leader+1, now+1)
	}
}
