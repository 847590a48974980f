package chaos

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/internal/history"
	"github.com/dlock-raft/dlock/internal/nemesis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	flagSeed     = flag.Uint64("chaos.seed", 0, "replay one run: this seed, with -chaos.mode, -chaos.kinds and -chaos.duration")
	flagMode     = flag.String("chaos.mode", string(InProcess), "replay: inprocess or process")
	flagKinds    = flag.String("chaos.kinds", "all", "replay: comma-separated fault kinds")
	flagDuration = flag.Duration("chaos.duration", 0, "replay: faults start within this time; with -chaos.long, the whole campaign's length")
	flagLong     = flag.Bool("chaos.long", false, "run a long campaign of random seeds for -chaos.duration (default 1h) and print a summary")
)

// shortRun is how long faults keep starting in each CI run.
const shortRun = 5 * time.Second

// regressions are seeds that once found a bug, kept so it stays fixed.
var regressions = []Run{
	// A retried acquire answered WAIT_TIMEOUT while its first attempt's
	// claim kept the owner queued; the lock was granted to it later.
	{Mode: Processes, Seed: 56305, Kinds: nemesis.AllKinds, Nodes: 3, Duration: time.Minute},
	// An acquire's first send, applied after its retry, took the claim back
	// from the retry; the retry answered WAIT_TIMEOUT and the owner was
	// granted the lock later.
	{Mode: InProcess, Seed: 35705, Kinds: nemesis.AllKinds, Nodes: 3, Duration: time.Minute},
}

// TestCampaign runs nemesis campaigns and fails on any violation. Without
// flags it is the short CI campaign: two seeds per fault kind in process
// and in-process clusters, then the regression seeds. -chaos.seed replays
// one run; -chaos.long runs the long campaign.
func TestCampaign(t *testing.T) {
	var runs []Run
	switch {
	case *flagSeed != 0:
		kinds, err := nemesis.ParseKinds(*flagKinds)
		if err != nil {
			t.Fatal(err)
		}
		d := *flagDuration
		if d == 0 {
			d = shortRun
		}
		runs = []Run{{Mode: Mode(*flagMode), Seed: *flagSeed, Kinds: kinds, Nodes: 3, Duration: d}}
	case *flagLong:
		longCampaign(t)
		return
	default:
		runs = shortCampaign()
	}
	var sum summary
	for _, r := range runs {
		t.Run(fmt.Sprintf("%s/%s/%d", r.Mode, kindList(r.Kinds), r.Seed), func(t *testing.T) {
			out := Execute(t, r, artifactDir(t, r))
			sum.add(out)
			if out.Violations() > 0 {
				t.Errorf("violations found:\n%s", out.Report())
			} else {
				t.Logf("%d ops, %s", out.Ops, nemesis.Summary(out.Events))
				for _, res := range out.Results {
					t.Logf("  %v", res)
				}
			}
		})
	}
	t.Log(sum.String())
}

func shortCampaign() []Run {
	var runs []Run
	inproc := []nemesis.Kind{nemesis.IsolateLeader, nemesis.Partition, nemesis.OneWay, nemesis.Crash,
		nemesis.Delay, nemesis.Loss, nemesis.ClockJump, nemesis.Transfer}
	procs := []nemesis.Kind{nemesis.Crash, nemesis.Pause, nemesis.Partition, nemesis.Transfer}
	for i, k := range inproc {
		for _, seed := range nemesis.Seeds(uint64(100+i), 2) {
			runs = append(runs, Run{Mode: InProcess, Seed: seed, Kinds: []nemesis.Kind{k}, Nodes: 3, Duration: shortRun})
		}
	}
	for i, k := range procs {
		for _, seed := range nemesis.Seeds(uint64(200+i), 2) {
			runs = append(runs, Run{Mode: Processes, Seed: seed, Kinds: []nemesis.Kind{k}, Nodes: 3, Duration: shortRun})
		}
	}
	return append(runs, regressions...)
}

// longCampaign alternates in-process and process runs of every fault kind,
// a minute of faults each, with fresh seeds, until the duration is spent.
func longCampaign(t *testing.T) {
	total := *flagDuration
	if total == 0 {
		total = time.Hour
	}
	end := time.Now().Add(total)
	seeds := nemesis.Seeds(uint64(time.Now().UnixNano()), 1<<16)
	var sum summary
	for i := 0; time.Now().Before(end); i++ {
		mode := InProcess
		if i%2 == 1 {
			mode = Processes
		}
		r := Run{Mode: mode, Seed: seeds[i], Kinds: nemesis.AllKinds, Nodes: 3, Duration: time.Minute}
		t.Run(fmt.Sprintf("%s/%d", mode, r.Seed), func(t *testing.T) {
			out := Execute(t, r, artifactDir(t, r))
			sum.add(out)
			if out.Violations() > 0 {
				t.Errorf("violations found:\n%s", out.Report())
			}
			t.Logf("run %d: %d ops, %s, violations %d", i+1, out.Ops, nemesis.Summary(out.Events), out.Violations())
		})
	}
	fmt.Println(sum.String())
	t.Log(sum.String())
}

// summary adds up a campaign.
type summary struct {
	runs, ops, violations int
	faults                map[nemesis.Kind]int
	declined              int // faults the cluster refused (Event.Declined)
	recovery              time.Duration
	failed                []string
}

func (s *summary) add(o Outcome) {
	if s.faults == nil {
		s.faults = map[nemesis.Kind]int{}
	}
	s.runs++
	s.ops += o.Ops
	s.violations += o.Violations()
	for _, e := range o.Events {
		s.faults[e.Step.Kind]++
		if e.Declined != nil {
			s.declined++
		}
	}
	s.recovery = max(s.recovery, o.Recovery)
	if o.Violations() > 0 {
		s.failed = append(s.failed, fmt.Sprintf("%s seed %d", o.Run.Mode, o.Run.Seed))
	}
}

func (s *summary) String() string {
	var parts []string
	n := 0
	for _, k := range nemesis.AllKinds {
		if s.faults[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.faults[k]))
			n += s.faults[k]
		}
	}
	return fmt.Sprintf("campaign summary: %d runs, %d operations, %d faults injected (%s; %d declined by the cluster), violations found: %d%s; "+
		"longest recovery after a heal %v (bound %d election timeouts = %v)",
		s.runs, s.ops, n, strings.Join(parts, ", "), s.declined, s.violations, failedList(s.failed),
		s.recovery.Round(time.Millisecond), RecoveryElections, RecoveryElections*electionTimeout())
}

// releasedBefore reports whether a's owner sent a release of a's lock
// before a's answer came.
func releasedBefore(ops []history.Op, a history.Op) bool {
	for _, op := range ops {
		if op.Kind == history.Release && op.Owner == a.Owner && op.Name == a.Name && op.Invoke >= a.Invoke && op.Invoke < a.Return {
			return true
		}
	}
	return false
}

func failedList(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, "; ") + ")"
}

// The checks catch a history a broken cluster would give: the same real
// run's history, with one answer changed, fails the checker that covers it.
func TestChecksCatchCorruptedHistories(t *testing.T) {
	r := Run{Mode: InProcess, Seed: 1, Nodes: 3, Duration: 3 * time.Second} // no faults
	out := Execute(t, r, "")
	if out.Violations() > 0 {
		t.Fatalf("clean run failed:\n%s", out.Report())
	}
	verdicts := func(ops []history.Op) map[string]bool {
		ok := map[string]bool{}
		for _, res := range runChecks(ops, out.Final, out.Writes, "") {
			ok[res.Checker] = ok[res.Checker] || !res.OK() // any failing instance
		}
		return ok
	}
	corrupt := func(what string, change func(ops []history.Op) bool, checkers ...string) {
		t.Helper()
		ops := append([]history.Op(nil), out.History...)
		if !change(ops) {
			t.Fatalf("%s: the run has no op to corrupt", what)
		}
		failed := verdicts(ops)
		for _, c := range checkers {
			if !failed[c] {
				t.Errorf("%s: checker %s passed the corrupted history", what, c)
			}
		}
	}
	corrupt("a get returns a value never written", func(ops []history.Op) bool {
		for i := range ops {
			if ops[i].Kind == history.Get && ops[i].Outcome == history.OK && ops[i].ResFound {
				ops[i].ResValue = "never-written"
				return true
			}
		}
		return false
	}, "kv")
	corrupt("a lock granted with the token of an earlier grant", func(ops []history.Op) bool {
		seen := map[string]uint64{}
		for i := range ops {
			op := &ops[i]
			if op.Kind != history.Acquire || op.Outcome != history.OK || !strings.HasPrefix(op.Name, "lin-") {
				continue
			}
			if prev, ok := seen[op.Name]; ok && prev != op.ResToken {
				op.ResToken = prev
				return true
			}
			seen[op.Name] = op.ResToken
		}
		return false
	}, "locks")
	corrupt("a second owner granted while the first holds the lock", func(ops []history.Op) bool {
		for i := range ops {
			a := ops[i]
			if a.Kind != history.Acquire || a.Outcome != history.OK || !strings.HasPrefix(a.Name, "lease-") {
				continue
			}
			// a's owner must see a valid hold: an answer that came after
			// most of the lease (a loaded machine) leaves a window too
			// short to overlap, and a release sent before the answer none.
			if a.Return-a.Invoke >= a.TTL/2 || releasedBefore(ops, a) {
				continue
			}
			// Another owner's grant of the same lock, answered as a's was.
			for j := i + 1; j < len(ops); j++ {
				b := &ops[j]
				if b.Kind == history.Acquire && b.Outcome == history.OK && b.Name == a.Name && b.Owner != a.Owner &&
					b.ResToken > a.ResToken {
					b.Invoke, b.Return = a.Invoke, a.Return
					return true
				}
			}
		}
		return false
	}, "mutex", "leases")
	corrupt("a later waiter granted before an earlier one", func(ops []history.Op) bool {
		for i := range ops {
			a := &ops[i]
			if a.Kind != history.Acquire || a.Outcome != history.OK || a.Queued == 0 {
				continue
			}
			for j := range ops {
				b := &ops[j]
				if b.Kind == history.Acquire && b.Outcome == history.OK && b.Name == a.Name &&
					b.Owner != a.Owner && a.Queued < b.Invoke && a.ResToken < b.ResToken {
					a.ResToken, b.ResToken = b.ResToken, a.ResToken
					return true
				}
			}
		}
		return false
	}, "fifo")
}
