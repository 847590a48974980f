package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/dlock-raft/dlock/bench/cluster"
	"github.com/dlock-raft/dlock/bench/etcd"
	"github.com/dlock-raft/dlock/bench/machine"
	"github.com/dlock-raft/dlock/bench/report"
	"github.com/dlock-raft/dlock/bench/zookeeper"
	"github.com/dlock-raft/dlock/internal/loadgen"
)

// startTimeout bounds a cluster's start: a JVM and an election take seconds, not minutes.
const startTimeout = 2 * time.Minute

// bench runs the measurements. Only run's goroutine uses it.
type bench struct {
	o   options
	log io.Writer
	// up holds the running clusters by system: all three with -together, else at most the one under
	// test.
	up map[string]cluster.Cluster
}

// cluster returns system s's running cluster, starting one if none is up.
func (b *bench) cluster(ctx context.Context, s string) (cluster.Cluster, error) {
	if c, ok := b.up[s]; ok {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	t0 := time.Now()
	var c cluster.Cluster
	var err error
	switch s {
	case "dlock":
		c, err = cluster.StartDlock(ctx, cluster.DlockConfig{Binary: b.o.dlockBin, DataParent: b.o.dataParent})
	case "etcd":
		c, err = cluster.StartEtcd(ctx, cluster.EtcdConfig{DataParent: b.o.dataParent})
	case "zookeeper":
		c, err = cluster.StartZookeeper(ctx, cluster.ZookeeperConfig{DataParent: b.o.dataParent})
	default:
		err = fmt.Errorf("compare: unknown system %q", s)
	}
	if err != nil {
		return nil, err
	}
	if b.up == nil {
		b.up = map[string]cluster.Cluster{}
	}
	b.up[s] = c
	fmt.Fprintf(b.log, "started %s on %v in %s\n", s, c.Endpoints(), time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// release stops system s's cluster unless all three stay up for the whole benchmark; kill forces the
// stop (a failover run leaves a cluster short of a member).
func (b *bench) release(s string, kill bool) error {
	c, ok := b.up[s]
	if !ok || (b.o.together && !kill) {
		return nil
	}
	delete(b.up, s)
	err := c.Stop()
	// The stopped cluster's dirty pages would otherwise be written back during the next run.
	syscall.Sync()
	return err
}

// stopAll stops every running cluster; run defers it, so it runs on every path.
func (b *bench) stopAll() {
	for s, c := range b.up {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(b.log, "stop %s: %v\n", s, err)
		}
		delete(b.up, s)
	}
}

// system is the loadgen.System for system s on cluster c.
func system(ctx context.Context, s string, c cluster.Cluster) (loadgen.System, error) {
	switch s {
	case "dlock":
		return loadgen.NewDlock(c.Endpoints()), nil
	case "etcd":
		return etcd.New(c.Endpoints()), nil
	case "zookeeper":
		return zookeeper.New(ctx, c.Endpoints())
	}
	return nil, fmt.Errorf("compare: unknown system %q", s)
}

// prepare brings up s's cluster and warms it up with an unmeasured uncontended run.
func (b *bench) prepare(ctx context.Context, s string) (cluster.Cluster, loadgen.System, error) {
	c, err := b.cluster(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	sys, err := system(ctx, s, c)
	if err != nil {
		return nil, nil, err
	}
	if b.o.warmup > 0 {
		cfg := loadgen.Config{Workload: loadgen.Uncontended, Clients: 16, Duration: b.o.warmup, TTL: b.o.ttl}
		if _, err := loadgen.Run(ctx, sys, cfg); err != nil {
			return nil, nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return c, sys, nil
}

// measure runs case c on system s, once the rest of the machine is quiet, and returns the result
// with the share of a core the rest of the machine used during the run.
func (b *bench) measure(ctx context.Context, s string, c report.Case) (_ *loadgen.Result, background float64, err error) {
	defer func() { err = errors.Join(err, b.release(s, false)) }()
	cl, sys, err := b.prepare(ctx, s)
	if err != nil {
		return nil, 0, err
	}
	defer func() { err = errors.Join(err, sys.Close()) }()
	if err := b.waitQuiet(ctx, cl.PIDs()); err != nil {
		return nil, 0, err
	}
	meter, err := machine.StartCPUMeter(cl.PIDs())
	if err != nil {
		return nil, 0, err
	}
	cfg := loadgen.Config{Workload: c.Workload, Clients: c.Clients, Duration: b.o.duration, TTL: b.o.ttl}
	res, err := loadgen.Run(ctx, sys, cfg)
	if err != nil {
		return nil, 0, err
	}
	if background, _, err = meter.Others(); err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(b.log, "other processes used %.0f%% of a core during the run\n", 100*background)
	return res, background, res.WriteTable(b.log)
}

// waitQuiet waits, up to -quiet-wait, until the processes other than ours use less than -quiet-max
// of a core over a second: another process's load on a 2-core machine moves results far more than
// any difference between the systems. Past the wait it goes on, and the report flags the run.
func (b *bench) waitQuiet(ctx context.Context, ours []int) error {
	deadline := time.Now().Add(b.o.quietWait)
	for {
		m, err := machine.StartCPUMeter(ours)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		others, _, err := m.Others()
		if err != nil {
			return err
		}
		if others < b.o.quietMax {
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(b.log, "machine still busy after %s (others use %.0f%% of a core): running anyway\n", b.o.quietWait, 100*others)
			return nil
		}
	}
}

// failover runs the uncontended workload with 16 clients on system s and SIGKILLs the leader a third
// of the way in. The cluster is stopped afterwards, even with -together: it has lost a member.
func (b *bench) failover(ctx context.Context, s string) (_ report.FailoverRun, err error) {
	defer func() { err = errors.Join(err, b.release(s, true)) }()
	c, sys, err := b.prepare(ctx, s)
	if err != nil {
		return report.FailoverRun{}, err
	}
	defer func() { err = errors.Join(err, sys.Close()) }()
	if err := b.waitQuiet(ctx, c.PIDs()); err != nil {
		return report.FailoverRun{}, err
	}
	// The killed leader's CPU time cannot be read after it dies, so the meter counts the survivors
	// only, and only this process's CPU is left out of the machine's busy time: the other load it
	// reports includes the cluster's. It is read before the kill for that reason.
	meter, err := machine.StartCPUMeter(nil)
	if err != nil {
		return report.FailoverRun{}, err
	}
	at := killAt(b.o.failoverDuration)
	// The killer goroutine is owned here: done stops it if the run ends first, and wg.Wait waits for it
	// before its error is read.
	done := make(chan struct{})
	var wg sync.WaitGroup
	var killErr error
	var killed int
	// The clock starts when the sessions are open (OnStart), so the kill lands at the stated time into
	// the measured run, whatever each system takes to open its sessions.
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			killErr = errors.New("run ended before the leader was killed")
			return
		case <-started:
		}
		select {
		case <-done:
			killErr = errors.New("run ended before the leader was killed")
			return
		case <-time.After(at):
		}
		killed, killErr = killLeader(ctx, c)
	}()
	cfg := loadgen.Config{Workload: loadgen.Uncontended, Clients: 16, Duration: b.o.failoverDuration, TTL: b.o.ttl,
		OnStart: func() { close(started) }}
	res, runErr := loadgen.Run(ctx, sys, cfg)
	close(done)
	wg.Wait()
	if err := errors.Join(runErr, killErr); err != nil {
		return report.FailoverRun{}, err
	}
	busy, _, err := meter.Others()
	if err != nil {
		return report.FailoverRun{}, err
	}
	fmt.Fprintf(b.log, "failover: killed %s leader pid %d at %s\n", s, killed, at)
	return report.FailoverRun{Result: res, MachineLoad: busy}, res.WriteTable(b.log)
}

// killLeader finds c's leader and SIGKILLs it.
func killLeader(ctx context.Context, c cluster.Cluster) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pid, err := c.LeaderPID(lctx)
	if err != nil {
		return 0, fmt.Errorf("find the leader to kill: %w", err)
	}
	if err := c.Kill(pid); err != nil {
		return 0, fmt.Errorf("kill leader %d: %w", pid, err)
	}
	return pid, nil
}

// killAt is when a failover run of length d kills the leader: a third of the way in, leaving time to
// measure the recovery.
func killAt(d time.Duration) time.Duration { return (d / 3).Round(time.Millisecond) }

// idleCPU starts system s's cluster, lets it sit idle for the -idle window and returns the CPU its
// members used meanwhile, what a cluster left running would take from the one under test, and what
// the rest of the machine used, which no run can control but the report should show.
func (b *bench) idleCPU(ctx context.Context, s string) (_ report.IdleCPU, err error) {
	defer func() { err = errors.Join(err, b.release(s, false)) }()
	c, err := b.cluster(ctx, s)
	if err != nil {
		return report.IdleCPU{}, err
	}
	used := func() (time.Duration, error) {
		var sum time.Duration
		for _, pid := range c.PIDs() {
			t, err := machine.CPUTime(pid)
			if err != nil {
				return 0, err
			}
			sum += t
		}
		return sum, nil
	}
	before, err := used()
	if err != nil {
		return report.IdleCPU{}, err
	}
	busyBefore, err := machine.BusyCPU()
	if err != nil {
		return report.IdleCPU{}, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return report.IdleCPU{}, ctx.Err()
	case <-time.After(b.o.idle):
	}
	after, err := used()
	if err != nil {
		return report.IdleCPU{}, err
	}
	busyAfter, err := machine.BusyCPU()
	if err != nil {
		return report.IdleCPU{}, err
	}
	cpu := after - before
	return report.IdleCPU{System: s, Window: time.Since(t0), CPU: cpu, Others: max(0, busyAfter-busyBefore-cpu)}, nil
}
