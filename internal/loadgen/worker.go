package loadgen

import (
	"context"
	"fmt"
	"time"
)

// worker is one simulated client. Only its own goroutine touches it until the run ends.
type worker struct {
	r       *runner
	id      int
	s       Session
	lat     [opCount][]time.Duration // latency of each successful operation
	errs    [opCount]int
	oks     []time.Duration // when each successful operation returned, since the run's start
	slowest time.Duration
	samples []string // distinct error messages, at most errorSamplesMax
}

// loop runs the workload until runCtx ends. Operations run under ctx (the caller's) with their own
// timeout, so the run's end never cuts one short.
func (w *worker) loop(ctx, runCtx context.Context) {
	cfg := w.r.cfg
	lock := fmt.Sprintf("%sc%d", w.r.prefix, w.id)
	if cfg.Workload == Contended {
		lock = w.r.prefix + "shared"
	}
	key := fmt.Sprintf("%skey%d", w.r.prefix, w.id)
	value := make([]byte, cfg.PayloadSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	filled := 0 // Fill: the locks this client has asked for
	for runCtx.Err() == nil {
		switch cfg.Workload {
		case Uncontended, Contended:
			if w.cycle(ctx, lock) {
				w.r.headlineDone()
			}
		case Mixed:
			w.cycle(ctx, lock)
			w.do(ctx, opPut, func(c context.Context) error { return w.s.Put(c, key, value) })
			w.do(ctx, opGet, func(c context.Context) error { return w.s.Get(c, key) })
		case Query:
			w.do(ctx, opQuery, func(c context.Context) error { return w.s.Query(c, lock) })
		case Fill:
			name := fmt.Sprintf("%s-%d", lock, filled)
			filled++
			w.do(ctx, opAcquire, func(c context.Context) error { return w.s.Acquire(c, name) })
		}
	}
}

// cycle acquires lock, holds it for cfg.Hold and releases it. It records the acquire, the release and
// their sum (the cycle, without the hold), and reports whether both succeeded: only a whole cycle
// counts toward the headline rate, so the rate and the cycle row agree even when calls fail.
func (w *worker) cycle(ctx context.Context, lock string) bool {
	acq, ok := w.do(ctx, opAcquire, func(c context.Context) error { return w.s.Acquire(c, lock) })
	if !ok {
		return false
	}
	if w.r.cfg.Hold > 0 {
		t := time.NewTimer(w.r.cfg.Hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	rel, ok := w.do(ctx, opRelease, func(c context.Context) error { return w.s.Release(c, lock) })
	if ok {
		w.lat[opCycle] = append(w.lat[opCycle], acq+rel)
	}
	return ok
}

// do runs one operation under its own timeout and records it. For the mixed, query and fill workloads
// each successful operation is a headline one.
func (w *worker) do(ctx context.Context, o op, fn func(context.Context) error) (time.Duration, bool) {
	opCtx, cancel := context.WithTimeout(ctx, w.r.cfg.TTL)
	t0 := time.Now()
	err := fn(opCtx)
	end := time.Now()
	cancel()
	d := end.Sub(t0)
	w.slowest = max(w.slowest, d)
	if err != nil {
		w.errs[o]++
		w.r.errs.Add(1)
		w.sample(fmt.Sprintf("%s: %v", opNames[o], err))
		return d, false
	}
	w.lat[o] = append(w.lat[o], d)
	w.oks = append(w.oks, end.Sub(w.r.start))
	if wl := w.r.cfg.Workload; wl == Mixed || wl == Query || wl == Fill {
		w.r.headlineDone()
	}
	return d, true
}

func (w *worker) sample(msg string) {
	if len(w.samples) >= errorSamplesMax {
		return
	}
	for _, s := range w.samples {
		if s == msg {
			return
		}
	}
	w.samples = append(w.samples, msg)
}
