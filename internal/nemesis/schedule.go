// Package nemesis injects faults into a running dlock test cluster on a
// schedule drawn from a seed: partitions (whole, of the leader, one way),
// crashes with restart from disk, pauses, message delay and loss, jumps of
// the leader's wall clock, and leadership transfers. The same seed gives the
// same schedule; which node "the leader" is gets decided when a step runs,
// and the run's events say what each step hit.
package nemesis

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults a schedule draws from.
const (
	// IsolateLeader cuts the leader off from every other node, both ways.
	IsolateLeader Kind = "isolate-leader"
	// Partition splits the nodes into a random minority and majority.
	Partition Kind = "partition"
	// OneWay blocks one direction only between the leader and the others:
	// either the leader's messages are lost, or the followers' answers.
	OneWay Kind = "one-way"
	// Crash stops a node abruptly (SIGKILL for processes) and restarts it
	// from its data directory when the step heals.
	Crash Kind = "crash"
	// Pause stops a node's process (SIGSTOP) and continues it (SIGCONT).
	Pause Kind = "pause"
	// Delay holds every message back by a delay with jitter.
	Delay Kind = "delay"
	// Loss loses messages at random, resetting the connection each was on.
	Loss Kind = "loss"
	// ClockJump jumps the leader's wall clock forward or back.
	ClockJump Kind = "clock-jump"
	// Transfer moves leadership to another node.
	Transfer Kind = "transfer"
)

// AllKinds lists every kind.
var AllKinds = []Kind{IsolateLeader, Partition, OneWay, Crash, Pause, Delay, Loss, ClockJump, Transfer}

// ParseKinds reads a comma-separated list of kinds ("all" for every kind).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return AllKinds, nil
	}
	var ks []Kind
	for _, name := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(name))
		found := false
		for _, known := range AllKinds {
			found = found || k == known
		}
		if !found {
			return nil, fmt.Errorf("nemesis: unknown fault kind %q (known: %v)", k, AllKinds)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// Step is one fault: it starts At (from the start of the run), lasts Hold,
// then heals.
type Step struct {
	At   time.Duration
	Kind Kind
	Hold time.Duration

	// Leader: the step targets the leader at the time it runs; otherwise
	// node Pick mod the cluster size.
	Leader bool
	Pick   int
	// Minority is the number of nodes on the minority side (Partition).
	Minority int
	// Inbound: OneWay blocks the followers' messages to the leader rather
	// than the leader's to them.
	Inbound bool
	Delay   time.Duration // Delay: base delay; Loss: unused
	Jitter  time.Duration
	Loss    float64       // Loss: probability a chunk is lost
	Jump    time.Duration // ClockJump: how far the wall clock moves
}

func (s Step) String() string {
	target := fmt.Sprintf("node#%d", s.Pick)
	if s.Leader {
		target = "leader"
	}
	var detail string
	switch s.Kind {
	case Partition:
		detail = fmt.Sprintf(" minority=%d incl %s", s.Minority, target)
	case OneWay:
		detail = " leader->others"
		if s.Inbound {
			detail = " others->leader"
		}
	case Crash, Pause:
		detail = " " + target
	case Delay:
		detail = fmt.Sprintf(" %v+-%v", s.Delay, s.Jitter)
	case Loss:
		detail = fmt.Sprintf(" p=%.2f", s.Loss)
	case ClockJump:
		detail = fmt.Sprintf(" %+v", s.Jump)
	case Transfer:
		detail = " to " + target
	}
	return fmt.Sprintf("at %v %s%s for %v", s.At.Round(time.Millisecond), s.Kind, detail, s.Hold.Round(time.Millisecond))
}

// Schedule is the faults of one run.
type Schedule struct {
	Seed  uint64
	Steps []Step
}

func (s Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %d steps:\n", s.Seed, len(s.Steps))
	for i, st := range s.Steps {
		fmt.Fprintf(&b, "  %2d. %v\n", i+1, st)
	}
	return b.String()
}

// Plan bounds a schedule.
type Plan struct {
	Kinds    []Kind        // kinds to draw from
	Nodes    int           // cluster size
	Duration time.Duration // faults start within this time
	HoldMin  time.Duration // each fault lasts at least this (default 1s)
	HoldMax  time.Duration // ... and at most this (default 4s)
	GapMin   time.Duration // quiet time after each heal (default 1s)
	GapMax   time.Duration // (default 2s)
}

// NewSchedule draws a schedule from seed: one fault at a time, each
// followed by a quiet gap in which the cluster must recover.
func NewSchedule(seed uint64, p Plan) Schedule {
	if p.HoldMin <= 0 {
		p.HoldMin = time.Second
	}
	if p.HoldMax < p.HoldMin {
		p.HoldMax = max(4*time.Second, p.HoldMin)
	}
	if p.GapMin <= 0 {
		p.GapMin = time.Second
	}
	if p.GapMax < p.GapMin {
		p.GapMax = max(2*time.Second, p.GapMin)
	}
	rng := rand.New(rand.NewPCG(seed, 0xd10c))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	s := Schedule{Seed: seed}
	at := between(p.GapMin, p.GapMax)
	for at < p.Duration && len(p.Kinds) > 0 {
		st := Step{At: at, Kind: p.Kinds[rng.IntN(len(p.Kinds))], Hold: between(p.HoldMin, p.HoldMax)}
		st.Leader = rng.IntN(2) == 0
		st.Pick = rng.IntN(max(p.Nodes, 1))
		switch st.Kind {
		case IsolateLeader, ClockJump:
			st.Leader = true
		case Partition:
			st.Minority = 1 + rng.IntN(max((p.Nodes-1)/2, 1))
		case OneWay:
			st.Leader, st.Inbound = true, rng.IntN(2) == 0
		case Delay:
			st.Delay = between(5*time.Millisecond, 150*time.Millisecond)
			st.Jitter = between(0, st.Delay)
		case Loss:
			st.Loss = 0.01 + rng.Float64()*0.2
		case Transfer:
			st.Leader = false // the target is a follower, picked by Pick
			st.Hold = 0
		}
		if st.Kind == ClockJump {
			st.Jump = between(time.Minute, 2*time.Hour)
			if rng.IntN(2) == 0 {
				st.Jump = -st.Jump
			}
		}
		s.Steps = append(s.Steps, st)
		at += st.Hold + between(p.GapMin, p.GapMax)
	}
	return s
}
