package check

import (
	"fmt"
	"strings"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// ViolationsMax bounds the violations a Result lists; Count still counts
// them all. A broken cluster can fail one rule thousands of times, and the
// first few say what went wrong.
const ViolationsMax = 100

// Result is what one checker found.
type Result struct {
	Checker string // which check: "kv", "locks", "mutex", "fifo", "leases", "durability"
	// Violations describes, for people, each way the history broke the
	// checker's rule (the first ViolationsMax of them).
	Violations []string
	Count      int // violations found, listed or not
	// TimedOut: a linearizability search ran out of time before it either
	// found a linearization or proved there is none. The history is then
	// neither passed nor failed; callers that need a verdict (tests) treat
	// it as a failure. TimedOutParts names what was not decided.
	TimedOut      bool
	TimedOutParts []string
	// Visualization names the file holding porcupine's HTML rendering of
	// the first failing partition, and the partition, when one was asked
	// for and written.
	Visualization string
}

// OK reports whether the history passed: no violation and no timeout.
func (r Result) OK() bool { return r.Count == 0 && !r.TimedOut }

// String is one line of verdict, then one line per listed violation.
func (r Result) String() string {
	var b strings.Builder
	switch {
	case r.Count > 0:
		fmt.Fprintf(&b, "%s: FAIL (violations: %d)", r.Checker, r.Count)
	case r.TimedOut:
		fmt.Fprintf(&b, "%s: UNKNOWN (timed out on %s)", r.Checker, strings.Join(r.TimedOutParts, ", "))
	default:
		fmt.Fprintf(&b, "%s: ok", r.Checker)
	}
	if r.Visualization != "" {
		fmt.Fprintf(&b, " (visualization: %s)", r.Visualization)
	}
	for _, v := range r.Violations {
		b.WriteString("\n  ")
		b.WriteString(v)
	}
	if r.Count > len(r.Violations) {
		fmt.Fprintf(&b, "\n  ... and %d more", r.Count-len(r.Violations))
	}
	return b.String()
}

// addf records one violation.
func (r *Result) addf(format string, args ...any) {
	r.Count++
	if len(r.Violations) < ViolationsMax {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

// describe names an op for a violation message.
func describe(op history.Op) string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %d %s(%q", op.Client, op.Kind, op.Name)
	switch op.Kind {
	case history.Acquire:
		fmt.Fprintf(&b, ", owner %q, ttl %v, wait %v", op.Owner, op.TTL, op.Wait)
	case history.Renew:
		fmt.Fprintf(&b, ", owner %q, token %d, ttl %v", op.Owner, op.Token, op.TTL)
	case history.Release:
		fmt.Fprintf(&b, ", owner %q, token %d", op.Owner, op.Token)
	case history.Put:
		fmt.Fprintf(&b, ", %q", op.Value)
	}
	fmt.Fprintf(&b, ") [%v, %v] %s", ms(op.Invoke), ms(op.Return), op.Outcome)
	if op.Outcome != history.OK {
		return b.String()
	}
	switch op.Kind {
	case history.Acquire:
		fmt.Fprintf(&b, " token %d nonce %d", op.ResToken, op.ResNonce)
	case history.Renew:
		fmt.Fprintf(&b, " token %d", op.ResToken)
	case history.Query:
		fmt.Fprintf(&b, " found %t holder %q token %d nonce %d", op.ResFound, op.ResHolder, op.ResToken, op.ResNonce)
	case history.Get:
		fmt.Fprintf(&b, " found %t %q", op.ResFound, op.ResValue)
	}
	return b.String()
}

// ms prints a recording offset to the microsecond, which is finer than any
// fault the suite injects and short enough to read.
func ms(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
