package docker

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/dlockapi"
)

// composeCluster is deploy/compose/docker-compose.yaml running under a unique project name, its
// client ports published on free host ports.
type composeCluster struct {
	*project
	endpoints  map[int]string // node id -> published client address
	containers map[int]string // node id -> container id
	network    string
}

// startCompose starts the seed-style 3-node cluster from deploy/compose with the image under test.
// A host port taken between probing and `up` is retried with fresh ports.
func startCompose(t *testing.T) *composeCluster {
	t.Helper()
	compose := requireDocker(t)
	image, _ := buildImage(t)
	file := filepath.Join(repoRoot(), "deploy", "compose", "docker-compose.yaml")
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 3)
		c := &composeCluster{
			project: &project{t: t, compose: compose, name: "dlocke2e" + randomHex(4), file: file, env: []string{
				"DLOCK_IMAGE=" + image,
				"DLOCK_PORT_1=" + strconv.Itoa(ports[0]),
				"DLOCK_PORT_2=" + strconv.Itoa(ports[1]),
				"DLOCK_PORT_3=" + strconv.Itoa(ports[2]),
			}},
			endpoints:  map[int]string{1: addr(ports[0]), 2: addr(ports[1]), 3: addr(ports[2])},
			containers: map[int]string{},
		}
		err := c.up()
		if err != nil && portTaken(err) && attempt < 3 {
			t.Logf("attempt %d: a host port was taken meanwhile, trying others: %v", attempt, err)
			continue
		}
		if err != nil {
			t.Fatalf("start the compose cluster: %v", err)
		}
		for id := 1; id <= 3; id++ {
			c.containers[id] = c.container(fmt.Sprintf("raft_peer%d", id))
		}
		c.network = docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", c.containers[1])
		return c
	}
}

// kill sends SIGKILL to node ids' containers (docker kill) at once.
func (c *composeCluster) kill(ids ...int) {
	c.t.Helper()
	args := []string{"kill"}
	for _, id := range ids {
		args = append(args, c.containers[id])
	}
	docker(c.t, args...)
}

// start starts node ids' stopped containers again, with their volumes.
func (c *composeCluster) start(ids ...int) {
	c.t.Helper()
	args := []string{"start"}
	for _, id := range ids {
		args = append(args, c.containers[id])
	}
	docker(c.t, args...)
}

// disconnect cuts node id off the cluster's network: from its peers and from its published port.
func (c *composeCluster) disconnect(id int) {
	c.t.Helper()
	docker(c.t, "network", "disconnect", c.network, c.containers[id])
}

// reconnect puts node id back on the network under its service name, which its peers dial.
func (c *composeCluster) reconnect(id int) {
	c.t.Helper()
	docker(c.t, "network", "connect", "--alias", fmt.Sprintf("raft_peer%d", id), c.network, c.containers[id])
}

// rotor hands out addresses in turn, so that every node answers some calls.
type rotor struct {
	mu    sync.Mutex
	addrs []string
	next  int
}

func (r *rotor) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.addrs[r.next%len(r.addrs)]
	r.next++
	return a
}

func newAPI(t *testing.T, id ...string) *dlockapi.DLockRaftClientAPI {
	api := dlockapi.NewDLockRaftClientAPI(id...)
	t.Cleanup(api.Close)
	return api
}

// The seed's Docker experiment, end to end: `make image`'s image runs the seed's own node configs in
// Docker Compose; the seed's four integration scenarios pass through the published ports; then the
// cluster loses its leader to docker kill, has a follower cut off the network, and is killed and
// restarted whole, and keeps every acknowledged key, lock and queue, with mutual exclusion and
// growing fencing tokens throughout.
func TestComposeCluster(t *testing.T) {
	start := time.Now()
	c := startCompose(t)
	leader := waitLeader(t, c.endpoints)
	t.Logf("cluster %s serving, leader node %d, %v after the test began", c.name, leader, time.Since(start).Round(time.Millisecond))

	t.Run("seed scenarios", func(t *testing.T) {
		r := &rotor{addrs: values(c.endpoints)}
		t.Run("PutDelGetState", func(t *testing.T) { seedPutDelGetState(t, r) })
		t.Run("NormalRelease", func(t *testing.T) { seedNormalRelease(t, r) })
		t.Run("ExpireAutomatically", func(t *testing.T) { seedExpireAutomatically(t, r) })
		t.Run("FIFORacing", func(t *testing.T) { seedFIFORacing(t, r) })
	})
	t.Run("health checks", func(t *testing.T) { waitHealthy(t, c) })
	if t.Failed() {
		return
	}
	t.Run("faults", func(t *testing.T) { faults(t, c) })
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// The KV store under 100 concurrent writers: every acknowledged Put is read back, deleting a missing
// key reports false, deleted keys are gone.
func seedPutDelGetState(t *testing.T, r *rotor) {
	api := newAPI(t)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if !api.PutState(r.addr(), strconv.Itoa(i%20), []byte(strconv.Itoa(i))) {
				t.Errorf("PutState(key %d, value %d) = false, want true", i%20, i)
			}
		})
	}
	wg.Wait()
	for i := 15; i < 25; i++ {
		wg.Go(func() {
			if got, want := api.DelState(r.addr(), strconv.Itoa(i)), i <= 19; got != want {
				t.Errorf("DelState(key %d) = %v, want %v", i, got, want)
			}
		})
	}
	wg.Wait()
	for i := range 25 {
		v := api.GetState(r.addr(), strconv.Itoa(i))
		if i >= 15 {
			if v != nil {
				t.Errorf("GetState(key %d) = %q after delete, want nil", i, v)
			}
			continue
		}
		if n, err := strconv.Atoi(string(v)); err != nil || n%20 != i {
			t.Errorf("GetState(key %d) = %q, want a value written to it (n with n%%20 == %d)", i, v, i)
		}
	}
}

// Normal release: a second client cannot take a held lock, takes it after the holder releases, and
// the lock's record shows each step.
func seedNormalRelease(t *testing.T, r *rotor) {
	const lock = "DLockReleaseTest"
	c1, c2 := newAPI(t), newAPI(t)
	if !c1.AcquireDLock(r.addr(), lock, 6000) {
		t.Fatal("client 1: AcquireDLock = false, want true")
	}
	if c2.AcquireDLock(r.addr(), lock, 2000, 1000) {
		t.Fatal("client 2: AcquireDLock of a held lock = true, want false")
	}
	if info, ok := c1.QueryDLock(r.addr(), lock); !ok || info.Owner != c1.ClientId || info.PendingNum != 0 {
		t.Fatalf("QueryDLock while held = %+v, %v; want owner %s and no waiter left", info, ok, c1.ClientId)
	}
	if c2.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 2: ReleaseDLock of client 1's lock = true, want false")
	}
	if !c1.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 1: ReleaseDLock = false, want true")
	}
	if info, ok := c1.QueryDLock(r.addr(), lock); !ok || info.Owner != "" || info.Nonce != 1 {
		t.Fatalf("QueryDLock after release = %+v, %v; want no owner, nonce 1", info, ok)
	}
	if !c2.AcquireDLock(r.addr(), lock, 2000) {
		t.Fatal("client 2: AcquireDLock after release = false, want true")
	}
	if info, ok := c2.QueryDLock(r.addr(), lock); !ok || info.Owner != c2.ClientId || info.Nonce != 2 {
		t.Fatalf("QueryDLock after client 2's grant = %+v, %v; want owner %s, nonce 2", info, ok, c2.ClientId)
	}
	if !c2.ReleaseDLock(r.addr(), lock) || c2.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 2: ReleaseDLock twice, want true then false")
	}
}

// Automatic expiry: a lock nobody releases is released by the cluster when its lease passes, never
// before, and handed to the waiting client.
func seedExpireAutomatically(t *testing.T, r *rotor) {
	const lock, lease = "DLockExpireTest", 1500 * time.Millisecond
	c1, c2 := newAPI(t), newAPI(t)
	sent := time.Now()
	if !c1.AcquireDLock(r.addr(), lock, lease.Milliseconds()) {
		t.Fatal("client 1: AcquireDLock = false, want true")
	}
	if c2.AcquireDLock(r.addr(), lock, 4000, 200) {
		t.Fatal("client 2: AcquireDLock while client 1's lease runs = true, want false")
	}
	if !c2.AcquireDLock(r.addr(), lock, 4000, 10000) {
		t.Fatal("client 2: AcquireDLock waiting past client 1's lease = false, want true")
	}
	if waited := time.Since(sent); waited < lease {
		t.Fatalf("client 2 granted %v after client 1's acquire was sent, before its %v lease passed", waited, lease)
	}
	if info, ok := c1.QueryDLock(r.addr(), lock); !ok || info.Owner != c2.ClientId {
		t.Fatalf("QueryDLock = %+v, %v; want owner %s", info, ok, c2.ClientId)
	}
	if c1.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 1: ReleaseDLock of an expired hold = true, want false")
	}
}

// FIFO racing: nine clients queue on a held lock in a known order and are granted it in that order.
func seedFIFORacing(t *testing.T, r *rotor) {
	const lock, racers = "DLockRacingTest", 9
	holder := newAPI(t)
	if !holder.AcquireDLock(r.addr(), lock, 60000) {
		t.Fatal("holder: AcquireDLock = false, want true")
	}
	order := queueWaiters(t, r, lock, "racer", racers, holder)
	if !holder.ReleaseDLock(r.addr(), lock) {
		t.Fatal("holder: ReleaseDLock = false, want true")
	}
	checkOrder(t, order(), racers)
}

// queueWaiters queues n clients named prefix-1..n on lock one after another, each waiting up to 60s
// and releasing once granted, and returns a function that waits for all of them and returns the
// order they were granted in.
func queueWaiters(t *testing.T, r *rotor, lock, prefix string, n int, observer *dlockapi.DLockRaftClientAPI) func() []int {
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		api := newAPI(t, fmt.Sprintf("%s-%d", prefix, i))
		at := r.addr()
		wg.Go(func() {
			if !api.AcquireDLock(at, lock, 10000, 60000) {
				t.Errorf("%s %d: AcquireDLock = false, want true", prefix, i)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if !api.ReleaseDLock(at, lock) {
				t.Errorf("%s %d: ReleaseDLock = false, want true", prefix, i)
			}
		})
		waitPending(t, observer, r, lock, i)
	}
	return func() []int {
		wg.Wait()
		return order
	}
}

func checkOrder(t *testing.T, order []int, n int) {
	t.Helper()
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(order, want) {
		t.Fatalf("grant order = %v, want %v: the order they queued in", order, want)
	}
}

// waitPending waits until lock has at least n waiters queued.
func waitPending(t *testing.T, api *dlockapi.DLockRaftClientAPI, r *rotor, lock string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, ok := api.QueryDLock(r.addr(), lock)
		if ok && int(info.PendingNum) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: %+v after 20s, want %d waiters", lock, info, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// durable is the state written before the faults that must survive all of them.
type durable struct {
	keys      map[string]string
	lock      string
	owner     string
	token     uint64
	maxBefore uint64 // the largest token granted before the faults
}

func faults(t *testing.T, c *composeCluster) {
	all := values(c.endpoints)
	cl, err := client.New(all)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	defer cl.Close()
	d := writeDurable(t, cl)
	mx := startMutexWorkers(t, all, 2)
	defer mx.stop()
	mx.waitGrants(t, 3)

	// A queue held by one client with three waiters, queued through a follower that stays up.
	leader := waitLeader(t, c.endpoints)
	w := (leader % 3) + 1
	qr := &rotor{addrs: []string{c.endpoints[w]}}
	qholder := newAPI(t, "queue-holder")
	if !qholder.AcquireDLock(qr.addr(), "durable-queue", 300000) {
		t.Fatal("queue holder: AcquireDLock = false, want true")
	}
	order := queueWaiters(t, qr, "durable-queue", "queued", 3, qholder)

	t.Logf("docker kill the leader, node %d", leader)
	c.kill(leader)
	newLeader := waitLeader(t, without(c.endpoints, leader))
	t.Logf("node %d leads", newLeader)
	checkDurable(t, cl, d, "after the leader was killed")
	if info, ok := qholder.QueryDLock(qr.addr(), "durable-queue"); !ok || info.Owner != "queue-holder" || info.PendingNum != 3 {
		t.Errorf("queue after the leader was killed = %+v, %v; want held by queue-holder with 3 waiters", info, ok)
	}
	mx.waitGrants(t, mx.grantsSoFar()+2)
	c.start(leader)
	waitCaughtUp(t, c.endpoints, leader)
	if !qholder.ReleaseDLock(qr.addr(), "durable-queue") {
		t.Fatal("queue holder: ReleaseDLock = false, want true")
	}
	checkOrder(t, order(), 3)

	leader = waitLeader(t, c.endpoints)
	f := (leader % 3) + 1
	t.Logf("docker network disconnect node %d (a follower); node %d leads", f, leader)
	c.disconnect(f)
	putKey(t, cl, d, "partition/written-while-cut-off", "yes")
	mx.waitGrants(t, mx.grantsSoFar()+2)
	c.reconnect(f)
	waitCaughtUp(t, c.endpoints, f)
	checkReplica(t, c.endpoints[f], "partition/written-while-cut-off", "yes")

	t.Log("docker kill every node at once, then start them again")
	c.kill(1, 2, 3)
	c.start(1, 2, 3)
	waitLeader(t, c.endpoints)
	checkDurable(t, cl, d, "after every node was killed and restarted")
	mx.waitGrants(t, mx.grantsSoFar()+2)
	mx.stop()
	mx.check(t, d.maxBefore)
}

// writeDurable writes 20 keys and takes a lock with a 5-minute lease, never renewed.
func writeDurable(t *testing.T, cl *client.Client) *durable {
	t.Helper()
	d := &durable{keys: map[string]string{}, lock: "durable-lock"}
	for i := range 20 {
		putKey(t, cl, d, fmt.Sprintf("durable/%02d", i), fmt.Sprintf("value-%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := cl.Acquire(ctx, d.lock, client.WithTTL(5*time.Minute), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("Acquire(%s) = %v, want a hold", d.lock, err)
	}
	d.owner, d.token, d.maxBefore = l.Owner(), l.Token(), l.Token()
	return d
}

func putKey(t *testing.T, cl *client.Client, d *durable, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, key, []byte(value)); err != nil {
		t.Fatalf("Put(%s) = %v, want nil", key, err)
	}
	d.keys[key] = value
}

// checkDurable reads back every key and the lock, linearizably.
func checkDurable(t *testing.T, cl *client.Client, d *durable, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, want := range d.keys {
		got, err := cl.Get(ctx, k)
		if err != nil || string(got) != want {
			t.Errorf("%s: Get(%s) = %q, %v; want %q", when, k, got, err, want)
		}
	}
	info, err := cl.Query(ctx, d.lock)
	if err != nil || info.Owner != d.owner || info.Token != d.token {
		t.Errorf("%s: Query(%s) = %+v, %v; want held by %s with token %d", when, d.lock, info, err, d.owner, d.token)
	}
}

// checkReplica reads key from the node at endpoint's own replica.
func checkReplica(t *testing.T, endpoint, key, want string) {
	t.Helper()
	cl, err := client.New([]string{endpoint})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := cl.Get(ctx, key, client.Stale()); err != nil || string(got) != want {
		t.Errorf("stale Get(%s) from %s = %q, %v; want %q", key, endpoint, got, err, want)
	}
}

// hold is one grant as a worker saw it. The client counts a lease from before it sent the request,
// so the holder may use the lock until end = min(sent+TTL, when it sent its release).
type hold struct {
	worker   int
	token    uint64
	sent     time.Time
	returned time.Time
	end      time.Time
}

// mutexWorkers take one lock over and over from separate clients while the faults happen.
type mutexWorkers struct {
	mu     sync.Mutex
	holds  []hold
	grants int
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	clis   []*client.Client
}

const mutexTTL = 2 * time.Second

func startMutexWorkers(t *testing.T, endpoints []string, n int) *mutexWorkers {
	t.Helper()
	m := &mutexWorkers{done: make(chan struct{})}
	for w := 1; w <= n; w++ {
		cl, err := client.New(endpoints)
		if err != nil {
			t.Fatalf("client.New: %v", err)
		}
		m.clis = append(m.clis, cl)
		m.wg.Go(func() { m.work(w, cl) })
	}
	return m
}

func (m *mutexWorkers) work(w int, cl *client.Client) {
	for {
		select {
		case <-m.done:
			return
		default:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := cl.Acquire(ctx, "mutex", client.WithTTL(mutexTTL), client.WithoutAutoRenew())
		cancel()
		if err != nil {
			continue // unavailable during a fault, or the wait ran out: try again
		}
		h := hold{worker: w, token: l.Token(), sent: sent, returned: time.Now()}
		// The protected work: a write through the cluster, carrying the fencing token.
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = cl.Put(ctx, "mutex/last-token", []byte(strconv.FormatUint(h.token, 10)))
		h.end = time.Now()
		if lapse := sent.Add(mutexTTL); lapse.Before(h.end) {
			h.end = lapse
		}
		_ = l.Release(ctx)
		cancel()
		m.mu.Lock()
		m.holds = append(m.holds, h)
		m.grants++
		m.mu.Unlock()
	}
}

func (m *mutexWorkers) grantsSoFar() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.grants
}

// waitGrants waits until the workers have been granted the lock n times in all.
func (m *mutexWorkers) waitGrants(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(leaderTimeout)
	for m.grantsSoFar() < n {
		if time.Now().After(deadline) {
			t.Fatalf("mutex workers: %d grants after %v, want %d", m.grantsSoFar(), leaderTimeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mutexWorkers) stop() {
	m.once.Do(func() {
		close(m.done)
		m.wg.Wait()
		for _, cl := range m.clis {
			cl.Close()
		}
	})
}

// check fails t with every problem mutexProblems finds.
func (m *mutexWorkers) check(t *testing.T, above uint64) {
	t.Helper()
	m.mu.Lock()
	holds := slices.Clone(m.holds)
	m.mu.Unlock()
	if len(holds) == 0 {
		t.Fatal("mutex workers were never granted the lock")
	}
	for _, p := range mutexProblems(holds, above) {
		t.Error(p)
	}
	t.Logf("mutex: %d grants, tokens %d..%d", len(holds), slices.MinFunc(holds, byToken).token, slices.MaxFunc(holds, byToken).token)
}

func byToken(a, b hold) int { return cmp.Compare(a.token, b.token) }

// mutexProblems checks every grant the workers saw, in the order each worker saw them: tokens are
// unique and above every token granted before, each worker's tokens grow, and no grant came while an
// earlier holder could still use the lock. Tokens order grants, so B was granted after A if B's token
// is larger; B's grant came before B's Acquire returned, and A could use the lock until A's end:
// B.returned < A.end proves two holders at once.
func mutexProblems(holds []hold, above uint64) []string {
	var problems []string
	last := map[int]uint64{}
	for _, h := range holds {
		if h.token <= above {
			problems = append(problems, fmt.Sprintf("worker %d was granted token %d, not above %d granted before", h.worker, h.token, above))
		}
		if h.token <= last[h.worker] {
			problems = append(problems, fmt.Sprintf("worker %d was granted token %d after token %d: tokens must grow", h.worker, h.token, last[h.worker]))
		}
		last[h.worker] = h.token
	}
	sorted := slices.SortedFunc(slices.Values(holds), byToken)
	for i, a := range sorted {
		for _, b := range sorted[i+1:] {
			if b.token == a.token {
				problems = append(problems, fmt.Sprintf("token %d granted twice (workers %d and %d)", a.token, a.worker, b.worker))
			}
			if b.returned.Before(a.end) {
				problems = append(problems, fmt.Sprintf("mutual exclusion broken: worker %d got token %d at %s while worker %d could use token %d until %s",
					b.worker, b.token, b.returned.Format(time.StampMicro), a.worker, a.token, a.end.Format(time.StampMicro)))
			}
		}
	}
	return problems
}
