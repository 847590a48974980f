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
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/server"
)

// InProcess is a cluster of nodes and their gRPC servers inside the test
// process, on real loopback sockets: faster than processes, and with seams
// a process has not (a wall clock the test sets, a crash between any two
// instructions of the test).
type InProcess struct {
	t       testing.TB
	opts    InProcessOptions
	Configs []*config.Config
	// Walls are the nodes' wall clocks; a test jumps them.
	Walls []*WallClock
	// PKI issued the nodes' certificates when InProcessOptions.TLS is set.
	PKI *PKI

	mu      sync.Mutex
	nodes   []*node.Node // nil while crashed
	servers []*server.Server
	served  []chan struct{} // closed when the node's Serve returns
}

// InProcessOptions shape an in-process cluster.
type InProcessOptions struct {
	// Edit changes every node's configuration (validated again) before the
	// node starts.
	Edit func(*config.Config)
	// Fabric, if set, carries every peer connection: node i reaches node j
	// through the fabric's link (i, j), so a test can partition the cluster
	// or slow its messages.
	Fabric *faultnet.Fabric
	// Logger receives every node's log; nil discards.
	Logger *slog.Logger
	// TLS runs both planes with mutual TLS on certificates of a CA the
	// cluster creates (InProcess.PKI), set before Edit runs.
	TLS bool
	// NoWait returns as soon as the nodes run, without waiting for a
	// leader every node knows (for clusters that cannot have one).
	NoWait bool
}

// StartInProcess starts n nodes with their client servers and waits for a
// leader. Everything stops when the test ends.
func StartInProcess(t testing.TB, n int) *InProcess {
	t.Helper()
	return StartInProcessOpts(t, n, InProcessOptions{})
}

// StartInProcessWith is StartInProcess with every node's configuration
// changed by edit (and validated again) before the node starts.
func StartInProcessWith(t testing.TB, n int, edit func(*config.Config)) *InProcess {
	t.Helper()
	return StartInProcessOpts(t, n, InProcessOptions{Edit: edit})
}

// StartInProcessOpts starts n nodes shaped by opts and waits for a leader.
func StartInProcessOpts(t testing.TB, n int, opts InProcessOptions) *InProcess {
	t.Helper()
	c := &InProcess{t: t, opts: opts}
	host := loopbackHost()
	members := make([]config.Member, n)
	for i := range members {
		members[i] = config.Member{ID: uint32(i + 1), PeerAddress: freeAddr(t, host), ClientAddress: freeAddr(t, host)}
	}
	base := t.TempDir()
	if opts.TLS {
		c.PKI = NewPKI(t, base+"/tls")
	}
	for i := 0; i < n; i++ {
		view, err := peerView(opts.Fabric, host, i+1, members)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Storage.DataDir = fmt.Sprintf("%s/node%d", base, i+1)
		cfg = cfg.ForMember(uint32(i+1), view)
		if c.PKI != nil {
			both(cfg, c.PKI.IssueNode(uint32(i+1), host))
		}
		if opts.Edit != nil {
			opts.Edit(cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config for node %d: %v", i+1, err)
		}
		c.Configs = append(c.Configs, cfg)
		c.Walls = append(c.Walls, &WallClock{})
	}
	c.nodes = make([]*node.Node, n)
	c.servers = make([]*server.Server, n)
	c.served = make([]chan struct{}, n)
	t.Cleanup(c.stop)
	for i := range c.Configs {
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	if !opts.NoWait {
		c.WaitLeader(30 * time.Second)
	}
	return c
}

// peerView is the member list node self dials by: through the fabric's
// links when there is one, straight to each peer otherwise.
func peerView(f *faultnet.Fabric, host string, self int, members []config.Member) ([]config.Member, error) {
	if f == nil {
		return members, nil
	}
	view := append([]config.Member(nil), members...)
	for j := range view {
		if int(view[j].ID) == self {
			continue
		}
		addr, err := f.Link(self, int(view[j].ID), host, members[j].PeerAddress)
		if err != nil {
			return nil, err
		}
		view[j].PeerAddress = addr
	}
	return view, nil
}

// start starts node i (0-based) from its data directory.
func (c *InProcess) start(i int) error {
	cfg := c.Configs[i]
	logger := c.opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger = logger.With("node", cfg.ID.SelfID)
	ln, err := listenRetry(cfg.Network.SelfCliAddress)
	if err != nil {
		return fmt.Errorf("node %d: %w", cfg.ID.SelfID, err)
	}
	peerTLS, clientTLS, err := loadTLS(cfg, logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("node %d: %w", cfg.ID.SelfID, err)
	}
	waiters := server.NewWaiters()
	n, err := node.New(node.Options{
		Config: cfg, Logger: logger, RaftLogOutput: io.Discard, Sink: waiters.Publish, WallClock: c.Walls[i].Now,
		PeerTLS: peerTLS,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("start node %d: %w", cfg.ID.SelfID, err)
	}
	s := server.New(n, waiters, server.Options{Limits: cfg.Limits, Logger: logger, TLS: clientTLS, Auth: cfg.Auth})
	served := make(chan struct{})
	c.mu.Lock()
	c.nodes[i], c.servers[i], c.served[i] = n, s, served
	c.mu.Unlock()
	go func() {
		defer close(served)
		_ = s.Serve(ln)
	}()
	return nil
}

// listenRetry listens on addr, retrying briefly: a restarted node's port
// may still be held by connections of the node it replaces.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Crash stops node i (0-based) abruptly: its client connections drop and
// Raft stops without handing leadership over or taking a snapshot. What it
// had fsync'd stays on disk for Restart.
func (c *InProcess) Crash(i int) {
	c.mu.Lock()
	n, s, served := c.nodes[i], c.servers[i], c.served[i]
	c.nodes[i], c.servers[i] = nil, nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	s.Stop()
	<-served
	n.Close()
}

// Restart starts a crashed node i again from its data directory.
func (c *InProcess) Restart(i int) error {
	c.mu.Lock()
	running := c.nodes[i] != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("node %d is running", i+1)
	}
	return c.start(i)
}

// Node returns node i (0-based), or nil while it is crashed.
func (c *InProcess) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Size is the number of nodes, running or not.
func (c *InProcess) Size() int { return len(c.Configs) }

func (c *InProcess) stop() {
	for i := range c.Configs {
		c.Crash(i)
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

// Leader returns the index of a running node that is a serving leader, or
// -1.
func (c *InProcess) Leader() int {
	for i := range c.Configs {
		n := c.Node(i)
		if n == nil {
			continue
		}
		if st, err := n.Status(); err == nil && st.Ready && st.State == "Leader" {
			return i
		}
	}
	return -1
}

// WaitLeader waits until every running node knows a serving leader and
// returns its index.
func (c *InProcess) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader := -1
		all := true
		for i := range c.Configs {
			n := c.Node(i)
			if n == nil {
				continue
			}
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

// Nodes returns the running nodes, for tests that call them directly.
func (c *InProcess) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ns []*node.Node
	for _, n := range c.nodes {
		if n != nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// StopServer stops node i's client server gracefully, as SIGTERM does; the
// node itself keeps running.
func (c *InProcess) StopServer(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	s := c.servers[i]
	c.mu.Unlock()
	s.GracefulStop(ctx)
}

// WallClock is a node's wall clock: the real one plus an offset a test
// jumps forward or back.
type WallClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the real time plus the offset.
func (w *WallClock) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().Add(w.offset)
}

// Jump moves the clock by d (negative: back).
func (w *WallClock) Jump(d time.Duration) {
	w.mu.Lock()
	w.offset += d
	w.mu.Unlock()
}
