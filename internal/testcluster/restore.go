package testcluster

import (
	"fmt"
	"path/filepath"
	"testing"
)

// Prepare lays out n nodes as Start does (free ports, one directory and
// seed-style config each) without starting them, so that a test can seed
// or damage their data first (`dlock snapshot restore`, a small file
// system under var/) and then start them with StartAll or Restart. Running
// nodes are killed when the test ends.
func Prepare(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t), Dir: t.TempDir(), host: loopbackHost()}
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, &Node{
			ID: i, PeerAddr: freeAddr(t, c.host), ClientAddr: freeAddr(t, c.host),
			Dir: filepath.Join(c.Dir, fmt.Sprintf("node%d", i)),
		})
	}
	for _, nd := range c.Nodes {
		c.writeConfig(nd)
	}
	t.Cleanup(c.KillAll)
	return c
}

// StartAll starts every node that is not running.
func (c *Cluster) StartAll() {
	c.t.Helper()
	for _, nd := range c.Nodes {
		if !c.Running(nd.ID) {
			c.startNode(nd)
		}
	}
}

// DataDir is node id's data directory (the config's ./var), where its Raft
// stable store (persistence.db), log (persistence.db.wal) and snapshots live.
func (c *Cluster) DataDir(id int) string { return filepath.Join(c.Nodes[id-1].Dir, "var") }
