// Command compare runs dlock's workloads against three-member clusters of dlock, etcd and ZooKeeper on
// this machine and writes the side-by-side report (markdown and a PNG chart).
//
// Each run gets a fresh cluster of the system under test while the other two are stopped, because on a
// small machine an idle cluster is not free (heartbeats, a JVM's collector): the -together flag keeps
// all three up instead, to measure what that costs. Within a round every case runs each system back to
// back, in an order that changes from case to case (see order), so that a machine slowing down over
// the benchmark does not favour whoever runs first or after a given other system.
//
// bench/run.sh installs the servers from Debian's packages, builds dlock and runs this.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dlock-raft/dlock/bench/cluster"
	"github.com/dlock-raft/dlock/bench/machine"
	"github.com/dlock-raft/dlock/bench/report"
	"github.com/dlock-raft/dlock/internal/loadgen"
)

// options are the command's flags.
type options struct {
	rounds           int
	duration         time.Duration
	warmup           time.Duration
	failoverDuration time.Duration
	ttl              time.Duration
	out, png         string
	dlockBin         string
	dataParent       string
	quick            bool
	together         bool
	command          string
	systems          []string
	idle             time.Duration
	quietWait        time.Duration
	quietMax         float64
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every case on every system")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured run")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured uncontended run on each fresh cluster first (JIT, caches, connections)")
	fs.DurationVar(&o.failoverDuration, "failover-duration", 20*time.Second, "length of each failover run; the leader is killed a third of the way in")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "lease of every hold: dlock's TTL, etcd's session lease, ZooKeeper's session timeout")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown report to write")
	fs.StringVar(&o.png, "png", "docs/benchmarks.png", "PNG chart to write")
	fs.StringVar(&o.dlockBin, "dlock", "", "the dlock binary (go build -o X ./cmd/dlock); required")
	fs.StringVar(&o.dataParent, "data-dir", "", "where clusters keep their data (default: the system's temp dir); use a disk, not tmpfs")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "how long to watch each idle cluster's CPU use first")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Minute, "before each run, wait up to this long for other processes to go quiet")
	fs.Float64Var(&o.quietMax, "quiet-max", 0.15, "share of one core other processes may use for the machine to count as quiet")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 1 round, 3s runs, 1s warm-up, 8s failover runs (flags given explicitly still apply)")
	fs.BoolVar(&o.together, "together", false, "keep all three clusters up for the whole benchmark instead of one at a time")
	fs.StringVar(&o.command, "command", "", "the command line to show in the report (default: this one)")
	systems := fs.String("systems", strings.Join(report.Systems, ","), "comma-separated systems to run (without both peers, the faster-peer ratio is left out)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, sys := range strings.Split(*systems, ",") {
		if !slices.Contains(report.Systems, sys) {
			return o, fmt.Errorf("compare: -systems: unknown system %q; want some of %v", sys, report.Systems)
		}
		o.systems = append(o.systems, sys)
	}
	if o.quick {
		// Flags given explicitly win over the smoke run's values.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("rounds", func() { o.rounds = 1 })
		quick("duration", func() { o.duration = 3 * time.Second })
		quick("warmup", func() { o.warmup = time.Second })
		quick("failover-duration", func() { o.failoverDuration = 8 * time.Second })
		quick("idle", func() { o.idle = 2 * time.Second })
		quick("quiet-wait", func() { o.quietWait = 20 * time.Second })
	}
	if o.dlockBin == "" {
		return o, errors.New("compare: -dlock: the dlock binary is required (go build -o X ./cmd/dlock)")
	}
	if o.quietMax <= 0 || o.quietWait < 0 {
		return o, fmt.Errorf("compare: -quiet-max %g, -quiet-wait %s: want a positive share and a wait of 0 or more", o.quietMax, o.quietWait)
	}
	if o.ttl < time.Second || o.ttl > cluster.ZookeeperSessionMax {
		return o, fmt.Errorf("compare: -ttl %s: want 1s to %s (the longest session the ZooKeeper ensemble grants)",
			o.ttl, cluster.ZookeeperSessionMax)
	}
	if o.rounds < 1 || o.duration <= 0 || o.failoverDuration <= 0 || o.warmup < 0 {
		return o, fmt.Errorf("compare: -rounds %d, -duration %s, -failover-duration %s, -warmup %s: want at least 1 round and positive durations",
			o.rounds, o.duration, o.failoverDuration, o.warmup)
	}
	if o.command == "" {
		o.command = strings.Join(append([]string{"go run ./cmd/compare"}, args...), " ")
	}
	if o.dataParent == "" {
		o.dataParent = os.TempDir()
	}
	return o, nil
}

// cases are the measured runs of each round, in report order.
var cases = []report.Case{
	{Workload: loadgen.Uncontended, Clients: 1},
	{Workload: loadgen.Uncontended, Clients: 16},
	{Workload: loadgen.Uncontended, Clients: 64},
	{Workload: loadgen.Contended, Clients: 16},
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Ctrl-C cancels ctx, so the deferred Stops of the running clusters still run; a second Ctrl-C,
	// with the default handling restored, kills the benchmark (its clusters die with it: Pdeathsig).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err = run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log io.Writer) error {
	rep := &report.Report{
		Machine: machine.Describe(o.dataParent), Command: o.command, Rounds: o.rounds, Cases: cases,
		Date: time.Now(), Method: method(o), NoisyAbove: o.quietMax,
	}
	var err error
	if rep.Floor, err = floor(o.dataParent); err != nil {
		return err
	}
	fmt.Fprintf(log, "floor: fsync %s, loopback RTT %s, 2 × (fsync + RTT) = %s\n",
		report.Ms(rep.Floor.Fsync), report.Ms(rep.Floor.RTT), report.Ms(rep.Floor.Cycle()))
	b := &bench{o: o, log: log}
	defer b.stopAll()
	if o.together {
		for _, s := range o.systems {
			if _, err := b.cluster(ctx, s); err != nil {
				return err
			}
		}
	}
	for _, s := range o.systems {
		idle, err := b.idleCPU(ctx, s)
		if err != nil {
			return fmt.Errorf("idle cpu of %s: %w", s, err)
		}
		rep.IdleCPU = append(rep.IdleCPU, idle)
	}
	for round := 1; round <= o.rounds; round++ {
		for ci, c := range cases {
			for _, s := range order(o.systems, (round-1)*len(cases)+ci) {
				res, bg, err := b.measure(ctx, s, c)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, c, s, err)
				}
				rep.Runs = append(rep.Runs, report.Run{Round: round, Case: c, Result: res, Background: bg})
			}
		}
		// Written after every round, so a benchmark stopped later still leaves the rounds it finished.
		rep.Rounds = round
		if err := write(rep, o); err != nil {
			return err
		}
	}
	rep.FailoverKillAt = killAt(o.failoverDuration)
	for _, s := range o.systems {
		res, err := b.failover(ctx, s)
		if err != nil {
			return fmt.Errorf("failover, %s: %w", s, err)
		}
		rep.Failover = append(rep.Failover, res)
	}
	return write(rep, o)
}

// order is the order in which the k-th case of the benchmark runs the systems s: s rotated by k, and
// reversed for odd k. Rotation alone would vary who runs first but always run each system right after
// the same other one, which then always hands it the same leftovers (a dead cluster's writeback, a
// JVM's exit); the reversal varies that too.
func order(s []string, k int) []string {
	r := k % len(s)
	out := append(append([]string(nil), s[r:]...), s[:r]...)
	if k%2 == 1 && len(s) > 2 { // two systems: a rotation by one already is the reversal
		slices.Reverse(out)
	}
	return out
}

func method(o options) []string {
	m := []string{
		"Each system is a three-member cluster of real processes on 127.0.0.1, each member with its own data directory, every write fsync'd before it is acknowledged (each server's default; ZooKeeper's forceSync=yes written out). Timing settings are each server's defaults (dlock: 50ms heartbeat interval; etcd: 100ms heartbeat, 1s election; ZooKeeper: Debian's tickTime 2s, initLimit 10, syncLimit 5).",
		"Clients are the lock recipes a user of each system would reach for: dlock's Go client; etcd's client/v3/concurrency Mutex, one clientv3 client and one session lease per simulated client; go-zookeeper/zk's Lock recipe, one ZooKeeper session per simulated client. Each simulated client is its own connection, as separate processes would be. Reads are linearizable on all three (ZooKeeper: sync before the read).",
		fmt.Sprintf("Every hold's lease is %s (dlock's TTL, etcd's session lease, ZooKeeper's session timeout); locks are released at once (no hold time).", o.ttl),
		fmt.Sprintf("%d round(s); in each, every case runs on each system in turn, %s measured after a %s warm-up, in an order that changes from case to case (rotated, and reversed every other case), and after each cluster is stopped the page cache is synced to disk.", o.rounds, o.duration, o.warmup),
		fmt.Sprintf("Before each measured run the benchmark waits (up to %s) until processes other than its own use less than %.0f%% of one core, and it measures what they use during the run (the *other load* column).", o.quietWait, 100*o.quietMax),
	}
	if o.together {
		m = append(m, "All three clusters ran for the whole benchmark (-together): each run competed with the other two idle clusters for the 2 cores.")
	} else {
		m = append(m, "Only the system under test runs during its run: each run gets a fresh cluster, started before it and stopped after it, while the other systems are stopped.")
	}
	return m
}

// floor measures the machine floor where the clusters keep their data.
func floor(dir string) (report.Floor, error) {
	f, err := machine.Fsync(dir, 200)
	if err != nil {
		return report.Floor{}, err
	}
	r, err := machine.RTT(2000)
	if err != nil {
		return report.Floor{}, err
	}
	return report.Floor{Fsync: f, RTT: r}, nil
}

func write(rep *report.Report, o options) error {
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	if o.png != "" {
		rel, err := filepath.Rel(filepath.Dir(o.out), o.png)
		if err != nil {
			rel = o.png
		}
		rep.PNG = filepath.ToSlash(rel)
		if err := writeFile(o.png, rep.WritePNG); err != nil {
			return err
		}
	}
	return writeFile(o.out, rep.WriteMarkdown)
}

func writeFile(path string, render func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := render(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
