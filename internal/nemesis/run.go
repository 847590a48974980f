package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dlock-raft/dlock/internal/faultnet"
)

// ErrUnsupported is returned by a Cluster that cannot inject a kind of
// fault (a process has no injectable clock; an in-process node cannot be
// paused).
var ErrUnsupported = errors.New("nemesis: fault not supported by this cluster")

// Cluster is what the nemesis acts on. Nodes are numbered 0..Size()-1.
type Cluster interface {
	Size() int
	// Leader returns the node serving as leader, waiting for one until ctx
	// ends.
	Leader(ctx context.Context) (int, error)
	Crash(i int) error
	Restart(i int) error
	Pause(i int) error
	Resume(i int) error
	JumpClock(i int, d time.Duration) error
	Transfer(ctx context.Context, to int) error
	Fabric() *faultnet.Fabric
	// Supports reports whether the cluster can inject faults of kind k.
	Supports(k Kind) bool
}

// Event is what one step did.
type Event struct {
	Step   Step
	Nodes  []int // the nodes the fault hit (0-based)
	Start  time.Duration
	Healed time.Duration
	// Recovered is when a probe first succeeded after the heal, and
	// Recovery how long after the heal that was (the liveness measure).
	Recovered time.Duration
	Recovery  time.Duration
	// Declined is the cluster's answer when it refused the fault itself:
	// a leadership transfer that did not complete (Raft gives the target
	// one election timeout to win, which an overloaded or just-restarted
	// node can miss). The API reported it to its caller and the old leader
	// kept leading, so it is no violation: the run goes on, and the
	// probe still has to succeed within RecoveryMax.
	Declined error
	Err      error
}

func (e Event) String() string {
	s := fmt.Sprintf("%v: nodes %v, began %v, healed %v", e.Step, e.Nodes,
		e.Start.Round(time.Millisecond), e.Healed.Round(time.Millisecond))
	if e.Recovered > 0 {
		s += fmt.Sprintf(", serving again %v after heal", e.Recovery.Round(time.Millisecond))
	}
	if e.Declined != nil {
		s += ", declined: " + e.Declined.Error()
	}
	if e.Err != nil {
		s += ", error: " + e.Err.Error()
	}
	return s
}

// Runner applies a schedule.
type Runner struct {
	Cluster Cluster
	// Probe must succeed once the cluster serves again (a write, say);
	// Run calls it after every heal until it does.
	Probe func(ctx context.Context) error
	// Start is the time the step offsets count from (the workload's
	// recording start), and Now its clock.
	Now func() time.Duration
	// Log receives a line per action.
	Log func(format string, args ...any)
	// RecoveryMax bounds the wait for a probe to succeed after a heal;
	// Run reports an error past it.
	RecoveryMax time.Duration
}

// Run applies s's steps at their times until all ran or ctx ends, healing
// each before the next, and returns what each did. An error means the
// cluster did not recover within RecoveryMax after some heal, or a fault
// could not be injected.
func (r *Runner) Run(ctx context.Context, s Schedule) ([]Event, error) {
	var events []Event
	for _, st := range s.Steps {
		if wait := st.At - r.Now(); wait > 0 {
			select {
			case <-ctx.Done():
				return events, nil
			case <-time.After(wait):
			}
		}
		ev := r.step(ctx, st)
		events = append(events, ev)
		r.Log("nemesis: %v", ev)
		if ev.Err != nil {
			return events, fmt.Errorf("%v: %w", st, ev.Err)
		}
	}
	return events, nil
}

func (r *Runner) step(ctx context.Context, st Step) Event {
	ev := Event{Step: st, Start: r.Now()}
	heal, nodes, err := r.inject(ctx, st)
	ev.Nodes = nodes
	if d := (*declined)(nil); errors.As(err, &d) {
		ev.Declined, err = d.err, nil
	}
	if err != nil {
		ev.Err = err
		if heal != nil {
			_ = heal()
		}
		return ev
	}
	if st.Hold > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(st.Hold):
		}
	}
	if heal != nil {
		if err := heal(); err != nil {
			ev.Err = fmt.Errorf("heal: %w", err)
			return ev
		}
	}
	ev.Healed = r.Now()
	ev.Recovered, ev.Err = r.recover(ctx)
	ev.Recovery = ev.Recovered - ev.Healed
	return ev
}

// recover calls the probe until it succeeds.
func (r *Runner) recover(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.RecoveryMax)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = r.Probe(pctx)
		pcancel()
		if last == nil {
			return r.Now(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster not serving %v after heal: %w", r.RecoveryMax, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inject starts st's fault and returns how to heal it and the nodes hit.
func (r *Runner) inject(ctx context.Context, st Step) (func() error, []int, error) {
	c := r.Cluster
	n := c.Size()
	target := func() (int, error) {
		if !st.Leader {
			return st.Pick % n, nil
		}
		lctx, cancel := context.WithTimeout(ctx, r.RecoveryMax)
		defer cancel()
		return c.Leader(lctx)
	}
	others := func(i int) []int {
		var o []int
		for j := range n {
			if j != i {
				o = append(o, j)
			}
		}
		return o
	}
	f := c.Fabric()
	healNet := func() error { f.Heal(); return nil }
	switch st.Kind {
	case IsolateLeader:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		f.Isolate(i+1, ids(others(i))...)
		return healNet, []int{i}, nil
	case Partition:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		// The minority is i and the next Minority-1 nodes around the ring.
		minority := []int{i}
		for k := 1; k < st.Minority && k < n; k++ {
			minority = append(minority, (i+k)%n)
		}
		in := map[int]bool{}
		for _, m := range minority {
			in[m] = true
		}
		for _, a := range minority {
			for b := range n {
				if !in[b] {
					f.Block(a+1, b+1)
					f.Block(b+1, a+1)
				}
			}
		}
		return healNet, minority, nil
	case OneWay:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		for _, o := range others(i) {
			if st.Inbound {
				f.Block(o+1, i+1)
			} else {
				f.Block(i+1, o+1)
			}
		}
		return healNet, []int{i}, nil
	case Delay, Loss:
		for a := range n {
			for b := range n {
				if a == b {
					continue
				}
				if st.Kind == Delay {
					f.SetDelay(a+1, b+1, st.Delay, st.Jitter)
				} else {
					f.SetLoss(a+1, b+1, st.Loss)
				}
			}
		}
		return healNet, nil, nil
	case Crash:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		if err := c.Crash(i); err != nil {
			return nil, []int{i}, err
		}
		return func() error { return c.Restart(i) }, []int{i}, nil
	case Pause:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		if err := c.Pause(i); err != nil {
			return nil, []int{i}, err
		}
		return func() error { return c.Resume(i) }, []int{i}, nil
	case ClockJump:
		i, err := target()
		if err != nil {
			return nil, nil, err
		}
		// A wall clock that was set stays set: the step does not jump it
		// back when it heals.
		return nil, []int{i}, c.JumpClock(i, st.Jump)
	case Transfer:
		lctx, cancel := context.WithTimeout(ctx, r.RecoveryMax)
		defer cancel()
		leader, err := c.Leader(lctx)
		if err != nil {
			return nil, nil, err
		}
		to := st.Pick % n
		if to == leader {
			to = (to + 1) % n
		}
		if err := c.Transfer(lctx, to); err != nil && lctx.Err() == nil {
			return nil, []int{leader, to}, &declined{err}
		} else if err != nil {
			return nil, []int{leader, to}, err
		}
		return nil, []int{leader, to}, nil
	}
	return nil, nil, fmt.Errorf("nemesis: unknown kind %q", st.Kind)
}

// declined marks an inject error as the cluster refusing the fault (see
// Event.Declined), not as a failure to inject it.
type declined struct{ err error }

func (d *declined) Error() string { return d.err.Error() }

func ids(idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = i + 1
	}
	return out
}

// HealAll lifts every network fault; callers restart and resume nodes
// themselves.
func HealAll(c Cluster) { c.Fabric().Heal() }

// Summary counts events by kind.
func Summary(events []Event) string {
	counts := map[Kind]int{}
	var worst time.Duration
	for _, e := range events {
		counts[e.Step.Kind]++
		worst = max(worst, e.Recovery)
	}
	var parts []string
	for _, k := range AllKinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
		}
	}
	return fmt.Sprintf("%d faults (%s), longest recovery after heal %v", len(events), strings.Join(parts, " "),
		worst.Round(time.Millisecond))
}

// Seeds returns count seeds derived from base, for campaigns that run
// several schedules.
func Seeds(base uint64, count int) []uint64 {
	rng := rand.New(rand.NewPCG(base, base+1))
	out := make([]uint64, count)
	for i := range out {
		out[i] = rng.Uint64() % 1_000_000
	}
	return out
}
