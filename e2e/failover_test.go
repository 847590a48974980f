package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/dlockapi"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// othersThan returns the client addresses of every node but skip.
func othersThan(c *testcluster.Cluster, skip int) []string {
	var out []string
	for _, nd := range c.Nodes {
		if nd.ID != skip {
			out = append(out, nd.ClientAddr)
		}
	}
	return out
}

// ackLog records what the cluster acknowledged during a workload.
type ackLog struct {
	mu    sync.Mutex
	puts  map[string]string // key -> value, each key written once
	holds map[string]uint64 // lock -> fencing token of an acknowledged grant never released
}

// Killing the leader with SIGKILL in the middle of a workload loses no
// acknowledged write or grant, keeps a queue's order, and the cluster
// serves again through the surviving nodes.
func TestKillLeaderMidWorkload(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	survivors := othersThan(c, leader)
	acks := &ackLog{puts: map[string]string{}, holds: map[string]uint64{}}

	// A queue that must survive: a holder and five waiters in known order,
	// all talking to nodes that stay up.
	r := &rotor{addrs: survivors}
	holder := newAPI(t, "fifo-holder")
	if !holder.AcquireDLock(r.addr(), "fifo", 60000) {
		t.Fatal("fifo holder: AcquireDLock = false, want true")
	}
	var order []int
	var orderMu sync.Mutex
	var waiters sync.WaitGroup
	for i := 1; i <= 5; i++ {
		api := newAPI(t, fmt.Sprintf("fifo-waiter-%d", i))
		waiters.Add(1)
		go func(i int) {
			defer waiters.Done()
			if !api.AcquireDLock(r.addr(), "fifo", 60000, 60000) {
				t.Errorf("fifo waiter %d: AcquireDLock = false, want true", i)
				return
			}
			orderMu.Lock()
			order = append(order, i)
			orderMu.Unlock()
			api.ReleaseDLock(r.addr(), "fifo")
		}(i)
		waitPending(t, holder, r, "fifo", i)
	}

	stop := make(chan struct{})
	var workers sync.WaitGroup
	for w := 0; w < 6; w++ {
		workers.Add(1)
		go func(w int) {
			defer workers.Done()
			runWorkload(w, c.Endpoints(), acks, stop)
		}(w)
	}
	waitAcks(t, acks, 30)
	c.Kill(leader)
	newLeader := c.WaitLeader(30*time.Second, survivorIDs(c, leader)...)
	before := countAcks(acks)
	waitAcks(t, acks, before+30)
	close(stop)
	workers.Wait()

	if !holder.ReleaseDLock(r.addr(), "fifo") {
		t.Fatal("fifo holder: ReleaseDLock after failover = false, want true")
	}
	waiters.Wait()
	for i, got := range order {
		if got != i+1 {
			t.Fatalf("fifo grant order after failover = %v, want 1..5", order)
		}
	}
	t.Logf("leader %d killed, node %d leads; %d puts and %d holds acknowledged", leader, newLeader, len(acks.puts), len(acks.holds))
	verifyAcks(t, newAPI(t), survivors, acks)

	// The killed node comes back from its disk and catches up. (The leader
	// retries a follower that was down with a backoff of up to about 10s.)
	c.Restart(leader)
	c.WaitLeader(30 * time.Second)
	c.WaitCaughtUp(leader, 60*time.Second)
	verifyAcks(t, newAPI(t), []string{c.Nodes[leader-1].ClientAddr}, acks)
}

func survivorIDs(c *testcluster.Cluster, skip int) []int {
	var ids []int
	for _, nd := range c.Nodes {
		if nd.ID != skip {
			ids = append(ids, nd.ID)
		}
	}
	return ids
}

// runWorkload puts unique keys and takes unique locks (never released)
// until stop, recording only what was acknowledged.
func runWorkload(w int, endpoints []string, acks *ackLog, stop <-chan struct{}) {
	api := dlockapi.NewDLockRaftClientAPI(fmt.Sprintf("worker-%d", w))
	defer api.Close()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		addr := endpoints[(w+i)%len(endpoints)]
		key, value := fmt.Sprintf("k-%d-%d", w, i), fmt.Sprintf("v-%d-%d", w, i)
		if api.PutState(addr, key, []byte(value), 3000) {
			acks.mu.Lock()
			acks.puts[key] = value
			acks.mu.Unlock()
		}
		lock := fmt.Sprintf("l-%d-%d", w, i)
		if api.AcquireDLock(addr, lock, 120000, 3000) {
			if info, ok := api.QueryDLock(addr, lock, 3000); ok && info.Owner == api.ClientId {
				acks.mu.Lock()
				acks.holds[lock] = info.Token
				acks.mu.Unlock()
			}
		}
	}
}

func countAcks(a *ackLog) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.puts) + len(a.holds)
}

func waitAcks(t *testing.T, a *ackLog, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for countAcks(a) < n {
		if time.Now().After(deadline) {
			t.Fatalf("workload made %d acknowledged operations in 60s, want %d", countAcks(a), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verifyAcks reads back every acknowledged put and hold through addrs.
func verifyAcks(t *testing.T, api *dlockapi.DLockRaftClientAPI, addrs []string, a *ackLog) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	i := 0
	for k, v := range a.puts {
		if got := api.GetState(addrs[i%len(addrs)], k, 5000); string(got) != v {
			t.Errorf("acknowledged put %s=%s reads back %q from %s: %s", k, v, got, addrs[i%len(addrs)], explainGet(addrs, k))
		}
		i++
	}
	for lock, token := range a.holds {
		info, ok := api.QueryDLock(addrs[i%len(addrs)], lock, 5000)
		if !ok || info.Token != token || info.Owner == "" {
			t.Errorf("acknowledged hold of %s (token %d) reads back %+v, %v", lock, token, info, ok)
		}
		i++
	}
}

// A client waiting for a lock keeps waiting through a leader failover and
// is granted the lock once the holder's lease passes; the lease is never
// cut short by the failover.
func TestWaitSurvivesFailover(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: othersThan(c, leader)}
	holder, waiter := newAPI(t, "holder"), newAPI(t, "waiter")
	const lease = 3 * time.Second
	sent := time.Now()
	if !holder.AcquireDLock(r.addr(), "failover-wait", lease.Milliseconds()) {
		t.Fatal("holder: AcquireDLock = false, want true")
	}
	got := make(chan bool, 1)
	go func() { got <- waiter.AcquireDLock(r.addr(), "failover-wait", 10000, 20000) }()
	waitPending(t, holder, r, "failover-wait", 1)
	c.Kill(leader)
	if !<-got {
		t.Fatal("waiter: AcquireDLock across a failover = false, want true")
	}
	if waited := time.Since(sent); waited < lease {
		t.Fatalf("waiter granted %v after the holder's acquire was sent, before its %v lease", waited, lease)
	}
	info, ok := waiter.QueryDLock(r.addr(), "failover-wait")
	if !ok || info.Owner != "waiter" {
		t.Fatalf("QueryDLock = %+v, %v; want owner waiter", info, ok)
	}
}

// Every node killed at once and restarted: every acknowledged key and
// hold is there, and fencing tokens keep growing.
func TestRestartAllNodes(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
	api := newAPI(t, "restart-client")
	acks := &ackLog{puts: map[string]string{}, holds: map[string]uint64{}}
	var maxToken uint64
	for i := 0; i < 20; i++ {
		key, value := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
		if !api.PutState(r.addr(), key, []byte(value)) {
			t.Fatalf("PutState(%s) = false, want true", key)
		}
		acks.puts[key] = value
		lock := fmt.Sprintf("lock-%d", i)
		if !api.AcquireDLock(r.addr(), lock, 600000) {
			t.Fatalf("AcquireDLock(%s) = false, want true", lock)
		}
		info, ok := api.QueryDLock(r.addr(), lock)
		if !ok {
			t.Fatalf("QueryDLock(%s) found nothing after a grant", lock)
		}
		acks.holds[lock] = info.Token
		maxToken = max(maxToken, info.Token)
	}
	for _, nd := range c.Nodes {
		c.Kill(nd.ID)
	}
	for _, nd := range c.Nodes {
		c.Restart(nd.ID)
	}
	c.WaitLeader(30 * time.Second)
	verifyAcks(t, api, c.Endpoints(), acks)
	if !api.AcquireDLock(r.addr(), "after-restart", 10000) {
		t.Fatal("AcquireDLock after restart = false, want true")
	}
	info, _ := api.QueryDLock(r.addr(), "after-restart")
	if info == nil || info.Token <= maxToken {
		t.Fatalf("token after restart = %+v, want > %d (tokens only grow)", info, maxToken)
	}
}

// explainGet reads key from every address with the Go client, for a
// failure message that says what each node answered.
func explainGet(addrs []string, key string) string {
	var out []string
	for _, a := range addrs {
		c, err := client.New([]string{a})
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.Get(ctx, key)
		stale, serr := c.Get(ctx, key, client.Stale())
		cancel()
		c.Close()
		out = append(out, fmt.Sprintf("%s: %q %v (stale %q %v)", a, v, err, stale, serr))
	}
	return strings.Join(out, "; ")
}

// A lease whose holder stops renewing expires after a leader change too:
// the new leader expires it (after re-arming it to a full TTL), and hands
// the lock to the waiter.
func TestExpiryAcrossLeaderChange(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: othersThan(c, leader)}
	holder, next := newAPI(t, "holder"), newAPI(t, "next")
	const lease = 2 * time.Second
	sent := time.Now()
	if !holder.AcquireDLock(r.addr(), "expiring", lease.Milliseconds()) {
		t.Fatal("holder: AcquireDLock = false, want true")
	}
	c.Kill(leader)
	c.WaitLeader(30*time.Second, survivorIDs(c, leader)...)
	if !next.AcquireDLock(r.addr(), "expiring", 5000, 20000) {
		t.Fatal("next: AcquireDLock after the holder's lease = false, want true")
	}
	if waited := time.Since(sent); waited < lease {
		t.Fatalf("lock handed on %v after the holder's acquire was sent, before its %v lease", waited, lease)
	}
	if holder.ReleaseDLock(r.addr(), "expiring") {
		t.Fatal("holder: ReleaseDLock of an expired hold = true, want false")
	}
}

// SIGTERM stops a leader gracefully: it exits, the others carry on under a
// new leader, and nothing acknowledged before or during the stop is lost.
func TestGracefulStopOfTheLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	acks := &ackLog{puts: map[string]string{}, holds: map[string]uint64{}}
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for w := 0; w < 3; w++ {
		workers.Add(1)
		go func(w int) {
			defer workers.Done()
			runWorkload(w, othersThan(c, leader), acks, stop)
		}(w)
	}
	waitAcks(t, acks, 20)
	c.Stop(leader)
	c.WaitLeader(30*time.Second, survivorIDs(c, leader)...)
	waitAcks(t, acks, countAcks(acks)+20)
	close(stop)
	workers.Wait()
	verifyAcks(t, newAPI(t), othersThan(c, leader), acks)
	if log := c.Log(leader); !strings.Contains(log, "stopped") {
		t.Fatalf("node %d's log has no clean stop after SIGTERM:\n%s", leader, lastLines(log, 20))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
