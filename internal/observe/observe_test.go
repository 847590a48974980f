package observe

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/dlock-raft/dlock/internal/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func fakeGauges() node.Gauges {
	return node.Gauges{State: "Leader", LeaderID: 2, Term: 3, CommitIndex: 10, AppliedIndex: 9, Ready: true, Held: 4, Waiters: 5}
}

// startHTTP serves an endpoint on a free loopback port until the test ends.
func startHTTP(t *testing.T, opts HTTPOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(fakeGauges)
	}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := StartHTTP(ln, opts)
	t.Cleanup(func() {
		if err := h.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return "http://" + h.Addr()
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// /healthz answers 200 while the process runs; /readyz follows the node's readiness, with the
// reason in one line when not ready.
func TestHealthAndReadiness(t *testing.T) {
	var ready atomic.Bool
	base := startHTTP(t, HTTPOptions{Ready: func() (bool, string) {
		if ready.Load() {
			return true, ""
		}
		return false, "no known leader"
	}})
	tests := []struct {
		name     string
		ready    bool
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz while not ready", false, "/healthz", 200, "ok"},
		{"readyz while not ready", false, "/readyz", 503, "not ready: no known leader"},
		{"readyz once ready", true, "/readyz", 200, "ready"},
		{"healthz once ready", true, "/healthz", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			code, body := do(t, "GET", base+tt.path, "")
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

// PUT /loglevel changes the level at run time, by the seed's names; a bad name changes nothing.
func TestLogLevelChangesAtRunTime(t *testing.T) {
	level := new(slog.LevelVar)
	var told atomic.Int64
	base := startHTTP(t, HTTPOptions{Ready: func() (bool, string) { return true, "" }, Level: level,
		OnLevel: func(l slog.Level) { told.Store(int64(l)) }})
	tests := []struct {
		name      string
		method    string
		body      string
		wantCode  int
		wantBody  string
		wantLevel slog.Level
	}{
		{"read the starting level", "GET", "", 200, "Info", slog.LevelInfo},
		{"set debug, any case", "PUT", "debug\n", 200, "Debug", slog.LevelDebug},
		{"read it back", "GET", "", 200, "Debug", slog.LevelDebug},
		{"set notice", "PUT", "Notice", 200, "Notice", slog.LevelInfo + 2},
		{"set critical", "PUT", "CRITICAL", 200, "Critical", slog.LevelError + 4},
		{"an unknown name changes nothing", "PUT", "verbose", 400, `log level "verbose": want Critical, Error, Warning, Notice, Info or Debug`, slog.LevelError + 4},
		{"an empty body changes nothing", "PUT", "", 400, "empty body; want a level name: Critical, Error, Warning, Notice, Info or Debug", slog.LevelError + 4},
		{"set warning", "PUT", "Warning", 200, "Warning", slog.LevelWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, base+"/loglevel", tt.body)
			if code != tt.wantCode || body != tt.wantBody || level.Level() != tt.wantLevel {
				t.Errorf("%s /loglevel %q = %d %q, level %v; want %d %q, level %v",
					tt.method, tt.body, code, body, level.Level(), tt.wantCode, tt.wantBody, tt.wantLevel)
			}
		})
	}
	if got := slog.Level(told.Load()); got != slog.LevelWarn {
		t.Errorf("OnLevel last told %v, want %v", got, slog.LevelWarn)
	}
}

// pprof is served only when switched on.
func TestPProfBehindItsSwitch(t *testing.T) {
	for _, tt := range []struct {
		pprof    bool
		wantCode int
	}{{false, 404}, {true, 200}} {
		base := startHTTP(t, HTTPOptions{Ready: func() (bool, string) { return true, "" }, PProf: tt.pprof})
		if code, _ := do(t, "GET", base+"/debug/pprof/", ""); code != tt.wantCode {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", tt.pprof, code, tt.wantCode)
		}
	}
}

// /metrics carries the node's gauges, the counters its observers fed, and the Go runtime's.
func TestMetricsExposition(t *testing.T) {
	m := NewMetrics(fakeGauges)
	m.RPC("/dlock.v1.Lock/Acquire", codes.OK, "", 3*time.Millisecond)
	m.RPC("/dlock.v1.Lock/Acquire", codes.OK, "", 4*time.Millisecond)
	m.RPC("/dlock.v1.Lock/Release", codes.FailedPrecondition, "NOT_HELD", time.Millisecond)
	m.Applied(2, 1, 1, 3)
	m.Batched(2, 5)
	m.LeaderChanged()
	m.Snapshot("persist", 10*time.Millisecond, 1234)
	base := startHTTP(t, HTTPOptions{Ready: func() (bool, string) { return true, "" }, Metrics: m})
	code, body := do(t, "GET", base+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`dlock_rpc_requests_total{code="OK",method="Acquire",reason="",service="dlock.v1.Lock"} 2`,
		`dlock_rpc_requests_total{code="FailedPrecondition",method="Release",reason="NOT_HELD",service="dlock.v1.Lock"} 1`,
		`dlock_rpc_request_duration_seconds_count{code="OK",method="Acquire",service="dlock.v1.Lock"} 2`,
		`dlock_lock_grants_total 2`, `dlock_lock_releases_total 1`, `dlock_lock_expiries_total 1`, `dlock_lock_renewals_total 3`,
		`dlock_raft_apply_batch_commands_sum 5`, `dlock_raft_apply_batch_proposals_sum 2`,
		`dlock_raft_leader_changes_total 1`, `dlock_raft_snapshot_size_bytes 1234`,
		`dlock_raft_snapshot_duration_seconds_count{op="persist"} 1`,
		`dlock_raft_state{state="Leader"} 1`, `dlock_raft_state{state="Follower"} 0`,
		`dlock_raft_leader_id 2`, `dlock_raft_has_leader 1`, `dlock_raft_term 3`, `dlock_raft_commit_index 10`,
		`dlock_raft_applied_index 9`, `dlock_ready 1`, `dlock_locks_held 4`, `dlock_lock_waiters 5`,
		`go_goroutines `, `process_cpu_seconds_total `,
	} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestLevelName(t *testing.T) {
	tests := []struct {
		give slog.Level
		want string
	}{
		{slog.LevelDebug, "Debug"}, {slog.LevelDebug - 4, "Debug"}, {slog.LevelInfo, "Info"},
		{slog.LevelInfo + 2, "Notice"}, {slog.LevelWarn, "Warning"}, {slog.LevelError, "Error"},
		{slog.LevelError + 4, "Critical"}, {slog.LevelError + 8, "Critical"},
	}
	for _, tt := range tests {
		if got := LevelName(tt.give); got != tt.want {
			t.Errorf("LevelName(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// The success path of a call allocates nothing: its label children are resolved once.
func TestRPCSuccessDoesNotAllocate(t *testing.T) {
	m := NewMetrics(fakeGauges)
	m.RPC("/dlock.v1.Lock/Acquire", codes.OK, "", time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.RPC("/dlock.v1.Lock/Acquire", codes.OK, "", time.Millisecond)
		m.Applied(1, 1, 0, 0)
		m.Batched(1, 1)
		m.Committed(time.Millisecond, nil)
	}); n != 0 {
		t.Errorf("allocations per successful call = %v, want 0", n)
	}
}

// The cost of measuring one call, one batch and one apply.
func BenchmarkObserveCall(b *testing.B) {
	m := NewMetrics(fakeGauges)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RPC("/dlock.v1.Lock/Acquire", codes.OK, "", time.Millisecond)
			m.Batched(1, 1)
			m.Committed(time.Millisecond, nil)
			m.Applied(1, 0, 0, 0)
		}
	})
}
