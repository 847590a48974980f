package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/check"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/history"
	"github.com/dlock-raft/dlock/internal/nemesis"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// Mode says how a run's nodes are run.
type Mode string

const (
	// InProcess nodes live in the test process, on real sockets: crashes
	// stop them abruptly, wall clocks jump, but they cannot be paused.
	InProcess Mode = "inprocess"
	// Processes are `dlock serve` processes: crashes are SIGKILL, pauses
	// SIGSTOP; their clocks are the machine's.
	Processes Mode = "process"
)

// Run is one seeded run: a cluster, a workload and a nemesis schedule.
type Run struct {
	Mode     Mode
	Seed     uint64
	Kinds    []nemesis.Kind
	Nodes    int
	Duration time.Duration // faults start within this time
}

func (r Run) String() string {
	return fmt.Sprintf("%s seed=%d kinds=%v nodes=%d duration=%v", r.Mode, r.Seed, r.Kinds, r.Nodes, r.Duration)
}

// Outcome is what a run did and found.
type Outcome struct {
	Run      Run
	Schedule nemesis.Schedule
	Events   []nemesis.Event
	Ops      int
	Results  []check.Result
	// Problems are failures outside the checkers (the cluster did not
	// recover, a fault could not be injected).
	Problems []string
	// Recovery is the longest time the cluster took to serve again after a
	// fault healed.
	Recovery time.Duration
	// What the checkers were given: the history, the final observation and
	// the fenced resource's writes.
	History, Final []history.Op
	Writes         []check.Write
}

// Violations counts what the checkers found.
func (o Outcome) Violations() int {
	n := 0
	for _, r := range o.Results {
		if !r.OK() {
			n += max(r.Count, 1)
		}
	}
	return n + len(o.Problems)
}

// Report is a failing run's full account: how to replay it, the schedule,
// what each fault hit, and each checker's verdict.
func (o Outcome) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run: %v\nreplay: go test ./internal/chaos -run 'TestCampaign' -chaos.mode=%s -chaos.seed=%d -chaos.kinds=%s -chaos.duration=%v -v\n",
		o.Run, o.Run.Mode, o.Run.Seed, kindList(o.Run.Kinds), o.Run.Duration)
	b.WriteString(o.Schedule.String())
	b.WriteString("events:\n")
	for _, e := range o.Events {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	fmt.Fprintf(&b, "%d ops\n", o.Ops)
	for _, r := range o.Results {
		fmt.Fprintf(&b, "%v\n", r)
	}
	for _, p := range o.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}

func kindList(ks []nemesis.Kind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

// electionTimeout is the default config's, the unit the liveness bound is
// stated in.
func electionTimeout() time.Duration { return config.Default().RaftTiming().ElectionTimeout }

// RecoveryElections is the liveness bound: once a fault heals, the cluster
// serves a write within this many election timeouts.
const RecoveryElections = 20

// Execute runs r on a fresh cluster and checks its history. Artifacts
// (porcupine's visualization of a failing check) go to dir.
func Execute(t testing.TB, r Run, dir string) Outcome {
	t.Helper()
	out := Outcome{Run: r}
	fabric := faultnet.New(r.Seed)
	t.Cleanup(fabric.Close) // after the cluster's own cleanup, which runs first
	var cl nemesis.Cluster
	switch r.Mode {
	case InProcess:
		c := testcluster.StartInProcessOpts(t, r.Nodes, testcluster.InProcessOptions{Fabric: fabric})
		cl = inProcess{c: c, f: fabric}
	case Processes:
		c := testcluster.StartOpts(t, r.Nodes, testcluster.Options{Fabric: fabric})
		c.WaitLeader(30 * time.Second)
		cl = processes{c: c, f: fabric}
	default:
		t.Fatalf("unknown mode %q", r.Mode)
	}
	var kinds []nemesis.Kind
	for _, k := range r.Kinds {
		if cl.Supports(k) {
			kinds = append(kinds, k)
		}
	}
	out.Schedule = nemesis.NewSchedule(r.Seed, nemesis.Plan{Kinds: kinds, Nodes: r.Nodes, Duration: r.Duration})
	t.Logf("%v\n%v", r, out.Schedule)

	eps := endpoints(cl)
	probe, err := client.New(eps, client.WithClientID(fmt.Sprintf("probe-%d", r.Seed)),
		client.WithCallTimeout(500*time.Millisecond), client.WithRetryLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()

	rec := history.NewRecorder()
	res := check.NewResource(rec.Now)
	w := Workload{
		Endpoints: eps, Seed: r.Seed,
		LinClients: 3, LinLocks: 3,
		LeaseClients: 4, LeaseLocks: 2, LeaseTTL: time.Second,
		FIFOWaiters: 3,
		KVClients:   3, Keys: 5,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	workDone := make(chan error, 1)
	go func() { workDone <- w.Run(ctx, rec, res) }()

	runner := &nemesis.Runner{
		Cluster: cl, Now: rec.Now, Log: t.Logf,
		RecoveryMax: RecoveryElections * electionTimeout(),
		Probe: func(ctx context.Context) error {
			_, err := probe.Put(ctx, "chaos-probe", []byte("x"))
			return err
		},
	}
	events, err := runner.Run(ctx, out.Schedule)
	out.Events = events
	if err != nil {
		out.Problems = append(out.Problems, "nemesis: "+err.Error())
		nemesis.HealAll(cl)
	}
	for _, e := range events {
		out.Recovery = max(out.Recovery, e.Recovery)
	}
	// A quiet tail: the workload runs on a healed cluster for a while.
	time.Sleep(2 * time.Second)
	cancel()
	if err := <-workDone; err != nil {
		t.Fatalf("workload: %v", err)
	}

	// Durability: every node restarts from disk, then a final read of
	// everything the workload touched.
	restartAll(t, cl)
	ops := rec.Ops()
	final, err := observe(t, eps, rec, ops)
	if err != nil {
		out.Problems = append(out.Problems, "final observation: "+err.Error())
	}
	out.Ops = len(ops)
	out.History, out.Final, out.Writes = ops, final, res.Writes()
	out.Results = runChecks(ops, final, out.Writes, dir)
	if out.Violations() > 0 && dir != "" {
		if err := dumpHistory(dir, out); err != nil {
			t.Logf("dump history: %v", err)
		}
	}
	return out
}

// dumpHistory writes what the checkers were given to dir/history.json, for
// reading a failure's operations in full.
func dumpHistory(dir string, out Outcome) error {
	b, err := json.MarshalIndent(struct {
		Run     string
		History []history.Op
		Final   []history.Op
		Writes  []check.Write
	}{out.Run.String(), out.History, out.Final, out.Writes}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "history.json"), b, 0o640)
}

func endpoints(c nemesis.Cluster) []string {
	switch c := c.(type) {
	case inProcess:
		return c.c.Endpoints()
	case processes:
		return c.c.Endpoints()
	}
	return nil
}

// restartAll crashes every node and starts it again from disk, then waits
// for a serving leader.
func restartAll(t testing.TB, c nemesis.Cluster) {
	t.Helper()
	for i := range c.Size() {
		if err := c.Crash(i); err != nil {
			t.Fatalf("crash node %d: %v", i+1, err)
		}
	}
	for i := range c.Size() {
		if err := c.Restart(i); err != nil {
			t.Fatalf("restart node %d: %v", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Leader(ctx); err != nil {
		t.Fatalf("after restarting every node: %v", err)
	}
}

// observe reads every key and lock the history touched, after every op
// in it returned.
func observe(t testing.TB, eps []string, rec *history.Recorder, ops []history.Op) ([]history.Op, error) {
	t.Helper()
	c, err := client.New(eps, client.WithClientID("chaos-final"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	keys, locks := map[string]bool{}, map[string]bool{}
	for _, op := range ops {
		switch op.Kind {
		case history.Put, history.Get, history.Delete:
			keys[op.Name] = true
		default:
			locks[op.Name] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var final []history.Op
	for _, k := range sorted(keys) {
		op := history.Op{Client: -1, Kind: history.Get, Name: k, Invoke: rec.Now()}
		v, err := c.Get(ctx, k)
		switch {
		case err == nil:
			op.ResFound, op.ResValue = true, string(v)
		case errors.Is(err, client.ErrNotFound):
		default:
			return final, fmt.Errorf("get %q: %w", k, err)
		}
		op.Return = rec.Now()
		final = append(final, op)
	}
	for _, l := range sorted(locks) {
		op := history.Op{Client: -1, Kind: history.Query, Name: l, Invoke: rec.Now()}
		info, err := c.Query(ctx, l)
		switch {
		case err == nil:
			op.ResFound, op.ResHolder, op.ResToken, op.ResNonce = true, info.Owner, info.Token, info.Nonce
		case errors.Is(err, client.ErrNotFound):
		default:
			return final, fmt.Errorf("query %q: %w", l, err)
		}
		op.Return = rec.Now()
		final = append(final, op)
	}
	return final, nil
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// linTimeout bounds each linearizability check of a run.
const linTimeout = 2 * time.Minute

// runChecks applies every checker. Lock linearizability is checked on the
// long-lease locks only: the others' leases expire by design.
func runChecks(ops, final []history.Op, writes []check.Write, dir string) []check.Result {
	lin := func(name string) check.LinOptions {
		o := check.LinOptions{Timeout: linTimeout}
		if dir != "" {
			o.Visualize = filepath.Join(dir, name+".html")
		}
		return o
	}
	var linOps, linFinal []history.Op
	for _, op := range ops {
		if strings.HasPrefix(op.Name, "lin-") || isKV(op.Kind) {
			linOps = append(linOps, op)
		}
	}
	for _, op := range final {
		if strings.HasPrefix(op.Name, "lin-") || isKV(op.Kind) {
			linFinal = append(linFinal, op)
		}
	}
	return []check.Result{
		check.KV(ops, lin("kv")),
		check.Locks(linOps, lin("locks")),
		check.Mutex(ops, writes),
		check.FIFO(ops),
		check.Leases(ops),
		check.Durability(linOps, linFinal, true, lin("durability")),
		check.Durability(ops, final, false, lin("durability-all")),
	}
}

func isKV(k history.Kind) bool { return k == history.Put || k == history.Get || k == history.Delete }

// artifactDir is where a run keeps porcupine's visualizations: under
// $DLOCK_CHAOS_ARTIFACTS if set, else a temporary directory that is kept.
func artifactDir(t testing.TB, r Run) string {
	base := os.Getenv("DLOCK_CHAOS_ARTIFACTS")
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, fmt.Sprintf("dlock-chaos-%s-%d", r.Mode, r.Seed))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}
