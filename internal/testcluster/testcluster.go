// Package testcluster runs real dlock clusters for tests: each node is a
// `dlock serve` process with its own config, data directory and loopback
// ports, killed with real signals. It is for tests only.
package testcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/freeport"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds the dlock command once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dlock-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "dlock")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/dlock")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/dlock: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build dlock: %v", buildErr)
	}
	return buildPath
}

// Node is one dlock process of a Cluster.
type Node struct {
	ID         int
	PeerAddr   string
	ClientAddr string
	Dir        string
	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Cluster is a set of dlock processes on one loopback address.
type Cluster struct {
	t      testing.TB
	bin    string
	host   string
	fabric *faultnet.Fabric
	edit   func(*config.Config)
	Dir    string
	Nodes  []*Node
	// PKI issued the nodes' certificates when Options.TLS is set; nil
	// otherwise. ClientTLS is the test's own client configuration then.
	PKI       *PKI
	ClientTLS *tls.Config
}

// Start writes seed-style configs for n nodes and starts them. The cluster
// is stopped (SIGKILL) when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartOpts(t, n, Options{})
}

// Options shape a process cluster.
type Options struct {
	// Fabric, if set, carries every peer connection: node i's config names
	// the fabric's link (i, j) as node j's peer address.
	Fabric *faultnet.Fabric
	// TLS runs both planes with mutual TLS, on certificates of a CA the
	// cluster creates (Cluster.PKI).
	TLS bool
	// Edit, if set, changes every node's configuration before it is
	// written (e.g. to turn on observability.metrics_address).
	Edit func(*config.Config)
}

// StartOpts is Start shaped by opts.
func StartOpts(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t), Dir: t.TempDir(), host: loopbackHost(), fabric: opts.Fabric, edit: opts.Edit}
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, &Node{
			ID: i, PeerAddr: freeAddr(t, c.host), ClientAddr: freeAddr(t, c.host),
			Dir: filepath.Join(c.Dir, fmt.Sprintf("node%d", i)),
		})
	}
	if opts.TLS {
		c.PKI = NewPKI(t, filepath.Join(c.Dir, "tls"))
		for _, nd := range c.Nodes {
			c.PKI.IssueNode(uint32(nd.ID), c.host)
		}
		c.ClientTLS = c.PKI.ClientTLS(ClientName)
	}
	for _, nd := range c.Nodes {
		c.writeConfig(nd)
	}
	t.Cleanup(c.KillAll)
	for _, nd := range c.Nodes {
		c.startNode(nd)
	}
	return c
}

// loopbackHost picks a random 127/8 address so that clusters of parallel
// tests, and a developer's `dlock dev`, rarely meet on a port.
func loopbackHost() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
}

func freeAddr(t testing.TB, host string) string {
	t.Helper()
	return freeport.Addr(t, host)
}

// ConfigPath is node's seed-style config file.
func (nd *Node) ConfigPath() string { return filepath.Join(nd.Dir, "config.yaml") }

// writeConfig writes nd's config the way the seed's users lay theirs out:
// logs in the node's directory, the Raft stable store at ./var/persistence.db
// and the log beside it in ./var/persistence.db.wal.
func (c *Cluster) writeConfig(nd *Node) {
	var members []config.Member
	for _, o := range c.Nodes {
		members = append(members, config.Member{ID: uint32(o.ID), PeerAddress: o.PeerAddr, ClientAddress: o.ClientAddr})
	}
	members, perr := peerView(c.fabric, c.host, nd.ID, members)
	if perr != nil {
		c.t.Fatal(perr)
	}
	base := config.Default()
	base.Storage.LogPath = "./"
	base.Storage.LogLevel = "Debug"
	base.Storage.EntryStoragePath = "./var/persistence.db"
	cfg := base.ForMember(uint32(nd.ID), members)
	if c.PKI != nil {
		both(cfg, c.PKI.NodeFiles(uint32(nd.ID)))
	}
	if c.edit != nil {
		c.edit(cfg)
	}
	text, err := cfg.Render()
	if err != nil {
		c.t.Fatalf("config for node %d: %v", nd.ID, err)
	}
	if err := os.MkdirAll(nd.Dir, 0o750); err != nil {
		c.t.Fatalf("create %s: %v", nd.Dir, err)
	}
	if err := os.WriteFile(nd.ConfigPath(), text, 0o640); err != nil {
		c.t.Fatalf("write %s: %v", nd.ConfigPath(), err)
	}
}

func (c *Cluster) startNode(nd *Node) {
	c.t.Helper()
	cmd := exec.Command(c.bin, "serve", "--config", "config.yaml")
	cmd.Dir = nd.Dir
	// Logs go to dlock.log in the node's directory (storage.log_path).
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start node %d: %v", nd.ID, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
}

// Endpoints are the client addresses of every node.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, nd := range c.Nodes {
		eps = append(eps, nd.ClientAddr)
	}
	return eps
}

// Kill sends SIGKILL to node id and waits for it to die.
func (c *Cluster) Kill(id int) { c.signal(id, syscall.SIGKILL) }

// Stop sends SIGTERM to node id and waits for it to exit.
func (c *Cluster) Stop(id int) { c.signal(id, syscall.SIGTERM) }

func (c *Cluster) signal(id int, sig syscall.Signal) {
	c.t.Helper()
	nd := c.Nodes[id-1]
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		c.t.Errorf("node %d did not exit within 30s of %v", id, sig)
	}
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
}

// Pause stops node id with SIGSTOP: it keeps its sockets and state but
// runs no instruction until Resume, as a node stalled by its host does.
func (c *Cluster) Pause(id int) error { return c.sendOnly(id, syscall.SIGSTOP) }

// Resume continues a paused node with SIGCONT.
func (c *Cluster) Resume(id int) error { return c.sendOnly(id, syscall.SIGCONT) }

func (c *Cluster) sendOnly(id int, sig syscall.Signal) error {
	nd := c.Nodes[id-1]
	nd.mu.Lock()
	cmd := nd.cmd
	nd.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("node %d is not running", id)
	}
	return cmd.Process.Signal(sig)
}

// Running reports whether node id's process is running (paused counts).
func (c *Cluster) Running(id int) bool {
	nd := c.Nodes[id-1]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// Restart starts a stopped node again from its data directory.
func (c *Cluster) Restart(id int) { c.startNode(c.Nodes[id-1]) }

// KillAll kills every running node.
func (c *Cluster) KillAll() {
	for _, nd := range c.Nodes {
		c.Kill(nd.ID)
	}
}

// Log returns node id's log file content, for failure messages.
func (c *Cluster) Log(id int) string {
	b, _ := os.ReadFile(filepath.Join(c.Nodes[id-1].Dir, "dlock.log"))
	return string(b)
}

// Status asks node id for its view of the cluster.
func (c *Cluster) Status(ctx context.Context, id int) (*dlockv1.StatusResponse, error) {
	conn, err := grpc.NewClient("passthrough:///"+c.Nodes[id-1].ClientAddr, dialOption(c.ClientTLS))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return dlockv1.NewClusterClient(conn).Status(ctx, &dlockv1.StatusRequest{})
}

// WaitLeader waits until every running node in ids agrees on a ready
// leader and returns its id. It fails the test after timeout.
func (c *Cluster) WaitLeader(timeout time.Duration, ids ...int) int {
	c.t.Helper()
	if len(ids) == 0 {
		for _, nd := range c.Nodes {
			ids = append(ids, nd.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		leader, err := c.agreedLeader(ctx, ids)
		if err == nil {
			return leader
		}
		last = err
		select {
		case <-ctx.Done():
			c.t.Fatalf("no agreed leader among nodes %v within %v: %v", ids, timeout, last)
			return 0
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) agreedLeader(ctx context.Context, ids []int) (int, error) {
	leader := uint32(0)
	for _, id := range ids {
		st, err := c.Status(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("node %d: %w", id, err)
		}
		if !st.Ready || st.LeaderId == 0 {
			return 0, fmt.Errorf("node %d: not ready", id)
		}
		if leader != 0 && st.LeaderId != leader {
			return 0, fmt.Errorf("node %d sees leader %d, another node sees %d", id, st.LeaderId, leader)
		}
		leader = st.LeaderId
	}
	// The leader itself must be serving.
	st, err := c.Status(ctx, int(leader))
	if err != nil || !st.Ready || st.State != "Leader" {
		return 0, fmt.Errorf("leader %d not serving yet", leader)
	}
	return int(leader), nil
}

// WaitCaughtUp waits until node id has applied everything the leader had
// committed when the wait began.
func (c *Cluster) WaitCaughtUp(id int, timeout time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	leader := c.WaitLeader(timeout)
	st, err := c.Status(ctx, leader)
	if err != nil {
		c.t.Fatalf("status of leader %d: %v", leader, err)
	}
	target := st.CommitIndex
	for {
		st, err := c.Status(ctx, id)
		if err == nil && st.AppliedIndex >= target {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("node %d has not applied index %d within %v (last status %v, %v)", id, target, timeout, st, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
