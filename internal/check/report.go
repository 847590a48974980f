package check

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dlock-raft/dlock/internal/history"
)

// Config says which checkers Run applies and how.
type Config struct {
	// Writes are the guarded resource's writes (Resource.Writes), checked
	// by Mutex; nil checks the holds alone.
	Writes []Write
	// Final is the observation taken after the faults healed (see
	// Durability); nil skips the durability check.
	Final []history.Op
	// LongLeases: the workload's TTLs outlast the run, so no lease
	// expired and the lock linearizability check (Locks) applies. Without
	// it, Locks is skipped and Durability checks locks loosely.
	LongLeases bool
	// Lin tunes the linearizability checks. Its Visualize is a directory
	// here: each failing check writes <dir>/<checker>.html.
	Lin LinOptions
}

// Report is what Run found: op counts and one Result per checker run.
type Report struct {
	// Ops counts the history's ops by kind and outcome.
	Ops     map[history.Kind]map[history.Outcome]int
	Results []Result
	Skipped []string // checkers not run, with why
}

// Run applies every checker that the config allows to the history. The
// linearizability checkers run one after the other, each with the full
// Lin.Timeout.
func Run(ops []history.Op, cfg Config) Report {
	rep := Report{Ops: map[history.Kind]map[history.Outcome]int{}}
	for _, op := range ops {
		if rep.Ops[op.Kind] == nil {
			rep.Ops[op.Kind] = map[history.Outcome]int{}
		}
		rep.Ops[op.Kind][op.Outcome]++
	}
	lin := func(name string) LinOptions {
		o := cfg.Lin
		if o.Visualize != "" {
			o.Visualize = filepath.Join(cfg.Lin.Visualize, name+".html")
		}
		return o
	}
	rep.Results = append(rep.Results, KV(ops, lin("kv")))
	if cfg.LongLeases {
		rep.Results = append(rep.Results, Locks(ops, lin("locks")))
	} else {
		rep.Skipped = append(rep.Skipped, "locks (leases may expire)")
	}
	rep.Results = append(rep.Results, Mutex(ops, cfg.Writes), FIFO(ops), Leases(ops))
	if cfg.Final != nil {
		rep.Results = append(rep.Results, Durability(ops, cfg.Final, cfg.LongLeases, lin("durability")))
	} else {
		rep.Skipped = append(rep.Skipped, "durability (no final observation)")
	}
	return rep
}

// OK reports whether every checker run passed.
func (r Report) OK() bool {
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return true
}

// String is the op counts, one verdict per checker with its violations,
// and the checkers skipped.
func (r Report) String() string {
	var b strings.Builder
	kinds := make([]string, 0, len(r.Ops))
	total := 0
	for k, byOutcome := range r.Ops {
		kinds = append(kinds, string(k))
		for _, n := range byOutcome {
			total += n
		}
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "%d ops:", total)
	for _, k := range kinds {
		c := r.Ops[history.Kind(k)]
		fmt.Fprintf(&b, " %s %d/%d/%d", k, c[history.OK], c[history.Refused], c[history.Unknown])
	}
	b.WriteString(" (ok/refused/unknown)")
	for _, res := range r.Results {
		b.WriteString("\n")
		b.WriteString(res.String())
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\nskipped: %s", s)
	}
	return b.String()
}
