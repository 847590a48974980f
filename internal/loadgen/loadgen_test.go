package loadgen_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/internal/loadgen"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memSystem is a lock service in memory: one buffered channel per lock. It holds a lock for one
// session at a time, so a run against it shows what the runner counts, free of any network.
type memSystem struct {
	mu       sync.Mutex
	locks    map[string]chan struct{}
	holders  atomic.Int32 // sessions inside a contended hold right now
	overlaps atomic.Int32 // times two sessions held the same lock at once
	putFails atomic.Int32 // every put fails while this is above 0, then it counts down
	relFails atomic.Int32 // likewise for releases (the lock is released all the same)
	closed   atomic.Int32
}

func newMem() *memSystem { return &memSystem{locks: map[string]chan struct{}{}} }

func (m *memSystem) Name() string { return "mem" }
func (m *memSystem) Close() error { return nil }
func (m *memSystem) Session(context.Context, loadgen.SessionConfig) (loadgen.Session, error) {
	return &memSession{m: m}, nil
}

func (m *memSystem) lock(name string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.locks[name]
	if !ok {
		ch = make(chan struct{}, 1)
		m.locks[name] = ch
	}
	return ch
}

type memSession struct{ m *memSystem }

func (s *memSession) Acquire(ctx context.Context, name string) error {
	select {
	case s.m.lock(name) <- struct{}{}:
		if s.m.holders.Add(1) > 1 && strings.HasSuffix(name, "shared") {
			s.m.overlaps.Add(1)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *memSession) Release(_ context.Context, name string) error {
	s.m.holders.Add(-1)
	<-s.m.lock(name)
	if s.m.relFails.Add(-1) >= 0 {
		return errors.New("lost the answer")
	}
	return nil
}

func (s *memSession) Put(context.Context, string, []byte) error {
	if s.m.putFails.Add(-1) >= 0 {
		return errors.New("disk on fire")
	}
	return nil
}

func (s *memSession) Get(context.Context, string) error   { return nil }
func (s *memSession) Query(context.Context, string) error { return nil }
func (s *memSession) Close() error                        { s.m.closed.Add(1); return nil }

func run(t *testing.T, sys loadgen.System, cfg loadgen.Config) *loadgen.Result {
	t.Helper()
	res, err := loadgen.Run(t.Context(), sys, cfg)
	if err != nil {
		t.Fatalf("Run(%+v) = %v", cfg, err)
	}
	return res
}

func op(t *testing.T, res *loadgen.Result, name string) loadgen.OpStats {
	t.Helper()
	s, ok := res.Op(name)
	if !ok {
		t.Fatalf("%s result has no %q row: %+v", res.Workload, name, res.Ops)
	}
	return s
}

func TestRunStopsAfterOpsAndCountsEachCycle(t *testing.T) {
	m := newMem()
	res := run(t, m, loadgen.Config{Workload: loadgen.Uncontended, Clients: 4, Ops: 200, TTL: time.Second})
	cycles, acq, rel := op(t, res, "cycle"), op(t, res, "acquire"), op(t, res, "release")
	if cycles.Count < 200 || cycles.Count > 200+4 {
		t.Errorf("cycles = %d, want 200 plus at most one in flight per client", cycles.Count)
	}
	if acq.Count != cycles.Count || rel.Count != cycles.Count {
		t.Errorf("acquires %d, releases %d, cycles %d: want all equal", acq.Count, rel.Count, cycles.Count)
	}
	if res.Errors != 0 || res.Unit != "cycles/s" || res.Throughput <= 0 || res.System != "mem" {
		t.Errorf("result = %+v, want 0 errors, a positive cycles/s rate, system mem", res)
	}
	if got := m.closed.Load(); got != 4 {
		t.Errorf("sessions closed = %d, want 4", got)
	}
}

func TestRunCountsErrorsAndKeepsTheirMessages(t *testing.T) {
	m := newMem()
	m.putFails.Store(5)
	res := run(t, m, loadgen.Config{Workload: loadgen.Mixed, Clients: 2, Ops: 100, TTL: time.Second})
	if put := op(t, res, "put"); put.Errors != 5 || res.Errors != 5 {
		t.Errorf("put errors %d, all errors %d: want 5 and 5", put.Errors, res.Errors)
	}
	if len(res.ErrorSamples) != 1 || res.ErrorSamples[0] != "put: disk on fire" {
		t.Errorf("error samples = %q, want [put: disk on fire]", res.ErrorSamples)
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil || !strings.Contains(b.String(), "error: put: disk on fire") {
		t.Errorf("table = %q, %v; want it to show the error", b.String(), err)
	}
}

// A cycle whose release failed is not a cycle: the headline rate counts only whole ones, as the cycle
// row does.
func TestRunCountsOnlyWholeCycles(t *testing.T) {
	m := newMem()
	m.relFails.Store(5)
	res := run(t, m, loadgen.Config{Workload: loadgen.Uncontended, Clients: 1, Ops: 20, TTL: time.Second})
	cycles, acq, rel := op(t, res, "cycle"), op(t, res, "acquire"), op(t, res, "release")
	if cycles.Count != 20 || acq.Count != 25 || rel.Errors != 5 {
		t.Errorf("cycles %d, acquires %d, release errors %d: want 20, 25, 5", cycles.Count, acq.Count, rel.Errors)
	}
	if got := res.Throughput * res.Elapsed.Seconds(); got < 19.5 || got > 20.5 {
		t.Errorf("throughput x elapsed = %.2f cycles, want the 20 whole cycles", got)
	}
}

func TestRunContendedHandsOneLockOver(t *testing.T) {
	m := newMem()
	res := run(t, m, loadgen.Config{Workload: loadgen.Contended, Clients: 8, Ops: 300, TTL: time.Second,
		Hold: 100 * time.Microsecond})
	if got := op(t, res, "acquire").Count; got < 300 {
		t.Errorf("handoffs = %d, want at least 300", got)
	}
	if n := m.overlaps.Load(); n != 0 {
		t.Errorf("the shared lock had two holders %d times; the workload must use one lock", n)
	}
	if res.Unit != "handoffs/s" {
		t.Errorf("unit = %q, want handoffs/s", res.Unit)
	}
}

func TestRunRejectsABadConfigNamingTheField(t *testing.T) {
	good := loadgen.Config{Workload: loadgen.Query, Clients: 1, Ops: 1, TTL: time.Second}
	tests := []struct {
		name string
		edit func(*loadgen.Config)
		want string
	}{
		{"unknown workload", func(c *loadgen.Config) { c.Workload = "chaos" }, `workload "chaos"`},
		{"no clients", func(c *loadgen.Config) { c.Clients = 0 }, "clients 0"},
		{"too many clients", func(c *loadgen.Config) { c.Clients = loadgen.ClientsMax + 1 }, "clients 100001"},
		{"no bound", func(c *loadgen.Config) { c.Ops = 0 }, "set at least one"},
		{"short ttl", func(c *loadgen.Config) { c.TTL = time.Millisecond }, "ttl 1ms"},
		{"hold past ttl", func(c *loadgen.Config) { c.Hold = 2 * time.Second }, "hold 2s"},
		{"huge payload", func(c *loadgen.Config) { c.PayloadSize = 1 << 30 }, "payload size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := loadgen.Run(t.Context(), newMem(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDlockWorkloads runs every workload against a real 3-node cluster: each must complete its
// operations without an error.
func TestDlockWorkloads(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	c.WaitLeader(10 * time.Second)
	sys := loadgen.NewDlock(c.Endpoints())
	for _, w := range loadgen.Workloads {
		t.Run(string(w), func(t *testing.T) {
			res := run(t, sys, loadgen.Config{Workload: w, Clients: 4, Ops: 40, TTL: 10 * time.Second,
				PayloadSize: 64})
			if res.Errors != 0 || res.Throughput <= 0 {
				var b strings.Builder
				_ = res.WriteTable(&b)
				t.Errorf("%s: %d errors, %.1f %s; want none and a positive rate\n%s", w, res.Errors,
					res.Throughput, res.Unit, b.String())
			}
		})
	}
}

// Fill acquires a new lock each time and releases none, so every acquire it counts is a lock still
// held at the end.
func TestFillKeepsEveryLockItAcquires(t *testing.T) {
	m := newMem()
	res := run(t, m, loadgen.Config{Workload: loadgen.Fill, Clients: 3, Ops: 30, TTL: time.Second})
	acq := op(t, res, "acquire")
	m.mu.Lock()
	held := 0
	for _, ch := range m.locks {
		held += len(ch)
	}
	m.mu.Unlock()
	if res.Errors != 0 || res.Unit != "acquires/s" || acq.Count < 30 || held != acq.Count {
		t.Errorf("fill: %d errors, unit %q, %d acquires, %d locks held at the end; want 0 errors, acquires/s, "+
			"at least 30 acquires, each a lock still held", res.Errors, res.Unit, acq.Count, held)
	}
}
