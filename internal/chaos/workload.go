// Package chaos runs dlock clusters under a nemesis while concurrent
// clients lock, renew, release, query and use the KV store, records what
// each client saw, and checks the history against dlock's guarantees
// (docs/guarantees.md). Its tests are the short campaign CI runs; the same
// tests with -chaos.duration run the long one.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/check"
	"github.com/dlock-raft/dlock/internal/history"
)

// Workload shapes the clients of a run.
type Workload struct {
	Endpoints []string
	Seed      uint64

	// LinClients lock and unlock LinLocks locks with leases far longer
	// than the run, so that every lock operation can be checked for
	// linearizability.
	LinClients, LinLocks int
	// LeaseClients take LeaseLocks locks with short leases (LeaseTTL), write
	// to a fenced resource while they hold them, and sometimes abandon a
	// hold to let its lease run out.
	LeaseClients, LeaseLocks int
	LeaseTTL                 time.Duration
	// FIFORounds: one client at a time holds a lock while FIFOWaiters queue
	// behind it, one after another, each known queued before the next asks.
	FIFOWaiters int
	// KVClients put, get and delete Keys keys.
	KVClients, Keys int
}

// LinTTL is the lease of the linearizability locks: longer than any run,
// so no lease ends during the check.
const LinTTL = 10 * time.Minute

// opTimeout bounds every call but an acquire's wait.
const opTimeout = 5 * time.Second

// Run drives the clients until ctx ends, recording into rec and writing
// to res, and returns once every client has stopped.
func (w Workload) Run(ctx context.Context, rec *history.Recorder, res *check.Resource) error {
	var wg sync.WaitGroup
	run := &runState{queued: map[string]time.Duration{}}
	errs := make(chan error, 1)
	spawn := func(id int, fn func(a *actor, ctx context.Context)) {
		cl, err := client.New(w.Endpoints, client.WithClientID(fmt.Sprintf("chaos-%d-%d", w.Seed, id)),
			client.WithCallTimeout(time.Second), client.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			select {
			case errs <- err:
			default:
			}
			return
		}
		a := &actor{id: id, c: cl, rec: rec, res: res, w: w, run: run,
			rng: rand.New(rand.NewPCG(w.Seed, uint64(id)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			fn(a, ctx)
		}()
	}
	id := 0
	for range w.LinClients {
		spawn(id, (*actor).linLoop)
		id++
	}
	for range w.LeaseClients {
		spawn(id, (*actor).leaseLoop)
		id++
	}
	if w.FIFOWaiters > 0 {
		base := id
		spawn(id, func(a *actor, ctx context.Context) { a.fifoLoop(ctx, base+1) })
		id += 1 + w.FIFOWaiters
	}
	for range w.KVClients {
		spawn(id, (*actor).kvLoop)
		id++
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// actor is one client: it runs one operation at a time.
type actor struct {
	id  int
	c   *client.Client
	rec *history.Recorder
	res *check.Resource
	w   Workload
	run *runState
	rng *rand.Rand
	n   int // operations started, for unique owners and values
}

// runState is what a run's actors share.
type runState struct {
	mu sync.Mutex
	// queued says, per FIFO waiter owner, when a query proved it queued.
	queued map[string]time.Duration
}

func (a *actor) op(kind history.Kind, name string) history.Op {
	return history.Op{Client: a.id, Kind: kind, Name: name, Invoke: a.rec.Now()}
}

func (a *actor) done(op history.Op, outcome history.Outcome, err error) history.Op {
	op.Return, op.Outcome = a.rec.Now(), outcome
	if err != nil {
		op.Reason = err.Error()
	}
	a.rec.Add(op)
	return op
}

// acquire records one Acquire. A grant the client could not confirm (it
// released it again) is Unknown: the hold existed, briefly.
func (a *actor) acquire(ctx context.Context, name, owner string, ttl, wait time.Duration) history.Op {
	op := a.op(history.Acquire, name)
	op.Owner, op.TTL, op.Wait = owner, ttl, wait
	cctx, cancel := context.WithTimeout(ctx, wait+opTimeout)
	defer cancel()
	l, err := a.c.Acquire(cctx, name, client.WithOwner(owner), client.WithTTL(ttl), client.WithWait(wait),
		client.WithoutAutoRenew())
	switch {
	case err == nil:
		op.ResToken, op.ResNonce = l.Token(), l.Nonce()
		return a.done(op, history.OK, nil)
	case errors.Is(err, client.ErrWaitTimeout) || errors.Is(err, client.ErrLocked):
		return a.done(op, history.Refused, err)
	}
	return a.done(op, history.Unknown, err)
}

func (a *actor) release(ctx context.Context, name, owner string, token uint64) history.Op {
	op := a.op(history.Release, name)
	op.Owner, op.Token = owner, token
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := a.c.ReleaseOwned(cctx, name, owner, token)
	return a.done(op, outcomeOf(err), err)
}

func (a *actor) renew(ctx context.Context, name, owner string, token uint64, ttl time.Duration) history.Op {
	op := a.op(history.Renew, name)
	op.Owner, op.Token, op.TTL = owner, token, ttl
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := a.c.RenewOwned(cctx, name, owner, token, ttl)
	if err == nil {
		op.ResToken = token
	}
	return a.done(op, outcomeOf(err), err)
}

// query records a linearizable Query; a query that got no answer changed
// nothing and is left out of the history.
func (a *actor) query(ctx context.Context, name string) (history.Op, client.LockInfo, bool) {
	op := a.op(history.Query, name)
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	info, err := a.c.Query(cctx, name)
	switch {
	case err == nil:
		op.ResFound, op.ResHolder, op.ResToken, op.ResNonce = true, info.Owner, info.Token, info.Nonce
	case errors.Is(err, client.ErrNotFound):
	default:
		return op, info, false
	}
	return a.done(op, history.OK, nil), info, true
}

// outcomeOf classifies a renew's or release's error.
func outcomeOf(err error) history.Outcome {
	switch {
	case err == nil:
		return history.OK
	case errors.Is(err, client.ErrNotHeld), errors.Is(err, client.ErrHeldByOther),
		errors.Is(err, client.ErrTokenMismatch):
		return history.Refused
	}
	return history.Unknown
}

func (a *actor) pick(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, a.rng.IntN(n)) }

func (a *actor) sleep(ctx context.Context, max time.Duration) {
	if max <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(a.rng.Int64N(int64(max)))):
	}
}

// linLoop locks and unlocks long-lease locks with one owner per client,
// so a retried or repeated acquire is reentrant.
func (a *actor) linLoop(ctx context.Context) {
	owner := fmt.Sprintf("lin-c%d", a.id)
	for ctx.Err() == nil {
		name := a.pick("lin-", a.w.LinLocks)
		switch r := a.rng.IntN(10); {
		case r < 2:
			a.query(ctx, name)
			continue
		}
		wait := time.Duration(a.rng.IntN(3)) * 500 * time.Millisecond
		acq := a.acquire(ctx, name, owner, LinTTL, wait)
		switch acq.Outcome {
		case history.OK:
			a.sleep(ctx, 30*time.Millisecond)
			if a.rng.IntN(4) == 0 {
				a.renew(ctx, name, owner, acq.ResToken, LinTTL)
			}
			a.settle(ctx, name, owner, acq.ResToken)
		case history.Unknown:
			a.settle(ctx, name, owner, 0)
		}
	}
}

// settle releases the owner's hold of name: with token when known, or,
// after an ambiguous acquire, whatever hold a query shows the owner has.
// It keeps trying (the lease is long) until the hold is gone or the run
// ends, so a lock is never left held by nobody who knows it.
func (a *actor) settle(ctx context.Context, name, owner string, token uint64) {
	for ctx.Err() == nil {
		if token == 0 {
			_, info, ok := a.query(ctx, name)
			if !ok {
				a.sleep(ctx, 100*time.Millisecond)
				continue
			}
			if info.Owner != owner {
				return
			}
			token = info.Token
		}
		if rel := a.release(ctx, name, owner, token); rel.Outcome != history.Unknown {
			return
		}
		token = 0 // ambiguous: find out
	}
}

// leaseLoop takes short-lease locks under a fresh owner each time, writes
// to the fenced resource while it holds one, and releases it, or abandons
// it to expire as a crashed client's would.
func (a *actor) leaseLoop(ctx context.Context) {
	ttl := a.w.LeaseTTL
	for ctx.Err() == nil {
		a.n++
		name := a.pick("lease-", a.w.LeaseLocks)
		owner := fmt.Sprintf("lease-c%d-%d", a.id, a.n)
		wait := time.Duration(a.rng.Int64N(int64(2 * ttl)))
		acq := a.acquire(ctx, name, owner, ttl, wait)
		if acq.Outcome != history.OK {
			a.sleep(ctx, 50*time.Millisecond)
			continue
		}
		start := acq.Invoke // the lease is counted from the send
		a.write(name, owner, acq.ResToken, start+ttl)
		if a.rng.IntN(3) == 0 {
			a.sleep(ctx, ttl/3)
			if rn := a.renew(ctx, name, owner, acq.ResToken, ttl); rn.Outcome == history.OK {
				start = rn.Invoke
				a.write(name, owner, acq.ResToken, start+ttl)
			}
		}
		if a.rng.IntN(4) == 0 {
			a.sleep(ctx, ttl) // abandoned: the lease runs out
			continue
		}
		a.release(ctx, name, owner, acq.ResToken)
	}
}

// write writes to the fenced resource as a holder that believes its lease
// lasts until end does: only while it is sure it still holds the lock.
func (a *actor) write(name, owner string, token uint64, end time.Duration) {
	if a.rec.Now() < end {
		a.res.Write(name, owner, token)
	}
}

// fifoLoop runs rounds on one lock at a time: a holder takes it, then
// FIFOWaiters waiters ask one after another, each asking only once a query
// shows the previous ones queued; then the holder releases and each waiter
// releases as soon as it is granted.
func (a *actor) fifoLoop(ctx context.Context, firstWaiter int) {
	for round := 0; ctx.Err() == nil; round++ {
		// A fresh lock each round: no waiter of an earlier round, left
		// queued by a call that failed, can be counted as this round's.
		name := fmt.Sprintf("fifo-%d", round)
		owner := fmt.Sprintf("fifo-holder-%d-%d", a.id, round)
		acq := a.acquire(ctx, name, owner, 20*time.Second, 5*time.Second)
		if acq.Outcome != history.OK {
			if acq.Outcome == history.Unknown {
				a.settle(ctx, name, owner, 0)
			}
			continue
		}
		var wg sync.WaitGroup
		for k := range a.w.FIFOWaiters {
			wid := firstWaiter + k
			waiter := &actor{id: wid, c: a.c, rec: a.rec, res: a.res, w: a.w, run: a.run}
			queued := make(chan history.Op, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				wowner := fmt.Sprintf("fifo-w%d-%d", wid, round)
				op := waiter.op(history.Acquire, name)
				op.Owner, op.TTL, op.Wait = wowner, 20*time.Second, 15*time.Second
				queued <- op
				waiter.fifoWait(ctx, op)
			}()
			// Known queued once a query counts k+1 waiters: only k+1 have asked.
			op := <-queued
			deadline := time.Now().Add(3 * time.Second)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				_, info, ok := a.query(ctx, name)
				if ok && info.Waiters >= k+1 {
					a.markQueued(op, a.rec.Now())
					break
				}
				a.sleep(ctx, 20*time.Millisecond)
			}
		}
		if a.release(ctx, name, owner, acq.ResToken).Outcome == history.Unknown {
			a.settle(ctx, name, owner, 0)
		}
		wg.Wait()
	}
}

// fifoWait runs a prepared acquire op and releases the lock once granted.
func (a *actor) fifoWait(ctx context.Context, op history.Op) {
	cctx, cancel := context.WithTimeout(ctx, op.Wait+opTimeout)
	defer cancel()
	l, err := a.c.Acquire(cctx, op.Name, client.WithOwner(op.Owner), client.WithTTL(op.TTL),
		client.WithWait(op.Wait), client.WithoutAutoRenew())
	switch {
	case err == nil:
		op.ResToken, op.ResNonce = l.Token(), l.Nonce()
		op.Queued = a.queuedAt(op)
		a.done(op, history.OK, nil)
		if a.release(ctx, op.Name, op.Owner, op.ResToken).Outcome == history.Unknown {
			a.settle(ctx, op.Name, op.Owner, 0)
		}
	case errors.Is(err, client.ErrWaitTimeout):
		op.Queued = a.queuedAt(op)
		a.done(op, history.Refused, err)
	default:
		op.Queued = a.queuedAt(op)
		a.done(op, history.Unknown, err)
		a.settle(ctx, op.Name, op.Owner, 0)
	}
}

func (a *actor) markQueued(op history.Op, at time.Duration) {
	a.run.mu.Lock()
	a.run.queued[op.Owner] = at
	a.run.mu.Unlock()
}

// queuedAt is when a query proved op's owner queued, 0 if none did.
func (a *actor) queuedAt(op history.Op) time.Duration {
	a.run.mu.Lock()
	defer a.run.mu.Unlock()
	return a.run.queued[op.Owner]
}

// kvLoop puts unique values, gets and deletes keys.
func (a *actor) kvLoop(ctx context.Context) {
	for ctx.Err() == nil {
		a.n++
		key := a.pick("key-", a.w.Keys)
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		switch r := a.rng.IntN(10); {
		case r < 4:
			op := a.op(history.Put, key)
			op.Value = fmt.Sprintf("c%d-%d", a.id, a.n)
			_, err := a.c.Put(cctx, key, []byte(op.Value))
			if err == nil {
				a.done(op, history.OK, nil)
			} else {
				a.done(op, history.Unknown, err)
			}
		case r < 8:
			op := a.op(history.Get, key)
			v, err := a.c.Get(cctx, key)
			switch {
			case err == nil:
				op.ResFound, op.ResValue = true, string(v)
				a.done(op, history.OK, nil)
			case errors.Is(err, client.ErrNotFound):
				a.done(op, history.OK, nil)
			}
		default:
			op := a.op(history.Delete, key)
			err := a.c.Delete(cctx, key)
			switch {
			case err == nil:
				op.ResFound = true
				a.done(op, history.OK, nil)
			case errors.Is(err, client.ErrNotFound):
				a.done(op, history.OK, nil)
			default:
				a.done(op, history.Unknown, err)
			}
		}
		cancel()
	}
}
