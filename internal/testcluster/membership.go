package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
)

// StartJoiner starts one more `dlock serve` process, node len(c.Nodes)+1,
// on fresh loopback ports, with a config that names every node of c as its
// peers and sets id.join: it waits to be added to the running cluster
// (dlock cluster member add) instead of bootstrapping one. The node joins
// c.Nodes, so Kill, Stop, Restart and Status work on it; the existing
// nodes' configs stay as they are, as an operator's would.
func (c *Cluster) StartJoiner() *Node {
	c.t.Helper()
	id := len(c.Nodes) + 1
	nd := &Node{
		ID: id, PeerAddr: freeAddr(c.t, c.host), ClientAddr: freeAddr(c.t, c.host),
		Dir: filepath.Join(c.Dir, fmt.Sprintf("node%d", id)),
	}
	c.Nodes = append(c.Nodes, nd)
	c.writeJoinConfig(nd)
	c.startNode(nd)
	return nd
}

func (c *Cluster) writeJoinConfig(nd *Node) {
	var members []config.Member
	for _, o := range c.Nodes {
		members = append(members, config.Member{ID: uint32(o.ID), PeerAddress: o.PeerAddr, ClientAddress: o.ClientAddr})
	}
	members, err := peerView(c.fabric, c.host, nd.ID, members)
	if err != nil {
		c.t.Fatal(err)
	}
	base := config.Default()
	base.Storage.LogPath = "./"
	base.Storage.LogLevel = "Debug"
	base.Storage.EntryStoragePath = "./var/persistence.db"
	cfg := base.ForMember(uint32(nd.ID), members)
	cfg.ID.Join = true
	text, err := cfg.Render()
	if err != nil {
		c.t.Fatalf("config for joining node %d: %v", nd.ID, err)
	}
	if err := os.MkdirAll(nd.Dir, 0o750); err != nil {
		c.t.Fatalf("create %s: %v", nd.Dir, err)
	}
	if err := os.WriteFile(nd.ConfigPath(), text, 0o640); err != nil {
		c.t.Fatalf("write %s: %v", nd.ConfigPath(), err)
	}
}

// WaitExit waits until node id's process exits by itself (a node removed
// from the cluster does) and reports whether it did within timeout. The
// node then counts as stopped.
func (c *Cluster) WaitExit(id int, timeout time.Duration) bool {
	nd := c.Nodes[id-1]
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		return false
	}
	nd.mu.Lock()
	nd.cmd = nil
	nd.mu.Unlock()
	return true
}
