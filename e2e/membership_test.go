package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// Membership changes on a live cluster of `dlock serve` processes, while
// clients keep locking: adding a node, removing a follower or the leader,
// moving leadership and stopping the leader with SIGTERM. Each keeps every
// lock's promises: every acquire is granted eventually, no two clients
// hold a lock at once, and each lock's fencing tokens strictly increase.

// lockLoad is a few clients acquiring and releasing a few locks through
// the cluster, checking the locks' promises as they go.
type lockLoad struct {
	t      *testing.T
	stop   chan struct{}
	wg     sync.WaitGroup
	grants atomic.Int64

	mu     sync.Mutex
	holder map[string]int    // lock -> worker told it holds it (0: none)
	last   map[string]uint64 // lock -> latest token granted
	errs   []string
}

const (
	loadWorkers = 4
	loadLocks   = 2
	// loadAcquireMax bounds how long one acquire may take, failovers and
	// membership changes included, before the load calls it a failure.
	loadAcquireMax = 30 * time.Second
)

// startLockLoad starts the workers on endpoints.
func startLockLoad(t *testing.T, endpoints []string) *lockLoad {
	t.Helper()
	l := &lockLoad{t: t, stop: make(chan struct{}), holder: map[string]int{}, last: map[string]uint64{}}
	for w := 1; w <= loadWorkers; w++ {
		c, err := client.New(endpoints, client.WithCallTimeout(2*time.Second))
		if err != nil {
			t.Fatalf("client.New(%v): %v", endpoints, err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			l.work(w, c)
		}()
	}
	return l
}

func (l *lockLoad) failf(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *lockLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *lockLoad) work(w int, c *client.Client) {
	for i := 0; !l.stopped(); i++ {
		name := fmt.Sprintf("load-%d", (w+i)%loadLocks)
		h, err := l.acquire(c, name)
		if err != nil {
			l.failf("worker %d: acquire %s not granted within %v: %v", w, name, loadAcquireMax, err)
			return
		}
		l.granted(w, name, h.Token())
		if h.Err() != nil {
			l.failf("worker %d: lost %s (token %d) while holding it: %v", w, name, h.Token(), h.Err())
		}
		// The hold ends here as far as the checks go: once the release is
		// sent, the next waiter may be granted before it is acknowledged.
		l.mu.Lock()
		l.holder[name] = 0
		l.mu.Unlock()
		if err := l.release(h); err != nil {
			l.failf("worker %d: release %s (token %d): %v", w, name, h.Token(), err)
			return
		}
	}
}

// acquire retries an acquire that failed on unavailability (a failover, a
// stopping node) until it is granted or loadAcquireMax passes.
func (l *lockLoad) acquire(c *client.Client, name string) (*client.Lock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), loadAcquireMax)
	defer cancel()
	for {
		h, err := c.Acquire(ctx, name, client.WithTTL(10*time.Second), client.WithWait(5*time.Second))
		if err == nil || ctx.Err() != nil || !(errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrWaitTimeout)) {
			return h, err
		}
	}
}

func (l *lockLoad) release(h *client.Lock) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadAcquireMax)
	defer cancel()
	for {
		err := h.Release(ctx)
		if err == nil || ctx.Err() != nil || !errors.Is(err, client.ErrUnavailable) {
			return err
		}
	}
}

// granted checks a grant against the others: nobody else holds the lock,
// and its token is above every earlier grant's.
func (l *lockLoad) granted(w int, name string, token uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if other := l.holder[name]; other != 0 {
		l.errs = append(l.errs, fmt.Sprintf("worker %d granted %s (token %d) while worker %d holds it", w, name, token, other))
	}
	if token <= l.last[name] {
		l.errs = append(l.errs, fmt.Sprintf("worker %d granted %s with token %d, not above the previous grant's %d", w, name, token, l.last[name]))
	}
	l.holder[name], l.last[name] = w, token
	l.grants.Add(1)
}

// waitGrants waits until the load has made n more grants than when called.
func (l *lockLoad) waitGrants(n int64, timeout time.Duration) {
	l.t.Helper()
	want := l.grants.Load() + n
	deadline := time.Now().Add(timeout)
	for l.grants.Load() < want {
		if time.Now().After(deadline) {
			l.t.Fatalf("the lock load made %d of %d grants within %v: %v", l.grants.Load(), want, timeout, l.problems())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *lockLoad) problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// finish stops the workers and fails the test on any broken promise.
func (l *lockLoad) finish() {
	l.t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, p := range l.problems() {
		l.t.Error(p)
	}
	l.t.Logf("lock load: %d grants", l.grants.Load())
}

// waitMembers waits until every node in ids lists exactly the voters want,
// each with the client address its process serves on.
func waitMembers(t *testing.T, c *testcluster.Cluster, ids []int, want []int, timeout time.Duration) {
	t.Helper()
	var wantView []string
	for _, id := range want {
		wantView = append(wantView, fmt.Sprintf("%d voter %s", id, c.Nodes[id-1].ClientAddr))
	}
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			st, err := c.Status(context.Background(), id)
			var got []string
			if err == nil {
				for _, m := range st.Members {
					got = append(got, fmt.Sprintf("%d %s %s", m.Id, m.Suffrage, m.ClientAddress))
				}
				if slices.Equal(got, wantView) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lists members %q (err %v); want %q", id, got, err, wantView)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func idsExcept(c *testcluster.Cluster, skip int) []int {
	var ids []int
	for _, nd := range c.Nodes {
		if nd.ID != skip {
			ids = append(ids, nd.ID)
		}
	}
	return ids
}

// waitServing waits until node id answers Status on its client port.
func waitServing(t *testing.T, c *testcluster.Cluster, id int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.Status(context.Background(), id); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("node %d does not answer on its client port: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node started with id.join is added to a 3-node cluster under load: it
// becomes the fourth voter, every node lists it with its client address,
// it can take the lead, and it serves reads and writes through its own
// endpoint.
func TestAddMemberUnderLoad(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	load := startLockLoad(t, c.Endpoints())
	load.waitGrants(20, 30*time.Second)

	joiner := c.StartJoiner()
	waitServing(t, c, joiner.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Asked of a follower, which passes it to the leader.
	leader := c.WaitLeader(30*time.Second, 1, 2, 3)
	follower := leader%3 + 1
	ms, err := newClient(t, c.Nodes[follower-1].ClientAddr).AddMember(ctx, uint32(joiner.ID), joiner.PeerAddr, joiner.ClientAddr)
	if err != nil {
		t.Fatalf("add node %d through node %d: %v", joiner.ID, follower, err)
	}
	if len(ms) != 4 || !ms[3].Voter || ms[3].ClientAddress != joiner.ClientAddr {
		t.Fatalf("members after the add = %+v; want 4 voters, node 4 serving clients at %s", ms, joiner.ClientAddr)
	}
	waitMembers(t, c, []int{1, 2, 3, 4}, []int{1, 2, 3, 4}, 10*time.Second)
	load.waitGrants(20, 30*time.Second)

	// The others dial it at the address it was added with: it can lead.
	if to, err := newClient(t, c.Endpoints()[:3]...).TransferLeader(ctx, uint32(joiner.ID)); err != nil || to != uint32(joiner.ID) {
		t.Fatalf("transfer leadership to node 4: leader %d, %v", to, err)
	}
	load.waitGrants(20, 30*time.Second)

	// The new node serves through its own endpoint.
	own := newClient(t, joiner.ClientAddr)
	if _, err := own.Put(ctx, "via-4", []byte("yes")); err != nil {
		t.Fatalf("put through node 4: %v", err)
	}
	if v, err := own.Get(ctx, "via-4"); err != nil || string(v) != "yes" {
		t.Fatalf("get through node 4 = %q, %v; want \"yes\"", v, err)
	}
	h, err := own.Acquire(ctx, "load-0", client.WithWait(20*time.Second))
	if err != nil {
		t.Fatalf("acquire load-0 through node 4: %v", err)
	}
	load.granted(-1, "load-0", h.Token())
	load.mu.Lock()
	load.holder["load-0"] = 0
	load.mu.Unlock()
	if err := h.Release(ctx); err != nil {
		t.Fatalf("release load-0 through node 4: %v", err)
	}
	load.finish()
}

// Removing a follower under load: the others keep serving, every node left
// lists 3 voters, and the removed process stops by itself.
func TestRemoveFollowerUnderLoad(t *testing.T) {
	testRemoveUnderLoad(t, false)
}

// Removing the leader under load: it hands leadership to another voter
// first, then is removed and stops; the others keep serving.
func TestRemoveLeaderUnderLoad(t *testing.T) {
	testRemoveUnderLoad(t, true)
}

func testRemoveUnderLoad(t *testing.T, removeLeader bool) {
	c := testcluster.Start(t, 4)
	leader := c.WaitLeader(30 * time.Second)
	victim := leader%4 + 1
	if removeLeader {
		victim = leader
	}
	load := startLockLoad(t, c.Endpoints())
	load.waitGrants(20, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := newClient(t, c.Endpoints()...).RemoveMember(ctx, uint32(victim))
	if err != nil {
		t.Fatalf("remove node %d (leader %d): %v", victim, leader, err)
	}
	if len(ms) != 3 || slices.ContainsFunc(ms, func(m client.Member) bool { return m.ID == uint32(victim) }) {
		t.Fatalf("members after removing node %d = %+v; want the 3 others", victim, ms)
	}
	if !c.WaitExit(victim, 15*time.Second) {
		t.Fatalf("removed node %d still runs 15s after its removal:\n%s", victim, lastLines(c.Log(victim), 20))
	}
	if log := c.Log(victim); !strings.Contains(log, "removed from the cluster") {
		t.Fatalf("removed node %d's log does not say why it stopped:\n%s", victim, lastLines(log, 20))
	}
	rest := idsExcept(c, victim)
	newLeader := c.WaitLeader(30*time.Second, rest...)
	if removeLeader && newLeader == leader {
		t.Fatalf("node %d still leads after its removal", leader)
	}
	waitMembers(t, c, rest, rest, 10*time.Second)
	load.waitGrants(20, 30*time.Second)
	load.finish()
}

// Moving leadership under load (transfer-leader) keeps the locks' promises.
func TestTransferLeaderUnderLoad(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	load := startLockLoad(t, c.Endpoints())
	load.waitGrants(20, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	moved, err := newClient(t, c.Endpoints()...).TransferLeader(ctx, 0)
	if err != nil || moved == uint32(leader) {
		t.Fatalf("transfer leadership away from node %d: leader %d, %v", leader, moved, err)
	}
	if now := c.WaitLeader(30 * time.Second); now != int(moved) {
		t.Fatalf("node %d leads after the transfer to node %d", now, moved)
	}
	load.waitGrants(20, 30*time.Second)
	load.finish()
}

// SIGTERM of the leader under load: it hands leadership over and exits;
// the others keep serving and the locks keep their promises.
func TestSIGTERMOfLeaderUnderLoad(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	load := startLockLoad(t, c.Endpoints())
	load.waitGrants(20, 30*time.Second)

	c.Stop(leader)
	c.WaitLeader(30*time.Second, idsExcept(c, leader)...)
	load.waitGrants(20, 30*time.Second)
	load.finish()
	if log := c.Log(leader); !strings.Contains(log, "stopped") {
		t.Fatalf("node %d's log has no clean stop after SIGTERM:\n%s", leader, lastLines(log, 20))
	}
}

// A membership change the cluster cannot make is refused with a reason and
// changes nothing.
func TestMembershipRefusals(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	joiner := c.StartJoiner()
	waitServing(t, c, joiner.ID)
	cl := newClient(t, c.Endpoints()[:3]...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host, _, _ := net.SplitHostPort(joiner.PeerAddr)
	free := freeAddr(t, host)
	add := func(id int, peer, clientAddr string) error {
		_, err := cl.AddMember(ctx, uint32(id), peer, clientAddr)
		return err
	}
	remove := func(id int) error {
		_, err := cl.RemoveMember(ctx, uint32(id))
		return err
	}
	tests := []struct {
		name    string
		give    func() error
		want    error
		wantMsg string
	}{
		{"an id that is a member", func() error { return add(2, joiner.PeerAddr, joiner.ClientAddr) }, client.ErrInvalid, "node 2 is a member already"},
		{"a peer address in use", func() error { return add(4, c.Nodes[0].PeerAddr, joiner.ClientAddr) }, client.ErrInvalid, "in use by node 1"},
		{"a client address in use", func() error { return add(4, joiner.PeerAddr, c.Nodes[1].ClientAddr) }, client.ErrInvalid, "in use by node 2"},
		{"an undialable address", func() error { return add(4, "0.0.0.0:1", joiner.ClientAddr) }, client.ErrInvalid, "peer_address"},
		{"another node's id", func() error { return add(5, joiner.PeerAddr, joiner.ClientAddr) }, client.ErrInvalid, "is node 4, not node 5"},
		{"a node that is not running", func() error { return add(5, free, joiner.ClientAddr) }, client.ErrMemberUnreachable, free},
		{"removing an unknown id", func() error { return remove(9) }, client.ErrInvalid, "no member with id 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give()
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("got error %v; want %v saying %q", err, tt.want, tt.wantMsg)
			}
		})
	}
	waitMembers(t, c, []int{1, 2, 3}, []int{1, 2, 3}, 5*time.Second)

	// The last voter of a cluster stays.
	single := testcluster.Start(t, 1)
	single.WaitLeader(30 * time.Second)
	other := newClient(t, single.Endpoints()...)
	if _, err := other.RemoveMember(ctx, 1); !errors.Is(err, client.ErrLastVoter) {
		t.Fatalf("remove the only voter: got %v, want ErrLastVoter", err)
	}
	// A node in one cluster does not join another.
	if err := add(4, joiner.PeerAddr, joiner.ClientAddr); err != nil {
		t.Fatalf("add node 4: %v", err)
	}
	_, err := other.AddMember(ctx, 4, joiner.PeerAddr, joiner.ClientAddr)
	if !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "belongs to a cluster already") {
		t.Fatalf("add another cluster's node 4: got %v, want ErrInvalid saying it belongs to a cluster", err)
	}
	waitMembers(t, single, []int{1}, []int{1}, 5*time.Second)
}

// A second change while one runs is refused and changes nothing. The
// first, an add whose new node sits behind a slow link, is still catching
// the node up when the second arrives; cut off, it ends at its deadline
// with the node a non-voter, and adding the node again promotes it.
func TestMembershipChangeInProgress(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	joiner := c.StartJoiner()
	waitServing(t, c, joiner.ID)
	fabric := faultnet.New(1)
	t.Cleanup(fabric.Close)
	host, _, _ := net.SplitHostPort(joiner.PeerAddr)
	const outside = 9 // the fabric's name for every node dialling the joiner
	slowPeer, err := fabric.Link(outside, joiner.ID, host, joiner.PeerAddr)
	if err != nil {
		t.Fatal(err)
	}
	fabric.SetDelay(outside, joiner.ID, 150*time.Millisecond, 0)
	fabric.SetDelay(joiner.ID, outside, 150*time.Millisecond, 0)

	cl := newClient(t, c.Nodes[leader-1].ClientAddr)
	added := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cl.AddMember(ctx, uint32(joiner.ID), slowPeer, joiner.ClientAddr)
		added <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Once the joiner is a non-voter the add is waiting for it to catch up.
	for {
		st, err := c.Status(ctx, leader)
		if err == nil && slices.ContainsFunc(st.Members, func(m *dlockv1.Member) bool { return m.Id == uint32(joiner.ID) }) {
			break
		}
		select {
		case err := <-added:
			t.Fatalf("the add ended (%v) before the test saw node %d as a non-voter", err, joiner.ID)
		case <-time.After(5 * time.Millisecond):
		}
	}
	victim := leader%3 + 1
	if _, err := cl.RemoveMember(ctx, uint32(victim)); !errors.Is(err, client.ErrChangeInProgress) {
		t.Fatalf("remove node %d during the add: got %v, want ErrChangeInProgress", victim, err)
	}
	if _, err := cl.AddMember(ctx, 5, joiner.PeerAddr, joiner.ClientAddr); !errors.Is(err, client.ErrChangeInProgress) {
		t.Fatalf("add node 5 during the add: got %v, want ErrChangeInProgress", err)
	}
	waitMembersLike(t, c, leader, []string{"1 voter", "2 voter", "3 voter", "4 nonvoter"})

	// Cut off, the joiner cannot catch up before the add's deadline.
	fabric.Block(outside, joiner.ID)
	fabric.Block(joiner.ID, outside)
	if err := <-added; !errors.Is(err, client.ErrNotCaughtUp) {
		t.Fatalf("the add of a cut-off node: got %v, want ErrNotCaughtUp", err)
	}
	waitMembersLike(t, c, leader, []string{"1 voter", "2 voter", "3 voter", "4 nonvoter"})
	fabric.Heal()
	ms, err := cl.AddMember(ctx, uint32(joiner.ID), slowPeer, joiner.ClientAddr)
	if err != nil || len(ms) != 4 || !ms[3].Voter {
		t.Fatalf("add node %d again: members %+v, %v; want it a voter", joiner.ID, ms, err)
	}
}

// waitMembersLike waits until node id lists members as "ID SUFFRAGE".
func waitMembersLike(t *testing.T, c *testcluster.Cluster, id int, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background(), id)
		var got []string
		if err == nil {
			for _, m := range st.Members {
				got = append(got, fmt.Sprintf("%d %s", m.Id, m.Suffrage))
			}
			if slices.Equal(got, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d lists members %q (err %v); want %q", id, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The membership commands of the dlock CLI: list, add, remove, with the
// exit codes docs/cli.md promises.
func TestMemberCLI(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	joiner := c.StartJoiner()
	waitServing(t, c, joiner.ID)
	eps := strings.Join(c.Endpoints()[:3], ",")
	run := dlockAgainst(t, eps)
	id := fmt.Sprint(joiner.ID)
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"cluster", "member", "list"}, 0, "3   voter"},
		{[]string{"cluster", "member", "add", "--peer-address", joiner.PeerAddr}, 2, "--id"},
		{[]string{"cluster", "member", "add", "--id", "2", "--peer-address", joiner.PeerAddr, "--client-address", joiner.ClientAddr}, 2, "member already"},
		{[]string{"cluster", "member", "add", "--id", id, "--peer-address", joiner.PeerAddr, "--client-address", joiner.ClientAddr}, 0, "added node 4 as a voter"},
		{[]string{"cluster", "member", "list"}, 0, "4   voter     false   " + joiner.PeerAddr + "  " + joiner.ClientAddr},
		{[]string{"cluster", "member", "remove", "--id", "7"}, 2, "no member with id 7"},
		{[]string{"cluster", "member", "remove", "--id", id}, 0, "removed node 4"},
	}
	for _, s := range steps {
		out, code := run(s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) {
			t.Fatalf("dlock %s: exit %d, output %q; want exit %d and output containing %q",
				strings.Join(s.args, " "), code, out, s.wantCode, s.wantOut)
		}
	}
	out, code := run("cluster", "member", "list", "-o", "json")
	var ms []struct {
		ID    int  `json:"id"`
		Voter bool `json:"voter"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
		t.Fatalf("dlock cluster member list -o json: exit %d, %q; want 3 members", code, out)
	}
	if !c.WaitExit(joiner.ID, 15*time.Second) {
		t.Fatalf("removed node %d still runs", joiner.ID)
	}
}

func freeAddr(t *testing.T, host string) string {
	t.Helper()
	return freeport.Addr(t, host)
}
