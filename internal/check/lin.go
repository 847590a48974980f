package check

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dlock-raft/dlock/internal/history"
)

// DefaultTimeout bounds a linearizability check when LinOptions.Timeout is
// zero (zero never means unlimited: an NP-hard search must end).
const DefaultTimeout = time.Minute

// LinOptions tunes the linearizability checkers (KV, Locks, Durability).
type LinOptions struct {
	// Timeout bounds the whole search; past it the undecided partitions are
	// reported as TimedOut. Zero means DefaultTimeout.
	Timeout time.Duration
	// Visualize, if set, is the path of an HTML file to write porcupine's
	// visualization of the first failing (or undecided) partition to:
	// one key or lock, its ops, and the longest linearizations found.
	// Nothing is written when the history passes.
	Visualize string
}

func (o LinOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// part is one partition of a linearizability check: the ops on one key or
// one lock, as porcupine operations.
type part struct {
	name string
	ops  []porcupine.Operation
}

// linearize checks each partition on its own (at most GOMAXPROCS at once,
// all against one deadline), so a failure names its key or lock and a slow
// partition does not hide the verdicts of the others. The verbose check
// waits for porcupine's goroutines, even on timeout, and keeps what the
// visualization needs.
func linearize(checker string, m porcupine.Model, parts []part, opt LinOptions) Result {
	r := Result{Checker: checker}
	deadline := time.Now().Add(opt.timeout())
	verdicts := make([]porcupine.CheckResult, len(parts))
	infos := make([]porcupine.LinearizationInfo, len(parts))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A timeout of 0 is unlimited to porcupine: give it at least a
			// nanosecond so a late partition is reported undecided.
			left := max(time.Until(deadline), time.Nanosecond)
			verdicts[i], infos[i] = porcupine.CheckOperationsVerbose(m, parts[i].ops, left)
		}()
	}
	wg.Wait()
	first := -1 // the first failing or undecided partition
	for i, v := range verdicts {
		switch v {
		case porcupine.Illegal:
			r.addf("%s %q: not linearizable (%d ops)", checker, parts[i].name, len(parts[i].ops)-1)
		case porcupine.Unknown:
			r.TimedOut = true
			r.TimedOutParts = append(r.TimedOutParts, parts[i].name)
		default:
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 && opt.Visualize != "" {
		if err := porcupine.VisualizePath(m, infos[first], opt.Visualize); err != nil {
			r.addf("%s: writing the visualization of %q to %s: %v", checker, parts[first].name, opt.Visualize, err)
		} else {
			r.Visualization = fmt.Sprintf("%s (%s %q)", opt.Visualize, checker, parts[first].name)
		}
	}
	return r
}

// opMeta rides along with each porcupine operation: the op, for the
// visualization.
type opMeta struct{ op history.Op }

func (m opMeta) String() string {
	if m.op.Kind == "" {
		return "end of history"
	}
	return describe(m.op)
}

// never is the return time given to ops whose outcome is unknown: later
// than anything in the history, so they may take effect at any moment after
// they were invoked, or (placed last) not at all.
func never(ops []history.Op) int64 {
	var last time.Duration
	for _, op := range ops {
		last = max(last, op.Invoke, op.Return)
	}
	if last >= math.MaxInt64/2 {
		return math.MaxInt64
	}
	return int64(last) + 1
}

// partitions groups operations by name in name order, so reports and
// visualizations are stable, and ends each partition with an endOfHistory
// op at time inf.
func partitions(byName map[string][]porcupine.Operation, inf int64) []part {
	parts := make([]part, 0, len(byName))
	for _, n := range sortedNames(byName) {
		ops := byName[n]
		client := 0
		for _, op := range ops {
			client = max(client, op.ClientId+1)
		}
		ops = append(ops, porcupine.Operation{ClientId: client, Input: endOfHistory{}, Call: inf, Return: inf,
			Output: endOfHistory{}, Metadata: opMeta{}})
		parts = append(parts, part{name: n, ops: ops})
	}
	return parts
}

// endOfHistory is the input of a last, synthetic op in every partition,
// after which only unanswered ops remain to be placed: the model ignores
// them there. Unanswered ops are then placed before it only to take
// effect, which spares the search every useless placement as a no-op.
type endOfHistory struct{}

// operation makes a porcupine operation of op with the given input, output
// and return time.
func operation(op history.Op, in, out any, ret int64) porcupine.Operation {
	return porcupine.Operation{
		ClientId: op.Client,
		Input:    in,
		Call:     int64(op.Invoke),
		Output:   out,
		Return:   ret,
		Metadata: opMeta{op: op},
	}
}

// fnv64 hashes strings and numbers into a state hash (FNV-1a).
type fnv64 uint64

func newHash() fnv64 { return 14695981039346656037 }

func (h fnv64) str(s string) fnv64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ fnv64(s[i])) * 1099511628211
	}
	return (h ^ 0xff) * 1099511628211 // terminator: "a"+"b" differs from "ab"+""
}

func (h fnv64) num(v uint64) fnv64 {
	for i := 0; i < 8; i++ {
		h = (h ^ fnv64(v&0xff)) * 1099511628211
		v >>= 8
	}
	return h
}

func (h fnv64) flag(b bool) fnv64 {
	if b {
		return h.num(1)
	}
	return h.num(0)
}
