package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cluster is an in-process cluster of nodes on real loopback sockets.
type cluster struct {
	t     *testing.T
	cfgs  []*config.Config
	nodes []*Node
}

func freePort(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t, "127.0.0.1")
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	peers := make([]string, n)
	for i := range peers {
		peers[i] = freePort(t)
	}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		var ids, ps, clis []string
		for j := 0; j < n; j++ {
			if j != i {
				ids = append(ids, fmt.Sprint(j+1))
				ps = append(ps, fmt.Sprintf("%q", peers[j]))
				clis = append(clis, fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", 1+j)))
			}
		}
		text := fmt.Sprintf("id: {self_id: %d, peer_id: [%s]}\nnetwork: {self_address: %q, self_cli_address: \"127.0.0.1:%d\", peer_address: [%s], peer_cli_address: [%s]}\nstorage: {data_dir: %q}\n",
			i+1, strings.Join(ids, ","), peers[i], 1+i, strings.Join(ps, ","), strings.Join(clis, ","), fmt.Sprintf("%s/node%d", base, i+1))
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			t.Fatalf("config for node %d: %v", i+1, err)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	c.nodes = make([]*Node, n)
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd != nil {
				nd.Close()
			}
		}
	})
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	nd, err := New(Options{Config: c.cfgs[i], Logger: logger, RaftLogOutput: io.Discard})
	if err != nil {
		c.t.Fatalf("start node %d: %v", i+1, err)
	}
	c.nodes[i] = nd
}

// leader waits for a ready leader among the running nodes.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, nd := range c.nodes {
			if nd != nil && nd.isReady() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no ready leader within 20s")
	return -1
}

func acquire(name, owner string, ttl time.Duration) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{Name: name, Owner: owner, TtlNanos: int64(ttl)}}}
}

func put(key, value string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Put{Put: &fsmpb.Put{Key: key, Value: []byte(value)}}}
}

// putKeys writes keys k<from> to k<to-1> through nd, one entry each.
func putKeys(ctx context.Context, t *testing.T, nd *Node, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, _, err := nd.Propose(ctx, []*fsmpb.Command{put(fmt.Sprint("k", i), "v")}); err != nil {
			t.Fatal(err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A follower forwards writes to the leader and serves linearizable reads:
// a value written through one follower is read at once through the other.
func TestFollowerForwardsAndReadsLinearizably(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	f1, f2 := c.nodes[(l+1)%3], c.nodes[(l+2)%3]
	ctx := ctxT(t)
	for i := 0; i < 20; i++ {
		res, _, err := f1.Propose(ctx, []*fsmpb.Command{put("k", fmt.Sprint(i))})
		if err != nil || res[0].Code != fsmpb.Code_OK {
			t.Fatalf("put through follower: %v, %v", res, err)
		}
		var got []byte
		if err := f2.Read(ctx, false, func(s *fsm.State) { got, _ = s.Get("k") }); err != nil {
			t.Fatalf("linearizable read on the other follower: %v", err)
		}
		if string(got) != fmt.Sprint(i) {
			t.Fatalf("read after write %d through another follower = %q, want %q", i, got, fmt.Sprint(i))
		}
	}
}

// Concurrent proposals are grouped into shared entries and each caller
// gets its own result.
func TestConcurrentProposalsGetTheirOwnResults(t *testing.T) {
	c := newCluster(t, 3)
	nd := c.nodes[c.leader()]
	ctx := ctxT(t)
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		go func(i int) {
			res, _, err := nd.Propose(ctx, []*fsmpb.Command{acquire(fmt.Sprint("lock-", i), "o", time.Minute)})
			switch {
			case err != nil:
				errs <- err
			case res[0].Code != fsmpb.Code_OK || res[0].Token == 0:
				errs <- fmt.Errorf("acquire lock-%d: %v", i, res[0])
			default:
				errs <- nil
			}
		}(i)
	}
	for i := 0; i < 200; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var held int
	nd.Read(ctx, true, func(s *fsm.State) { _, held, _, _, _ = s.Counts() })
	if held != 200 {
		t.Fatalf("held locks = %d, want 200", held)
	}
}

// A new leader keeps every hold and its token, and the leader's lease
// expiry hands a lapsed lock on.
func TestFailoverKeepsHoldsAndExpiresLeases(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	ctx := ctxT(t)
	res, _, err := c.nodes[l].Propose(ctx, []*fsmpb.Command{acquire("long", "a", time.Hour), acquire("short", "a", 300*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	longToken := res[0].Token
	c.nodes[l].Close()
	c.nodes[l] = nil
	l2 := c.leader()
	var v fsm.LockView
	c.nodes[l2].Read(ctx, false, func(s *fsm.State) { v, _ = s.Lock("long") })
	if !v.Held || v.Owner != "a" || v.Token != longToken {
		t.Fatalf("after failover lock long = %+v, want held by a with token %d", v, longToken)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.nodes[l2].Read(ctx, false, func(s *fsm.State) { v, _ = s.Lock("short") })
		if !v.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock short still held 10s after its 300ms lease: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node restarted from its data directory, after a snapshot compacted
// its log, has the whole state again.
func TestRestartFromSnapshotAndLog(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	ctx := ctxT(t)
	putKeys(ctx, t, c.nodes[l], 0, 50)
	f := (l + 1) % 3
	if err := c.nodes[f].raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot on node %d: %v", f+1, err)
	}
	putKeys(ctx, t, c.nodes[l], 50, 60)
	c.nodes[f].Close()
	c.start(f)
	var keys int
	if err := c.nodes[f].Read(ctx, false, func(s *fsm.State) { _, _, _, keys, _ = s.Counts() }); err != nil {
		t.Fatal(err)
	}
	if keys != 60 {
		t.Fatalf("restarted node has %d keys, want 60", keys)
	}
}

// Close returns promptly while many callers propose on a busy leader, and
// every caller then returns, with ErrClosed if its write did not finish.
// Before Close drained the proposal pipeline, Raft's shutdown left futures
// in its apply buffer unanswered and Close hung within a few rounds.
func TestCloseUnderLoadReturns(t *testing.T) {
	const rounds, proposers, closeMax = 5, 64, 10 * time.Second
	for round := 1; round <= rounds; round++ {
		c := newCluster(t, 1)
		nd := c.nodes[c.leader()]
		ctx := ctxT(t)
		errs := make(chan error, proposers)
		for i := 0; i < proposers; i++ {
			go func(i int) {
				for j := 0; ; j++ {
					_, _, err := nd.Propose(ctx, []*fsmpb.Command{put(fmt.Sprint("k", i), fmt.Sprint(j))})
					if err != nil {
						errs <- err
						return
					}
				}
			}(i)
		}
		waitApplied(t, nd, 500)
		c.nodes[0] = nil // the cleanup must not wait on a hung Close
		closed := make(chan error, 1)
		go func() { closed <- nd.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("round %d: Close = %v, want nil", round, err)
			}
		case <-time.After(closeMax):
			t.Fatalf("round %d: Close still blocked after %v with %d proposers, want it to return", round, closeMax, proposers)
		}
		for i := 0; i < proposers; i++ {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("round %d: proposer ended with %v, want ErrClosed", round, err)
				}
			case <-time.After(closeMax):
				t.Fatalf("round %d: %d of %d proposers still blocked %v after Close, want all to return ErrClosed", round, proposers-i, proposers, closeMax)
			}
		}
	}
}

// waitApplied waits until nd has applied index, so that load is underway.
func waitApplied(t *testing.T, nd *Node, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nd.WaitApplied(ctx, index); err != nil {
		t.Fatalf("wait for load: %v", err)
	}
}
