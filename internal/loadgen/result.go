package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Durations encode in JSON as nanoseconds.
type Result struct {
	System   string        `json:"system"`
	Workload Workload      `json:"workload"`
	Clients  int           `json:"clients"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// Throughput is the headline rate: cycles/s (uncontended), handoffs/s (contended), successful
	// operations/s (mixed, query). Unit names it.
	Throughput float64 `json:"throughput"`
	Unit       string  `json:"unit"`
	// Ops has one entry per operation the workload does, in a fixed order.
	Ops []OpStats `json:"ops"`
	// Errors counts failed operations of every kind; ErrorSamples holds a few distinct messages.
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	// LongestGap is the longest window, from the run's start to its end, in which no operation
	// succeeded: the outage a user of the service saw, during a failover say.
	LongestGap time.Duration `json:"longest_gap_ns"`
	// Slowest is the longest single call, failed or not: a call that hung shows here.
	Slowest time.Duration `json:"slowest_ns"`
	// CloseError says why some sessions failed to close after the run, if they did.
	CloseError string `json:"close_error,omitempty"`
}

// OpStats summarises one kind of operation. Percentiles are over successful operations only.
type OpStats struct {
	Op     string        `json:"op"`
	Count  int           `json:"count"`
	Errors int           `json:"errors"`
	PerSec float64       `json:"per_sec"`
	P50    time.Duration `json:"p50_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
	P999   time.Duration `json:"p999_ns"`
	Max    time.Duration `json:"max_ns"`
}

// Op returns the stats of the named operation, and false if the workload does not do it.
func (r *Result) Op(name string) (OpStats, bool) {
	for _, s := range r.Ops {
		if s.Op == name {
			return s, true
		}
	}
	return OpStats{}, false
}

func unit(w Workload) string {
	switch w {
	case Uncontended:
		return "cycles"
	case Contended:
		return "handoffs"
	case Query:
		return "queries"
	case Fill:
		return "acquires"
	}
	return "ops"
}

// opsOf lists the operations each workload records.
func opsOf(w Workload) []op {
	switch w {
	case Uncontended, Contended:
		return []op{opCycle, opAcquire, opRelease}
	case Mixed:
		return []op{opCycle, opAcquire, opRelease, opPut, opGet}
	case Fill:
		return []op{opAcquire}
	}
	return []op{opQuery}
}

func (r *runner) result(elapsed time.Duration) *Result {
	res := &Result{Workload: r.cfg.Workload, Clients: r.cfg.Clients, Elapsed: elapsed,
		Unit: unit(r.cfg.Workload) + "/s", Throughput: float64(r.done.Load()) / elapsed.Seconds()}
	var oks []time.Duration
	for _, w := range r.workers {
		oks = append(oks, w.oks...)
		res.Slowest = max(res.Slowest, w.slowest)
		for _, s := range w.samples {
			if len(res.ErrorSamples) < errorSamplesMax && !slices.Contains(res.ErrorSamples, s) {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
	}
	for _, o := range opsOf(r.cfg.Workload) {
		var lat []time.Duration
		st := OpStats{Op: opNames[o]}
		for _, w := range r.workers {
			lat = append(lat, w.lat[o]...)
			st.Errors += w.errs[o]
		}
		res.Errors += st.Errors
		slices.Sort(lat)
		st.Count = len(lat)
		st.PerSec = float64(len(lat)) / elapsed.Seconds()
		st.P50, st.P90, st.P99, st.P999 = quantile(lat, 0.5), quantile(lat, 0.9), quantile(lat, 0.99), quantile(lat, 0.999)
		if len(lat) > 0 {
			st.Max = lat[len(lat)-1]
		}
		res.Ops = append(res.Ops, st)
	}
	res.LongestGap = longestGap(oks, elapsed)
	return res
}

// quantile returns the q-quantile of sorted by the nearest-rank method, or 0 for no samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// longestGap returns the longest stretch of [0, end] that holds none of the times in oks.
func longestGap(oks []time.Duration, end time.Duration) time.Duration {
	slices.Sort(oks)
	gap, prev := time.Duration(0), time.Duration(0)
	for _, t := range oks {
		gap = max(gap, t-prev)
		prev = t
	}
	return max(gap, end-prev)
}

// WriteTable writes r for people: a headline, one row per operation, then the errors.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s, %d clients, %.1fs: %.1f %s, %d errors\n", r.System, r.Workload, r.Clients,
		r.Elapsed.Seconds(), r.Throughput, r.Unit, r.Errors)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tper s\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, s := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", s.Op, s.Count, s.Errors, s.PerSec,
			ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max))
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "longest window without a success: %s; slowest call: %s\n", ms(r.LongestGap), ms(r.Slowest))
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(&b, "error: %s\n", s)
	}
	if r.CloseError != "" {
		fmt.Fprintf(&b, "closing sessions after the run: %s\n", r.CloseError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms formats d in milliseconds with two decimals, the resolution that matters for lock latencies.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
