package chaos

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/nemesis"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// inProcess adapts an in-process cluster to the nemesis: it crashes nodes
// by stopping them abruptly and jumps their wall clocks, but cannot pause
// them.
type inProcess struct {
	c *testcluster.InProcess
	f *faultnet.Fabric
}

func (p inProcess) Size() int                    { return p.c.Size() }
func (p inProcess) Fabric() *faultnet.Fabric     { return p.f }
func (p inProcess) Supports(k nemesis.Kind) bool { return k != nemesis.Pause }
func (p inProcess) Crash(i int) error            { p.c.Crash(i); return nil }
func (p inProcess) Restart(i int) error          { return p.c.Restart(i) }
func (p inProcess) Pause(int) error              { return nemesis.ErrUnsupported }
func (p inProcess) Resume(int) error             { return nemesis.ErrUnsupported }

func (p inProcess) JumpClock(i int, d time.Duration) error {
	p.c.Walls[i].Jump(d)
	return nil
}

func (p inProcess) Leader(ctx context.Context) (int, error) {
	for {
		if i := p.c.Leader(); i >= 0 {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p inProcess) Transfer(ctx context.Context, to int) error {
	for i := range p.c.Size() {
		if n := p.c.Node(i); n != nil {
			_, err := n.TransferLeadership(ctx, uint32(to+1))
			return err
		}
	}
	return fmt.Errorf("no running node")
}

// processes adapts a cluster of dlock processes: crashes are SIGKILL,
// pauses SIGSTOP, and it has no clock the test can set.
type processes struct {
	c *testcluster.Cluster
	f *faultnet.Fabric
}

func (p processes) Size() int                    { return len(p.c.Nodes) }
func (p processes) Fabric() *faultnet.Fabric     { return p.f }
func (p processes) Supports(k nemesis.Kind) bool { return k != nemesis.ClockJump }
func (p processes) Crash(i int) error            { p.c.Kill(i + 1); return nil }
func (p processes) Restart(i int) error          { p.c.Restart(i + 1); return nil }
func (p processes) Pause(i int) error            { return p.c.Pause(i + 1) }
func (p processes) Resume(i int) error           { return p.c.Resume(i + 1) }
func (p processes) JumpClock(int, time.Duration) error {
	return nemesis.ErrUnsupported
}

func (p processes) Leader(ctx context.Context) (int, error) {
	for {
		for _, nd := range p.c.Nodes {
			if !p.c.Running(nd.ID) {
				continue
			}
			st, err := p.c.Status(ctx, nd.ID)
			if err == nil && st.Ready && st.State == "Leader" {
				return nd.ID - 1, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p processes) Transfer(ctx context.Context, to int) error {
	var last error
	for _, nd := range p.c.Nodes {
		if !p.c.Running(nd.ID) {
			continue
		}
		conn, err := grpc.NewClient("passthrough:///"+nd.ClientAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		_, last = dlockv1.NewClusterClient(conn).TransferLeader(ctx, &dlockv1.TransferLeaderRequest{ToId: uint32(to + 1)})
		conn.Close()
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("transfer leadership to node %d: %w", to+1, last)
}
