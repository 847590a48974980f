package node

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/wal"
)

// moveLogToBolt turns a stopped node's data into what a node from before
// the log moved out of the bolt file has: every entry in the bolt file, no
// log directory.
func moveLogToBolt(t *testing.T, c *cluster, i int) (first, last uint64) {
	t.Helper()
	l, err := wal.Open(c.cfgs[i].WALDir(), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: c.cfgs[i].LogStorePath()})
	if err != nil {
		t.Fatal(err)
	}
	first, _ = l.FirstIndex()
	last, _ = l.LastIndex()
	for idx := first; idx <= last; idx++ {
		e := new(raft.Log)
		if err := l.GetLog(idx, e); err != nil {
			t.Fatal(err)
		}
		if err := bolt.StoreLog(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	bolt.Close()
	if err := os.RemoveAll(c.cfgs[i].WALDir()); err != nil {
		t.Fatal(err)
	}
	return first, last
}

func keysOn(t *testing.T, ctx context.Context, nd *Node) int {
	t.Helper()
	var keys int
	if err := nd.Read(ctx, false, func(s *fsm.State) { _, _, _, keys, _ = s.Counts() }); err != nil {
		t.Fatal(err)
	}
	return keys
}

// A node whose Raft log is still in its bolt file, as written before the
// log moved to its own directory, starts with its whole state: the entries
// are moved into the log directory and out of the bolt file. A move that a
// crash interrupted (a partial log directory beside the bolt entries) is
// started over from the bolt file.
func TestLogInBoltFileIsMovedOut(t *testing.T) {
	for _, interrupted := range []bool{false, true} {
		t.Run(fmt.Sprintf("interrupted=%v", interrupted), func(t *testing.T) {
			c := newCluster(t, 1)
			ctx := ctxT(t)
			c.leader()
			putKeys(ctx, t, c.nodes[0], 0, 40)
			c.nodes[0].Close()
			first, last := moveLogToBolt(t, c, 0)
			if interrupted {
				part, err := wal.Open(c.cfgs[0].WALDir(), wal.Options{})
				if err != nil {
					t.Fatal(err)
				}
				e := &raft.Log{Index: first, Term: 99, Data: []byte("not the real entry")}
				if err := part.StoreLog(e); err != nil {
					t.Fatal(err)
				}
				part.Close()
			}

			c.start(0)
			c.leader()
			if got := keysOn(t, ctx, c.nodes[0]); got != 40 {
				t.Fatalf("node started from a bolt-file log has %d keys, want 40", got)
			}
			if _, _, err := c.nodes[0].Propose(ctx, []*fsmpb.Command{put("after", "v")}); err != nil {
				t.Fatal(err)
			}
			var e raft.Log
			if err := c.nodes[0].wal.GetLog(first, &e); err != nil || e.Term == 99 {
				t.Fatalf("entry %d in the log directory: term %d, %v; want bolt's entry", first, e.Term, err)
			}
			if got, _ := c.nodes[0].wal.LastIndex(); got <= last {
				t.Fatalf("log directory ends at %d, want past %d", got, last)
			}
			if got, _ := c.nodes[0].store.LastIndex(); got != 0 {
				t.Fatalf("bolt file still holds entries up to %d after the move", got)
			}
			c.nodes[0].Close()
			c.start(0)
			c.leader()
			if got := keysOn(t, ctx, c.nodes[0]); got != 41 {
				t.Fatalf("after a second restart the node has %d keys, want 41", got)
			}
		})
	}
}

// A log that ends before the newest snapshot (Raft deletes the log after
// installing a snapshot, and a crash can stop it part way) is dropped at
// start, so that appends after the snapshot's index continue the log.
func TestLogBehindTheSnapshotIsDropped(t *testing.T) {
	c := newCluster(t, 1)
	ctx := ctxT(t)
	c.leader()
	putKeys(ctx, t, c.nodes[0], 0, 30)
	if err := c.nodes[0].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIndex := c.nodes[0].raft.AppliedIndex()
	c.nodes[0].Close()
	l, err := wal.Open(c.cfgs[0].WALDir(), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := l.FirstIndex()
	if err := l.DeleteRange(first+5, snapIndex+100); err != nil { // keep a few old entries only
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(snapshotDir(c.cfgs[0])); err != nil {
		t.Fatal(err)
	}

	c.start(0)
	c.leader()
	if _, _, err := c.nodes[0].Propose(ctx, []*fsmpb.Command{put("after", "v")}); err != nil {
		t.Fatalf("write after a restart with a log behind the snapshot: %v", err)
	}
	if got := keysOn(t, ctx, c.nodes[0]); got != 31 {
		t.Fatalf("node has %d keys, want 31", got)
	}
}
