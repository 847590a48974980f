package report

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/loadgen"
)

func result(sys string, c Case, tp float64, p50 time.Duration) *loadgen.Result {
	return &loadgen.Result{System: sys, Workload: c.Workload, Clients: c.Clients, Elapsed: 10 * time.Second,
		Throughput: tp, Unit: "cycles/s",
		Ops: []loadgen.OpStats{{Op: "cycle", Count: int(tp * 10), P50: p50, P99: 2 * p50},
			{Op: "acquire", Count: int(tp * 10), P50: p50 / 2, P99: p50}}}
}

// sample is two rounds of one case; in round 2 the machine was slower, for everyone alike.
func sample() *Report {
	c := Case{Workload: loadgen.Uncontended, Clients: 1}
	r := &Report{Rounds: 2, Cases: []Case{c}, Floor: Floor{Fsync: time.Millisecond, RTT: 50 * time.Microsecond},
		Command: "bench/run.sh -quick", PNG: "benchmarks.png", Date: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC),
		Machine: Machine{CPUs: "2"}, NoisyAbove: 0.15}
	for _, x := range []struct {
		round int
		sys   string
		tp    float64
		p50   time.Duration
		bg    float64
	}{
		{1, "dlock", 200, 2 * time.Millisecond, 0.01}, {1, "etcd", 100, 4 * time.Millisecond, 0}, {1, "zookeeper", 400, 8 * time.Millisecond, 0},
		{2, "dlock", 100, 3 * time.Millisecond, 0.5}, {2, "etcd", 50, 4 * time.Millisecond, 0}, {2, "zookeeper", 250, 2 * time.Millisecond, 0},
	} {
		r.Runs = append(r.Runs, Run{Round: x.round, Case: c, Result: result(x.sys, c, x.tp, x.p50), Background: x.bg})
	}
	r.Failover = []FailoverRun{{MachineLoad: 1.5, Result: &loadgen.Result{System: "dlock", Workload: loadgen.Uncontended, Clients: 16,
		Elapsed: 15 * time.Second, Unit: "cycles/s", Throughput: 300, Errors: 3,
		LongestGap: 1200 * time.Millisecond, Slowest: 2 * time.Second, ErrorSamples: []string{"acquire: `unavailable`"}}}}
	r.FailoverKillAt = 5 * time.Second
	r.IdleCPU = []IdleCPU{{System: "dlock", Window: 5 * time.Second, CPU: 100 * time.Millisecond, Others: 500 * time.Millisecond}}
	return r
}

// Ratios are taken within each round, then their median: a slower second round moves both sides.
func TestRatiosPerRound(t *testing.T) {
	r := sample()
	got := r.Ratios(r.Cases[0])
	want := []struct {
		peer     string
		perRound []float64
		median   float64
	}{
		{"etcd", []float64{2, 2}, 2},
		{"zookeeper", []float64{0.5, 0.4}, 0.45},
		{"faster peer", []float64{0.5, 0.4}, 0.45},
	}
	for i, w := range want {
		t.Run(w.peer, func(t *testing.T) {
			g := got[i]
			if g.Peer != w.peer || !near(g.Median, w.median) || len(g.PerRound) != len(w.perRound) {
				t.Fatalf("got %+v, want peer %s per round %v median %v", g, w.peer, w.perRound, w.median)
			}
			for j := range w.perRound {
				if !near(g.PerRound[j], w.perRound[j]) {
					t.Errorf("round %d: got %v, want %v", j+1, g.PerRound[j], w.perRound[j])
				}
			}
		})
	}
}

// Latency ratios pick the lower of the peers' p99s as the faster peer, round by round.
func TestAcquireP99RatiosPerRound(t *testing.T) {
	r := sample()
	got := r.AcquireP99Ratios(r.Cases[0])
	want := map[string][]float64{"etcd": {0.5, 0.75}, "zookeeper": {0.25, 1.5}, "faster peer": {0.5, 1.5}}
	for _, g := range got {
		w := want[g.Peer]
		if !slices.EqualFunc(g.PerRound, w, near) || !near(g.Median, (w[0]+w[1])/2) {
			t.Errorf("dlock/%s: got %v (median %v), want %v", g.Peer, g.PerRound, g.Median, w)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// A round where a system did not run gives no ratio rather than a division by zero.
func TestRatiosMissingSystem(t *testing.T) {
	c := Case{Workload: loadgen.Contended, Clients: 16}
	r := &Report{Cases: []Case{c}, Runs: []Run{{Round: 1, Case: c, Result: result("dlock", c, 10, time.Millisecond)}}}
	for _, rt := range r.Ratios(c) {
		if len(rt.PerRound) != 0 {
			t.Errorf("dlock/%s: got %v, want no ratio", rt.Peer, rt.PerRound)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"bench/run.sh -quick",
		"floor = 2 × (fsync + RTT) = 2 × (1.00 ms + 0.050 ms) = 2.10 ms",
		"| dlock | 150.0 (100–200) | 2.50 ms | 5.00 ms | 2.50 ms | 0 | 1%, 50% |",
		"Acquire p99 ratios (below 1: dlock's tail is shorter): dlock/etcd **0.62** (0.50, 0.75); dlock/zookeeper **0.88** (0.25, 1.50); dlock/faster peer **1.00** (0.50, 1.50).",
		"**Disturbed:** in 1 run(s) of this case other processes used more than 15% of a core",
		"dlock/etcd **2.00** (2.00, 2.00)",
		"dlock/faster peer **0.45** (0.50, 0.40)",
		"1.2 × the floor",
		"![throughput per workload and system](benchmarks.png)",
		"| dlock | 300.0 | 3 | 1200.00 ms | 2000.00 ms | 1.50 |",
		"- dlock error: `acquire: 'unavailable'`",
		"| data directory's filesystem | unknown |",
		"(all members, share of one core, over 5s): dlock 2.0%. ",
		"the rest of the machine (processes this benchmark does not control) used 10.0% of one core.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, md)
		}
	}
}

func TestPNG(t *testing.T) {
	var b bytes.Buffer
	r := sample()
	if err := r.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("decode the chart: %v", err)
	}
	if w := img.Bounds().Dx(); w < 300 {
		t.Errorf("chart width %d px, want at least 300 (one 4-inch panel at 96 dpi)", w)
	}
}

// A system that was not run gets no bar (and no legend entry), not a bar of 0.
func TestPNGDrawsOnlySystemsRun(t *testing.T) {
	full := sample()
	only := sample()
	only.Runs = slices.DeleteFunc(only.Runs, func(r Run) bool { return r.Result.System != "dlock" })
	for _, tt := range []struct {
		name string
		r    *Report
		etcd bool
	}{{"all systems", full, true}, {"dlock only", only, false}} {
		var b bytes.Buffer
		if err := tt.r.WritePNG(&b); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatalf("%s: decode the chart: %v", tt.name, err)
		}
		if got := hasColor(img, colors[1]); got != tt.etcd {
			t.Errorf("%s: etcd's color drawn %t, want %t", tt.name, got, tt.etcd)
		}
	}
}

func hasColor(img image.Image, c color.Color) bool {
	r0, g0, b0, _ := c.RGBA()
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r == r0 && g == g0 && b == b0 {
				return true
			}
		}
	}
	return false
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want float64
	}{
		{"none", nil, 0},
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.give); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}
