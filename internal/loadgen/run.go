package loadgen

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// op numbers the operations a run records.
type op int

const (
	opCycle op = iota // acquire plus release, without the hold between them
	opAcquire
	opRelease
	opPut
	opGet
	opQuery
	opCount
)

var opNames = [opCount]string{"cycle", "acquire", "release", "put", "get", "query"}

// sessionOpenParallelMax bounds how many sessions open at once, so 10,000 clients do not dial at once.
const sessionOpenParallelMax = 64

// errorSamplesMax bounds the distinct error messages a Result keeps; every error is still counted.
const errorSamplesMax = 8

// Run opens cfg.Clients sessions on sys, runs cfg.Workload until cfg.Duration has passed or cfg.Ops
// headline operations are done, waits for every client to finish the operation it is in, closes the
// sessions and returns what it measured. It fails only if cfg is invalid, a session cannot be opened,
// or ctx ends; errors of operations are counted in the Result, and a failure to close a session is
// noted in it (Result.CloseError), never returned. Run does not close sys.
//
// Each operation runs under its own timeout (the TTL), not under the run's deadline, so the last
// operations are measured whole rather than cut off when the duration ends.
func Run(ctx context.Context, sys System, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sessions, err := openSessions(ctx, sys, cfg)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, prefix: "bench/" + runID() + "/", workers: make([]*worker, cfg.Clients)}
	res := r.run(ctx, sessions)
	var closeErr error
	for _, s := range sessions {
		closeErr = errors.Join(closeErr, s.Close())
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loadgen: run ended early: %w", context.Cause(ctx))
	}
	if closeErr != nil {
		// The measurement stands; a session that failed to close (a lease revoke after a failover,
		// say) is reported beside it.
		res.CloseError = closeErr.Error()
	}
	res.System = sys.Name()
	return res, nil
}

func openSessions(ctx context.Context, sys System, cfg Config) ([]Session, error) {
	sessions := make([]Session, cfg.Clients)
	errs := make([]error, cfg.Clients)
	sem := make(chan struct{}, sessionOpenParallelMax)
	var wg sync.WaitGroup
	for i := range sessions {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sessions[i], errs[i] = sys.Session(ctx, SessionConfig{ID: i, TTL: cfg.TTL})
		}()
	}
	wg.Wait()
	failed, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		for _, s := range sessions {
			if s != nil {
				_ = s.Close()
			}
		}
		return nil, fmt.Errorf("loadgen: open %s sessions: %d of %d failed, the first: %w", sys.Name(), failed,
			cfg.Clients, first)
	}
	return sessions, nil
}

// runID makes lock and key names unique to one run, so a hold left by an aborted run never blocks the
// next one.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type runner struct {
	cfg     Config
	prefix  string
	start   time.Time
	done    atomic.Int64 // headline operations completed
	errs    atomic.Int64
	stop    context.CancelFunc
	workers []*worker
}

func (r *runner) run(ctx context.Context, sessions []Session) *Result {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if r.cfg.Duration > 0 {
		var stopTimer context.CancelFunc
		runCtx, stopTimer = context.WithTimeout(runCtx, r.cfg.Duration)
		defer stopTimer()
	}
	r.stop = stop // cancels runCtx too
	r.start = time.Now()
	if r.cfg.OnStart != nil {
		r.cfg.OnStart()
	}
	var wg sync.WaitGroup
	for i, s := range sessions {
		w := &worker{r: r, id: i, s: s}
		r.workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, runCtx)
		}()
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if r.cfg.Progress != nil {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			r.progress(progressDone)
		}()
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	close(progressDone)
	progressWG.Wait()
	return r.result(elapsed)
}

// headlineDone counts one headline operation and ends the run once cfg.Ops are done.
func (r *runner) headlineDone() {
	if n := r.done.Add(1); r.cfg.Ops > 0 && n >= int64(r.cfg.Ops) {
		r.stop()
	}
}

func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintln(r.cfg.Progress)
			return
		case <-t.C:
			el := time.Since(r.start)
			n := r.done.Load()
			fmt.Fprintf(r.cfg.Progress, "\r%s %d clients  %4.0fs  %d %s  %.0f/s  errors %d   ",
				r.cfg.Workload, r.cfg.Clients, el.Seconds(), n, unit(r.cfg.Workload), float64(n)/el.Seconds(),
				r.errs.Load())
		}
	}
}
