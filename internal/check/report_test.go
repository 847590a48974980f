package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dlock-raft/dlock/internal/history"
)

// Run counts the ops, runs what the config allows, and says which checker
// failed and why.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ops := []history.Op{
		acquired(0, "L", "a", 0, 1, 3, 1), acquired(1, "L", "b", 2, 3, 4, 2), // two holders at once
		put(0, "k", "a", 4, 5, ok), get(1, "k", 6, 7, "a"), put(2, "k", "b", 8, 9, unknown),
	}
	rep := Run(ops, Config{Final: []history.Op{get(0, "k", 0, 0, "a")}, LongLeases: true,
		Lin: LinOptions{Timeout: fast.Timeout, Visualize: dir}})
	if rep.OK() {
		t.Fatalf("OK with two holders at once:\n%s", rep)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.Checker] = verdict(r)
	}
	// Durability checks the final state after the history, so a history
	// that fails Locks fails it too.
	want := map[string]string{"kv": "ok", "locks": "fail", "mutex": "fail", "fifo": "ok", "leases": "fail", "durability": "fail"}
	for c, v := range want {
		if got[c] != v {
			t.Errorf("%s: verdict %q, want %q", c, got[c], v)
		}
	}
	s := rep.String()
	mustContain(t, s, "5 ops: acquire 2/0/0 get 1/0/0 put 1/0/1 (ok/refused/unknown)")
	mustContain(t, s, `mutex: FAIL (violations: 1)`)
	mustContain(t, s, `lock "L" held twice at once`)
	if _, err := os.Stat(filepath.Join(dir, "locks.html")); err != nil {
		t.Errorf("locks visualization: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kv.html")); err == nil {
		t.Errorf("kv passed but wrote a visualization")
	}
}

func TestRunSkips(t *testing.T) {
	rep := Run([]history.Op{put(0, "k", "a", 0, 1, ok)}, Config{Lin: fast})
	if !rep.OK() || len(rep.Skipped) != 2 {
		t.Fatalf("OK %t, skipped %q; want true and locks, durability\n%s", rep.OK(), rep.Skipped, rep)
	}
	if s := rep.String(); !strings.Contains(s, "skipped: locks") || !strings.Contains(s, "skipped: durability") {
		t.Errorf("report does not name the skipped checkers:\n%s", s)
	}
}

// Violations past ViolationsMax are counted, not listed.
func TestResultCapsViolations(t *testing.T) {
	r := Result{Checker: "x"}
	for range ViolationsMax + 5 {
		r.addf("v")
	}
	if r.Count != ViolationsMax+5 || len(r.Violations) != ViolationsMax {
		t.Fatalf("Count %d, listed %d; want %d, %d", r.Count, len(r.Violations), ViolationsMax+5, ViolationsMax)
	}
	mustContain(t, r.String(), "... and 5 more")
}
