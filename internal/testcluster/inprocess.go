package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/server"
)

// InProcess is a cluster of nodes and their gRPC servers inside the test
// process, on real loopback sockets: faster than processes, for tests of
// the API edge that need no crash.
type InProcess struct {
	t       testing.TB
	Configs []*config.Config
	Nodes   []*node.Node
	servers []*server.Server
	wg      sync.WaitGroup
}

// StartInProcess starts n nodes with their client servers and waits for a
// leader. Everything stops when the test ends.
func StartInProcess(t testing.TB, n int) *InProcess {
	t.Helper()
	return StartInProcessWith(t, n, nil)
}

// StartInProcessWith is StartInProcess with every node's configuration
// changed by edit (and validated again) before the node starts.
func StartInProcessWith(t testing.TB, n int, edit func(*config.Config)) *InProcess {
	t.Helper()
	c := &InProcess{t: t}
	host := loopbackHost()
	peers, clis := make([]string, n), make([]string, n)
	for i := range peers {
		peers[i], clis[i] = freeAddr(t, host), freeAddr(t, host)
	}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		cfg := inProcessConfig(t, i, peers, clis, base)
		if edit != nil {
			edit(cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("edited config for node %d: %v", i+1, err)
			}
		}
		c.Configs = append(c.Configs, cfg)
	}
	t.Cleanup(c.stop)
	for _, cfg := range c.Configs {
		c.startOne(cfg)
	}
	c.WaitLeader(30 * time.Second)
	return c
}

func inProcessConfig(t testing.TB, i int, peers, clis []string, base string) *config.Config {
	var members []config.Member
	for j := range peers {
		members = append(members, config.Member{ID: uint32(j + 1), PeerAddress: peers[j], ClientAddress: clis[j]})
	}
	cfg := config.Default()
	cfg.Storage.DataDir = fmt.Sprintf("%s/node%d", base, i+1)
	cfg = cfg.ForMember(uint32(i+1), members)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config for node %d: %v", i+1, err)
	}
	return cfg
}

func (c *InProcess) startOne(cfg *config.Config) {
	c.t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", cfg.Network.SelfCliAddress)
	if err != nil {
		c.t.Fatalf("listen %s: %v", cfg.Network.SelfCliAddress, err)
	}
	waiters := server.NewWaiters()
	n, err := node.New(node.Options{Config: cfg, Logger: logger, RaftLogOutput: io.Discard, Sink: waiters.Publish})
	if err != nil {
		ln.Close()
		c.t.Fatalf("start node %d: %v", cfg.ID.SelfID, err)
	}
	s := server.New(n, waiters, server.Options{Limits: cfg.Limits, Logger: logger})
	c.Nodes = append(c.Nodes, n)
	c.servers = append(c.servers, s)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = s.Serve(ln)
	}()
}

func (c *InProcess) stop() {
	for _, s := range c.servers {
		s.Stop()
	}
	c.wg.Wait()
	for _, n := range c.Nodes {
		n.Close()
	}
}

// Endpoints are the nodes' client addresses.
func (c *InProcess) Endpoints() []string {
	var eps []string
	for _, cfg := range c.Configs {
		eps = append(eps, cfg.Network.SelfCliAddress)
	}
	return eps
}

// WaitLeader waits until every node knows a serving leader and returns its
// index in Nodes.
func (c *InProcess) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader := -1
		all := true
		for i, n := range c.Nodes {
			st, err := n.Status()
			if err != nil || !st.Ready {
				all = false
				break
			}
			if st.State == "Leader" {
				leader = i
			}
		}
		if all && leader >= 0 {
			return leader
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no serving leader within %v", timeout)
	return -1
}

// StopServer stops node i's client server gracefully, as SIGTERM does; the
// node itself keeps running.
func (c *InProcess) StopServer(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.servers[i].GracefulStop(ctx)
}
