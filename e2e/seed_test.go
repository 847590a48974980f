package e2e

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/dlockapi"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// The seed's four integration scenarios, against a real 3-node cluster,
// rotating every call across the nodes so followers answer too.

// rotor hands out the cluster's client addresses in turn.
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
	t.Helper()
	api := dlockapi.NewDLockRaftClientAPI(id...)
	t.Cleanup(func() { api.Close() })
	return api
}

// The KV store under 100 concurrent writers: every acknowledged Put is
// read back, deleting a missing key reports false, deleted keys are gone.
func TestSeedPutDelGetState(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
	api := newAPI(t)

	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if !api.PutState(r.addr(), strconv.Itoa(i%20), []byte(strconv.Itoa(i))) {
				t.Errorf("PutState(key %d, value %d) = false, want true", i%20, i)
			}
		}(i)
	}
	wg.Wait()

	for i := 15; i < 25; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got := api.DelState(r.addr(), strconv.Itoa(i))
			if want := i <= 19; got != want {
				t.Errorf("DelState(key %d) = %v, want %v", i, got, want)
			}
		}(i)
	}
	wg.Wait()

	for i := 0; i < 25; i++ {
		v := api.GetState(r.addr(), strconv.Itoa(i))
		if i >= 15 {
			if v != nil {
				t.Errorf("GetState(key %d) = %q after delete, want nil", i, v)
			}
			continue
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n%20 != i {
			t.Errorf("GetState(key %d) = %q, want one of the values written to it (n with n%%20 == %d)", i, v, i)
		}
	}
}

// Normal release: a second client cannot take a held lock, takes it after
// the holder releases, and the lock's record shows each step.
func TestSeedNormalRelease(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
	const lock = "DLockReleaseTest"
	c1, c2 := newAPI(t), newAPI(t)

	if !c1.AcquireDLock(r.addr(), lock, 6000) {
		t.Fatal("client 1: AcquireDLock = false, want true")
	}
	if c2.AcquireDLock(r.addr(), lock, 2000, 1000) {
		t.Fatal("client 2: AcquireDLock of a held lock = true, want false")
	}
	info, ok := c1.QueryDLock(r.addr(), lock)
	if !ok || info.Owner != c1.ClientId || info.PendingNum != 0 {
		t.Fatalf("QueryDLock while held = %+v, %v; want owner %s and no waiter left", info, ok, c1.ClientId)
	}
	if c2.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 2: ReleaseDLock of client 1's lock = true, want false")
	}
	if !c1.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 1: ReleaseDLock = false, want true")
	}
	if info, ok := c1.QueryDLock(r.addr(), lock); !ok || info.Owner != "" || info.Nonce != 1 || info.Timestamp == 0 {
		t.Fatalf("QueryDLock after release = %+v, %v; want no owner, nonce 1 and the last grant's time", info, ok)
	}
	if !c2.AcquireDLock(r.addr(), lock, 2000) {
		t.Fatal("client 2: AcquireDLock after release = false, want true")
	}
	info, ok = c2.QueryDLock(r.addr(), lock)
	if !ok || info.Owner != c2.ClientId || info.Nonce != 2 {
		t.Fatalf("QueryDLock after client 2's grant = %+v, %v; want owner %s, nonce 2", info, ok, c2.ClientId)
	}
	if !c2.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 2: ReleaseDLock = false, want true")
	}
	if c2.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 2: second ReleaseDLock = true, want false")
	}
}

// Automatic expiry: a lock nobody releases is released by the cluster when
// its lease passes, never before, and handed to the waiting client.
func TestSeedExpireAutomatically(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
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
		t.Fatalf("client 2 was granted %v after client 1's acquire was sent, before its %v lease passed", waited, lease)
	}
	info, ok := c1.QueryDLock(r.addr(), lock)
	if !ok || info.Owner != c2.ClientId {
		t.Fatalf("QueryDLock = %+v, %v; want owner %s", info, ok, c2.ClientId)
	}
	if c1.ReleaseDLock(r.addr(), lock) {
		t.Fatal("client 1: ReleaseDLock of an expired hold = true, want false")
	}
}

// FIFO racing: ten clients queue on a held lock in a known order and are
// granted it in exactly that order.
func TestSeedFIFORacing(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
	const lock = "DLockRacingTest"
	holder := newAPI(t)
	if !holder.AcquireDLock(r.addr(), lock, 60000) {
		t.Fatal("holder: AcquireDLock = false, want true")
	}

	const waiters = 9
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 1; i <= waiters; i++ {
		api := newAPI(t, fmt.Sprintf("racer-%d", i))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if !api.AcquireDLock(r.addr(), lock, 4000, 30000) {
				t.Errorf("racer %d: AcquireDLock = false, want true", i)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if !api.ReleaseDLock(r.addr(), lock) {
				t.Errorf("racer %d: ReleaseDLock = false, want true", i)
			}
		}(i)
		waitPending(t, holder, r, lock, i)
	}
	if !holder.ReleaseDLock(r.addr(), lock) {
		t.Fatal("holder: ReleaseDLock = false, want true")
	}
	wg.Wait()
	for i, got := range order {
		if got != i+1 {
			t.Fatalf("grant order = %v, want racers 1..%d in the order they queued", order, waiters)
		}
	}
	if len(order) != waiters {
		t.Fatalf("%d racers were granted the lock, want %d", len(order), waiters)
	}
}

// waitPending waits until lock has n waiters queued.
func waitPending(t *testing.T, api *dlockapi.DLockRaftClientAPI, r *rotor, lock string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, ok := api.QueryDLock(r.addr(), lock)
		if ok && int(info.PendingNum) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: %+v waiters after 10s, want %d", lock, info, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
