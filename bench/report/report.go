// Package report renders the side-by-side benchmark of dlock, etcd and ZooKeeper: a markdown page
// with the machine, the method, one table per workload with dlock's ratios to each peer, the failover
// table, and a PNG bar chart of throughput.
//
// Ratios are taken within a round (each round runs every system on every workload back to back), then
// summarised by their median over rounds, so a machine that slows down between rounds moves both sides
// of a ratio alike.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dlock-raft/dlock/internal/loadgen"
)

// Systems are the benchmarked systems, in the order every table and chart shows them. dlock's
// ratios are taken to the other two.
var Systems = []string{"dlock", "etcd", "zookeeper"}

// Case is one workload at one client count: a row group of the report.
type Case struct {
	Workload loadgen.Workload
	Clients  int
}

// String is the case's label in tables and the chart, e.g. "uncontended, 16 clients".
func (c Case) String() string {
	if c.Clients == 1 {
		return fmt.Sprintf("%s, 1 client", c.Workload)
	}
	return fmt.Sprintf("%s, %d clients", c.Workload, c.Clients)
}

// Run is one measured run of one system.
type Run struct {
	Round  int
	Case   Case
	Result *loadgen.Result
	// Background is the share of one core that processes other than the benchmark's used during the
	// run.
	Background float64
}

// Machine describes where the benchmark ran. Each field is a reading, as printed; empty if unknown.
type Machine struct {
	CPUs, CPUModel, Kernel, GoVersion, Etcd, Zookeeper, Java, DataFS string
}

// Floor is the machine's least possible cost of one lock cycle: a cycle is two writes (acquire and
// release), each of which needs at least one fsync and one network round trip before it is
// acknowledged.
type Floor struct {
	Fsync time.Duration // median latency of a small write plus fsync in the data directory
	RTT   time.Duration // median loopback TCP round trip
}

// Cycle is the floor of one lock cycle: 2 × (fsync + RTT).
func (f Floor) Cycle() time.Duration { return 2 * (f.Fsync + f.RTT) }

// Report is everything one benchmark measured.
type Report struct {
	Machine Machine
	// Command is the command line that produced the report, shown so it can be run again.
	Command string
	// Method lists how the runs were set up, one sentence each.
	Method   []string
	Floor    Floor
	Rounds   int
	Cases    []Case
	Runs     []Run
	Failover []FailoverRun
	// IdleCPU is what each system's cluster used while idle, measured before the runs.
	IdleCPU []IdleCPU
	// FailoverKillAt is when, into each failover run, the leader was killed.
	FailoverKillAt time.Duration
	// PNG is the chart's path relative to the markdown file; empty leaves the chart out.
	PNG  string
	Date time.Time
	// NoisyAbove is the background share of a core above which a run is flagged as disturbed; 0 flags
	// none.
	NoisyAbove float64
}

// FailoverRun is one system's failover run.
type FailoverRun struct {
	Result *loadgen.Result
	// MachineLoad is the share of one core every process but the benchmark's own used during the run,
	// the cluster's included: a killed member's CPU cannot be told apart once it is gone.
	MachineLoad float64
}

// IdleCPU is the CPU time a system's idle cluster used over a window, all members together.
type IdleCPU struct {
	System string
	Window time.Duration
	CPU    time.Duration
	// Others is what every other process of the machine used in the same window (this benchmark's
	// own process included, which is idle then).
	Others time.Duration
}

// Share is the CPU used as a share of one core.
func (c IdleCPU) Share() float64 {
	if c.Window <= 0 {
		return 0
	}
	return float64(c.CPU) / float64(c.Window)
}

// cycleOp is the operation whose latency a case's table shows: a whole acquire plus release.
const cycleOp = "cycle"

// results returns the runs of case c by system, in round order.
func (r *Report) results(c Case) map[string][]*loadgen.Result {
	out := map[string][]*loadgen.Result{}
	for _, run := range r.Runs {
		if run.Case == c {
			out[run.Result.System] = append(out[run.Result.System], run.Result)
		}
	}
	return out
}

// background returns the other-load shares of case c's runs by system, in round order.
func (r *Report) background(c Case) map[string][]float64 {
	out := map[string][]float64{}
	for _, run := range r.Runs {
		if run.Case == c {
			out[run.Result.System] = append(out[run.Result.System], run.Background)
		}
	}
	return out
}

// noisy counts case c's runs whose other load was above NoisyAbove.
func (r *Report) noisy(c Case) int {
	n := 0
	for _, run := range r.Runs {
		if run.Case == c && r.NoisyAbove > 0 && run.Background > r.NoisyAbove {
			n++
		}
	}
	return n
}

// loads formats each round's other load as a percentage of one core.
func loads(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.0f%%", 100*x))
	}
	return strings.Join(parts, ", ")
}

// Throughput returns the median throughput of system sys in case c over rounds, and false if it has
// no run there.
func (r *Report) Throughput(c Case, sys string) (float64, bool) {
	res := r.results(c)[sys]
	if len(res) == 0 {
		return 0, false
	}
	var v []float64
	for _, x := range res {
		v = append(v, x.Throughput)
	}
	return median(v), true
}

// Ratio is dlock's figure over a peer's, each round's, and their median.
type Ratio struct {
	Peer     string
	PerRound []float64
	Median   float64
}

// Ratios returns dlock's throughput ratios in case c to etcd, to ZooKeeper and to the faster of the
// two in the same round. A round where a side has no run or a peer measured 0 is left out.
func (r *Report) Ratios(c Case) []Ratio {
	return r.ratios(c, func(x *loadgen.Result) (float64, bool) { return x.Throughput, true }, higher)
}

// acquireOp is the operation the latency target is set on: taking a lock, without its release.
const acquireOp = "acquire"

// AcquireP99Ratios returns dlock's p99 acquire latency in case c over etcd's, ZooKeeper's and the
// lower of the two in the same round: below 1, dlock's tail was shorter. Rounds are left out as
// in Ratios.
func (r *Report) AcquireP99Ratios(c Case) []Ratio {
	return r.ratios(c, func(x *loadgen.Result) (float64, bool) {
		st, ok := x.Op(acquireOp)
		return float64(st.P99), ok
	}, lower)
}

func higher(a, b float64) float64 { return max(a, b) }
func lower(a, b float64) float64  { return min(a, b) }

// ratios divides dlock's metric by each peer's within each round. The "faster peer" is whichever of
// etcd and ZooKeeper best returns: max for throughput, min for latency.
func (r *Report) ratios(c Case, metric func(*loadgen.Result) (float64, bool), best func(a, b float64) float64) []Ratio {
	byRound := map[int]map[string]float64{}
	var rounds []int
	for _, run := range r.Runs {
		if run.Case != c {
			continue
		}
		v, ok := metric(run.Result)
		if !ok {
			continue
		}
		if byRound[run.Round] == nil {
			byRound[run.Round] = map[string]float64{}
			rounds = append(rounds, run.Round)
		}
		byRound[run.Round][run.Result.System] = v
	}
	slices.Sort(rounds)
	peers := []string{"etcd", "zookeeper", "faster peer"}
	out := make([]Ratio, len(peers))
	for i, p := range peers {
		out[i].Peer = p
		for _, rd := range rounds {
			m := byRound[rd]
			d, okd := m["dlock"]
			var peer float64
			var okp bool
			if p == "faster peer" {
				e, oke := m["etcd"]
				z, okz := m["zookeeper"]
				peer, okp = best(e, z), oke && okz
			} else {
				peer, okp = m[p]
			}
			if okd && okp && peer > 0 {
				out[i].PerRound = append(out[i].PerRound, d/peer)
			}
		}
		out[i].Median = median(out[i].PerRound)
	}
	return out
}

// median returns the median of v (the mean of the middle two for an even count), 0 for none.
func median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ms formats d in milliseconds, with more decimals below 1ms where loopback latencies live.
func Ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 1 {
		return fmt.Sprintf("%.3f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}

// WriteMarkdown writes the report as markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# dlock, etcd and ZooKeeper side by side\n\n")
	b.WriteString("Generated by `bench/cmd/compare`; do not edit by hand. Every number below was measured in the run ")
	fmt.Fprintf(&b, "of %s:\n\n```\n%s\n```\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Command)
	b.WriteString("How these numbers compare with dlock's performance targets, which targets are missed, by how ")
	b.WriteString("much and why, and the profiles behind that: [performance.md](performance.md).\n\n")
	r.writeMachine(&b)
	if len(r.Method) > 0 || len(r.IdleCPU) > 0 {
		b.WriteString("## Method\n\n")
		for _, m := range r.Method {
			fmt.Fprintf(&b, "- %s\n", m)
		}
		if len(r.IdleCPU) > 0 {
			var parts, others []string
			for _, c := range r.IdleCPU {
				parts = append(parts, fmt.Sprintf("%s %.1f%%", c.System, 100*c.Share()))
				others = append(others, fmt.Sprintf("%.1f%%", 100*float64(c.Others)/float64(c.Window)))
			}
			fmt.Fprintf(&b, "- CPU used by each three-member cluster sitting idle (all members, share of one core, over %s): %s. ",
				r.IdleCPU[0].Window.Round(100*time.Millisecond), strings.Join(parts, ", "))
			fmt.Fprintf(&b, "Meanwhile the rest of the machine (processes this benchmark does not control) used %s of one core.\n",
				strings.Join(others, ", "))
		}
		b.WriteString("\n")
	}
	r.writeFloor(&b)
	b.WriteString("## Throughput and latency\n\n")
	fmt.Fprintf(&b, "Throughput is the median over %d round(s) (min–max in brackets when there are several); ", r.Rounds)
	b.WriteString("latencies are the median over rounds of each run's percentile of a whole cycle (acquire plus ")
	b.WriteString("release; in the contended case it includes the wait in the queue), or of the acquire alone. A throughput ")
	b.WriteString("ratio above 1 means dlock did more in the same time, an acquire p99 ratio below 1 that its tail was ")
	b.WriteString("shorter; each is the median of the per-round ratios, which follow it. *Other load* is ")
	b.WriteString("the share of one core that processes other than the benchmark's used during each round's run.\n\n")
	if r.PNG != "" {
		fmt.Fprintf(&b, "![throughput per workload and system](%s)\n\n", r.PNG)
	}
	for _, c := range r.Cases {
		r.writeCase(&b, c)
	}
	r.writeFailover(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeMachine(b *strings.Builder) {
	m := r.Machine
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	for _, row := range [][2]string{
		{"CPUs (nproc)", m.CPUs}, {"CPU model", m.CPUModel}, {"kernel", m.Kernel}, {"Go", m.GoVersion},
		{"etcd (Debian etcd-server)", m.Etcd}, {"ZooKeeper (Debian zookeeper)", m.Zookeeper}, {"Java", m.Java},
		{"data directory's filesystem", m.DataFS},
	} {
		v := row[1]
		if v == "" {
			v = "unknown"
		}
		fmt.Fprintf(b, "| %s | %s |\n", row[0], v)
	}
	b.WriteString("\n")
}

func (r *Report) writeFloor(b *strings.Builder) {
	f := r.Floor
	b.WriteString("## Machine floor\n\n")
	fmt.Fprintf(b, "A lock cycle is two replicated writes, each needing at least one fsync and one network round trip, so no ")
	fmt.Fprintf(b, "system here can beat **floor = 2 × (fsync + RTT) = 2 × (%s + %s) = %s** per cycle for one client ", Ms(f.Fsync), Ms(f.RTT), Ms(f.Cycle()))
	if f.Cycle() > 0 {
		fmt.Fprintf(b, "(at most %.0f cycles/s). ", float64(time.Second)/float64(f.Cycle()))
	}
	b.WriteString("fsync is the median of small writes each followed by fsync in the data directory's filesystem; RTT ")
	b.WriteString("the median of one-byte loopback TCP round trips.\n\n")
}

func (r *Report) writeCase(b *strings.Builder, c Case) {
	byS := r.results(c)
	unit := "ops/s"
	for _, res := range byS {
		unit = res[0].Unit
		break
	}
	fmt.Fprintf(b, "### %s\n\n", c)
	fmt.Fprintf(b, "| system | %s | cycle p50 | cycle p99 | acquire p99 | errors | other load |\n|---|---:|---:|---:|---:|---:|---:|\n", unit)
	bg := r.background(c)
	for _, sys := range Systems {
		res := byS[sys]
		if len(res) == 0 {
			fmt.Fprintf(b, "| %s | not run | | | | | |\n", sys)
			continue
		}
		var tp []float64
		var p50, p99, acqP99 []time.Duration
		errs := 0
		for _, x := range res {
			tp = append(tp, x.Throughput)
			if st, ok := x.Op(cycleOp); ok {
				p50, p99 = append(p50, st.P50), append(p99, st.P99)
			}
			if st, ok := x.Op(acquireOp); ok {
				acqP99 = append(acqP99, st.P99)
			}
			errs += x.Errors
		}
		spread := ""
		if len(tp) > 1 {
			spread = fmt.Sprintf(" (%.0f–%.0f)", slices.Min(tp), slices.Max(tp))
		}
		fmt.Fprintf(b, "| %s | %.1f%s | %s | %s | %s | %d | %s |\n", sys, median(tp), spread, Ms(median(p50)), Ms(median(p99)),
			Ms(median(acqP99)), errs, loads(bg[sys]))
	}
	b.WriteString("\n")
	if n := r.noisy(c); n > 0 {
		fmt.Fprintf(b, "**Disturbed:** in %d run(s) of this case other processes used more than %.0f%% of a core; treat its numbers with care.\n\n",
			n, 100*r.NoisyAbove)
	}
	fmt.Fprintf(b, "Throughput ratios: %s.\n\n", ratioList(r.Ratios(c)))
	fmt.Fprintf(b, "Acquire p99 ratios (below 1: dlock's tail is shorter): %s.\n\n", ratioList(r.AcquireP99Ratios(c)))
	if c.Clients == 1 && r.Floor.Cycle() > 0 {
		if res := byS["dlock"]; len(res) > 0 {
			var p50 []time.Duration
			for _, x := range res {
				if st, ok := x.Op(cycleOp); ok {
					p50 = append(p50, st.P50)
				}
			}
			fmt.Fprintf(b, "Beside the floor: dlock's cycle p50 %s is %.1f × the floor of %s.\n\n", Ms(median(p50)),
				float64(median(p50))/float64(r.Floor.Cycle()), Ms(r.Floor.Cycle()))
		}
	}
}

// ratioList formats ratios as "dlock/etcd **2.00** (2.10, 1.90); ...", each median in bold with its
// rounds after it.
func ratioList(rs []Ratio) string {
	var parts []string
	for _, rt := range rs {
		if len(rt.PerRound) == 0 {
			parts = append(parts, fmt.Sprintf("dlock/%s: n/a", rt.Peer))
			continue
		}
		var per []string
		for _, v := range rt.PerRound {
			per = append(per, fmt.Sprintf("%.2f", v))
		}
		parts = append(parts, fmt.Sprintf("dlock/%s **%.2f** (%s)", rt.Peer, rt.Median, strings.Join(per, ", ")))
	}
	return strings.Join(parts, "; ")
}

func (r *Report) writeFailover(b *strings.Builder) {
	if len(r.Failover) == 0 {
		return
	}
	b.WriteString("## Failover\n\n")
	res := r.Failover[0].Result
	fmt.Fprintf(b, "%s workload, %d clients, %s per run; the leader's process group was killed with SIGKILL %s into the run. ",
		res.Workload, res.Clients, res.Elapsed.Round(time.Second), r.FailoverKillAt)
	b.WriteString("*Longest gap* is the longest window in which no operation of any client succeeded: the outage users saw. ")
	b.WriteString("*Slowest call* is the longest single call, failed or not. *Machine load* is what every process but the ")
	b.WriteString("benchmark's own used, the cluster's included, in cores.\n\n")
	fmt.Fprintf(b, "| system | %s | errors | longest gap | slowest call | machine load |\n|---|---:|---:|---:|---:|---:|\n", res.Unit)
	for _, f := range r.Failover {
		x := f.Result
		fmt.Fprintf(b, "| %s | %.1f | %d | %s | %s | %.2f |\n", x.System, x.Throughput, x.Errors, Ms(x.LongestGap), Ms(x.Slowest), f.MachineLoad)
	}
	b.WriteString("\n")
	for _, f := range r.Failover {
		x := f.Result
		for _, s := range x.ErrorSamples {
			fmt.Fprintf(b, "- %s error: `%s`\n", x.System, strings.ReplaceAll(s, "`", "'"))
		}
	}
	b.WriteString("\n")
}
