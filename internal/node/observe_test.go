package node

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// countingObserver records what a node reports.
type countingObserver struct {
	mu                                   sync.Mutex
	batches, commands, commits           int
	grants, releases, expiries, renewals int
	leaders                              int
	snapshots                            map[string]int
}

func (o *countingObserver) Batched(_, commands int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches++
	o.commands += commands
}

func (o *countingObserver) Committed(time.Duration, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits++
}

func (o *countingObserver) Applied(g, r, e, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.grants, o.releases, o.expiries, o.renewals = o.grants+g, o.releases+r, o.expiries+e, o.renewals+n
}

func (o *countingObserver) Snapshot(op string, _ time.Duration, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.snapshots[op]++
}

func (o *countingObserver) LeaderChanged() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leaders++
}

func (o *countingObserver) events() [4]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return [4]int{o.grants, o.releases, o.expiries, o.renewals}
}

// singleNode starts a one-node cluster that reports to obs.
func singleNode(t *testing.T, obs Observer) *Node {
	t.Helper()
	cfg := config.Default()
	cfg.Network.SelfAddress, cfg.Network.SelfCliAddress = freePort(t), freePort(t)
	cfg.Storage.DataDir = t.TempDir()
	cfg.Parameters.SnapshotInterval = config.Millis(20 * time.Millisecond)
	cfg.Parameters.SnapshotThreshold = 4
	nd, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLogOutput: io.Discard, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The node reports every grant, renewal, release and expiry it applies, the
// batches it proposes as leader, its snapshots and the leader it elects.
func TestObserverSeesWhatTheNodeDoes(t *testing.T) {
	obs := &countingObserver{snapshots: map[string]int{}}
	nd := singleNode(t, obs)
	waitFor(t, "a ready leader", nd.isReady)
	ctx := ctxT(t)
	renew := &fsmpb.Command{Op: &fsmpb.Command_Renew{Renew: &fsmpb.Renew{Name: "a", Owner: "o"}}}
	release := &fsmpb.Command{Op: &fsmpb.Command_Release{Release: &fsmpb.Release{Name: "a", Owner: "o"}}}
	for _, cmds := range [][]*fsmpb.Command{
		{acquire("a", "o", time.Hour)}, {renew}, {renew}, {release},
		{acquire("short", "o", 50*time.Millisecond)},
		{put("k1", "v"), put("k2", "v"), put("k3", "v")},
	} {
		if _, _, err := nd.Propose(ctx, cmds); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the expiry of short", func() bool { return obs.events()[2] == 1 })
	if got, want := obs.events(), [4]int{2, 1, 1, 2}; got != want {
		t.Errorf("grants, releases, expiries, renewals = %v, want %v", got, want)
	}
	waitFor(t, "a snapshot", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.snapshots["capture"] > 0 && obs.snapshots["persist"] > 0
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// LeaderStart, 6 proposals, at least one Expire: 8 commands or more, in 8 batches or fewer.
	if obs.leaders != 1 || obs.commands < 8 || obs.batches > obs.commands || obs.commits != obs.batches {
		t.Errorf("leaders %d, commands %d in %d batches, %d commits; want 1 leader, >= 8 commands, one commit per batch",
			obs.leaders, obs.commands, obs.batches, obs.commits)
	}
}

// Readiness follows the cluster: ready once a leader serves, with a reason
// when not, and the gauges read the node's state.
func TestReadinessAndGauges(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	for i, nd := range c.nodes {
		waitFor(t, "node ready", func() bool { ok, _ := nd.Readiness(); return ok })
		if g := nd.Gauges(); !g.Ready || g.LeaderID != uint32(l+1) || g.Term == 0 {
			t.Errorf("node %d gauges %+v, want ready with leader %d", i+1, g, l+1)
		}
	}
	if _, _, err := c.nodes[l].Propose(ctxT(t), []*fsmpb.Command{acquire("held", "o", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if g := c.nodes[l].Gauges(); g.Held != 1 || g.State != "Leader" {
		t.Errorf("leader gauges %+v, want 1 held, state Leader", g)
	}
	// Two nodes down: the third has no leader and says so.
	other := (l + 1) % 3
	c.nodes[l].Close()
	c.nodes[(l+2)%3].Close()
	waitFor(t, "the survivor not ready", func() bool { ok, _ := c.nodes[other].Readiness(); return !ok })
	if ok, why := c.nodes[other].Readiness(); ok || why == "" {
		t.Errorf("survivor Readiness = %v %q, want not ready with a reason", ok, why)
	}
	if ok, why := c.nodes[l].Readiness(); ok || why != "shutting down" {
		t.Errorf("closed node Readiness = %v %q, want not ready, shutting down", ok, why)
	}
}
