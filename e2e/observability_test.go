package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/faultnet"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// observedCluster starts n `dlock serve` processes with
// observability.metrics_address on a free port of each node's host, shaped
// further by edit, and returns the cluster and each node's metrics address.
func observedCluster(t *testing.T, n int, fabric *faultnet.Fabric, edit func(*config.Config)) (*testcluster.Cluster, map[int]string) {
	t.Helper()
	addrs := map[int]string{}
	c := testcluster.StartOpts(t, n, testcluster.Options{Fabric: fabric, Edit: func(cfg *config.Config) {
		host, _, _ := net.SplitHostPort(cfg.Network.SelfAddress)
		addrs[int(cfg.ID.SelfID)] = freeHostPort(t, host)
		cfg.Observability.MetricsAddress = addrs[int(cfg.ID.SelfID)]
		if edit != nil {
			edit(cfg)
		}
	}})
	return c, addrs
}

func freeHostPort(t *testing.T, host string) string {
	t.Helper()
	return freeport.Addr(t, host)
}

// metrics is one scrape: every sample by its name and labels as the
// exposition writes them, e.g. `dlock_lock_grants_total` or
// `dlock_raft_state{state="Leader"}`.
type metrics map[string]float64

func scrape(t *testing.T, addr string) metrics {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: sample %q: %v", addr, line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// sum adds the samples of name whose labels contain every one of labels
// (each written as in the exposition, e.g. `method="Acquire"`).
func (m metrics) sum(name string, labels ...string) float64 {
	total := 0.0
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if match {
			total += v
		}
	}
	return total
}

// waitMetric scrapes addr until cond holds for name's sum over labels, and
// fails the test after 20 s.
func waitMetric(t *testing.T, addr, what string, cond func(v float64) bool, name string, labels ...string) metrics {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, addr)
		if v := m.sum(name, labels...); cond(v) {
			return m
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v after 20s", what, name, labels, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A scrape of a real cluster during a real workload shows it: N acquires,
// renewals and releases through the leader move its grant, renewal,
// release and call counters by N, and the call histograms count every
// call; an expiry, the queue of a held lock, snapshots and a leadership
// transfer show as well. Followers apply the same entries, so their lock
// counters follow the leader's.
func TestMetricsFollowAWorkload(t *testing.T) {
	c, addrs := observedCluster(t, 3, nil, func(cfg *config.Config) {
		cfg.Observability.PProf = true
		// Snapshot often, so that one is taken during the test.
		cfg.Parameters.SnapshotInterval = config.Millis(50 * time.Millisecond)
		cfg.Parameters.SnapshotThreshold = 16
	})
	leader := c.WaitLeader(30 * time.Second)
	follower := leader%3 + 1
	conn := dial(t, c.Nodes[leader-1].ClientAddr)
	locks := dlockv1.NewLockClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := scrape(t, addrs[leader])
	beforeFollower := scrape(t, addrs[follower])

	const n = 20
	lockWorkload(ctx, t, locks, n)
	after := waitMetric(t, addrs[leader], "the expiry", func(v float64) bool { return v >= before.sum("dlock_lock_expiries_total")+1 },
		"dlock_lock_expiries_total")
	checkWorkloadCounters(t, before, after, n)
	if after["dlock_raft_leader_id"] != float64(leader) || after["dlock_raft_applied_index"] < 3*n {
		t.Errorf("leader sees leader %v, applied index %v; want %d and at least %d", after["dlock_raft_leader_id"], after["dlock_raft_applied_index"], leader, 3*n)
	}
	// The follower applied the same grants; it served none of the calls.
	f := waitMetric(t, addrs[follower], "the follower's grants", func(v float64) bool { return v == beforeFollower.sum("dlock_lock_grants_total")+n+1 },
		"dlock_lock_grants_total")
	if got := f.sum("dlock_rpc_requests_total", `method="Acquire"`) - beforeFollower.sum("dlock_rpc_requests_total", `method="Acquire"`); got != 0 {
		t.Errorf("follower served %v acquires, want 0", got)
	}
	if f[`dlock_raft_state{state="Follower"}`] != 1 {
		t.Errorf(`follower dlock_raft_state{state="Follower"} = %v, want 1`, f[`dlock_raft_state{state="Follower"}`])
	}
	waitMetric(t, addrs[leader], "a snapshot", func(v float64) bool { return v >= 1 },
		"dlock_raft_snapshot_duration_seconds_count", `op="persist"`)

	checkQueueGauges(ctx, t, locks, addrs[leader])
	checkLeaderChange(ctx, t, c, addrs)
	if code := waitHTTPStatus(t, "http://"+addrs[leader]+"/debug/pprof/", 200, 5*time.Second); code != 200 {
		t.Errorf("pprof on: GET /debug/pprof/ = %d, want 200", code)
	}
}

// lockWorkload acquires, renews and releases n locks, has one release
// refused, and takes one lock with a 200 ms lease that nobody renews.
func lockWorkload(ctx context.Context, t *testing.T, locks dlockv1.LockClient, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("metrics-%d", i)
		got, err := locks.Acquire(ctx, &dlockv1.AcquireRequest{Name: name, Owner: "o", TtlMs: 60_000})
		if err != nil {
			t.Fatalf("acquire %s: %v", name, err)
		}
		if _, err := locks.Renew(ctx, &dlockv1.RenewRequest{Name: name, Owner: "o", Token: got.Token}); err != nil {
			t.Fatalf("renew %s: %v", name, err)
		}
		if _, err := locks.Release(ctx, &dlockv1.ReleaseRequest{Name: name, Owner: "o", Token: got.Token}); err != nil {
			t.Fatalf("release %s: %v", name, err)
		}
	}
	// A release of a lock nobody holds is refused: FailedPrecondition, NOT_HELD.
	_, err := locks.Release(ctx, &dlockv1.ReleaseRequest{Name: "metrics-0", Owner: "o"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("release of a free lock: %v, want FailedPrecondition", err)
	}
	if _, err := locks.Acquire(ctx, &dlockv1.AcquireRequest{Name: "metrics-expire", Owner: "o", TtlMs: 200}); err != nil {
		t.Fatal(err)
	}
}

// checkWorkloadCounters checks what lockWorkload(n) did to the counters of
// the leader that served it, from scrape before to scrape after.
func checkWorkloadCounters(t *testing.T, before, after metrics, n int) {
	t.Helper()
	acquire := []string{`service="dlock.v1.Lock"`, `method="Acquire"`, `code="OK"`}
	checks := []struct {
		what      string
		name      string
		labels    []string
		wantDelta float64
	}{
		{"grants", "dlock_lock_grants_total", nil, float64(n + 1)},
		{"renewals", "dlock_lock_renewals_total", nil, float64(n)},
		{"releases", "dlock_lock_releases_total", nil, float64(n)},
		{"expiries", "dlock_lock_expiries_total", nil, 1},
		{"acquire calls", "dlock_rpc_requests_total", acquire, float64(n + 1)},
		{"acquire latencies", "dlock_rpc_request_duration_seconds_count", acquire, float64(n + 1)},
		{"renew calls", "dlock_rpc_requests_total", []string{`method="Renew"`, `code="OK"`}, float64(n)},
		{"release calls", "dlock_rpc_requests_total", []string{`method="Release"`, `code="OK"`}, float64(n)},
		{"refused releases", "dlock_rpc_requests_total", []string{`method="Release"`, `code="FailedPrecondition"`, `reason="NOT_HELD"`}, 1},
		{"refused release latencies", "dlock_rpc_request_duration_seconds_count", []string{`method="Release"`, `code="FailedPrecondition"`}, 1},
	}
	for _, ck := range checks {
		if got := after.sum(ck.name, ck.labels...) - before.sum(ck.name, ck.labels...); got != ck.wantDelta {
			t.Errorf("leader %s: %s%v rose by %v, want %v", ck.what, ck.name, ck.labels, got, ck.wantDelta)
		}
	}
	if got := after.sum("dlock_raft_apply_batch_commands_count") - before.sum("dlock_raft_apply_batch_commands_count"); got < 1 {
		t.Errorf("leader proposed no batch during the workload (dlock_raft_apply_batch_commands_count rose by %v)", got)
	}
	for _, s := range []string{`dlock_raft_state{state="Leader"}`, "dlock_raft_has_leader", "dlock_ready"} {
		if after[s] != 1 {
			t.Errorf("leader %s = %v, want 1", s, after[s])
		}
	}
}

// checkQueueGauges holds a lock with a waiter queued behind it and checks the
// gauges count both, and neither once both are released.
func checkQueueGauges(ctx context.Context, t *testing.T, locks dlockv1.LockClient, addr string) {
	t.Helper()
	held, err := locks.Acquire(ctx, &dlockv1.AcquireRequest{Name: "metrics-queue", Owner: "first", TtlMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		got, err := locks.Acquire(ctx, &dlockv1.AcquireRequest{Name: "metrics-queue", Owner: "second", TtlMs: 60_000, WaitMs: 30_000})
		if err == nil {
			_, err = locks.Release(ctx, &dlockv1.ReleaseRequest{Name: "metrics-queue", Owner: "second", Token: got.Token})
		}
		waited <- err
	}()
	m := waitMetric(t, addr, "a queued waiter", func(v float64) bool { return v == 1 }, "dlock_lock_waiters")
	if m["dlock_locks_held"] != 1 {
		t.Errorf("dlock_locks_held = %v with one lock held, want 1", m["dlock_locks_held"])
	}
	if _, err := locks.Release(ctx, &dlockv1.ReleaseRequest{Name: "metrics-queue", Owner: "first", Token: held.Token}); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("the waiter: %v", err)
	}
	m = waitMetric(t, addr, "all released", func(v float64) bool { return v == 0 }, "dlock_locks_held")
	if m["dlock_lock_waiters"] != 0 {
		t.Errorf("dlock_lock_waiters = %v with no lock held, want 0", m["dlock_lock_waiters"])
	}
}

// checkLeaderChange transfers leadership and checks that every node counts
// the new leader and that the new leader reports itself as such.
func checkLeaderChange(ctx context.Context, t *testing.T, c *testcluster.Cluster, addrs map[int]string) {
	t.Helper()
	before := map[int]float64{}
	for id, addr := range addrs {
		before[id] = scrape(t, addr).sum("dlock_raft_leader_changes_total")
	}
	old := c.WaitLeader(30 * time.Second)
	resp, err := dlockv1.NewClusterClient(dial(t, c.Nodes[old-1].ClientAddr)).TransferLeader(ctx, &dlockv1.TransferLeaderRequest{})
	if err != nil {
		t.Fatalf("transfer leadership from node %d: %v", old, err)
	}
	next := int(resp.LeaderId)
	for id, addr := range addrs {
		waitMetric(t, addr, fmt.Sprintf("node %d's leader changes", id), func(v float64) bool { return v >= before[id]+1 },
			"dlock_raft_leader_changes_total")
	}
	waitMetric(t, addrs[next], "the new leader's state", func(v float64) bool { return v == 1 }, "dlock_raft_state", `state="Leader"`)
	waitMetric(t, addrs[old], "the old leader's state", func(v float64) bool { return v == 1 }, "dlock_raft_state", `state="Follower"`)
}

// healthStatus asks the node at addr's gRPC health service about the whole
// server.
func healthStatus(ctx context.Context, conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return resp.GetStatus(), err
}

// waitHealth polls the health service until it answers want, failing the
// test after 20 s.
func waitHealth(t *testing.T, conn *grpc.ClientConn, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := healthStatus(context.Background(), conn)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gRPC health = %v, %v after 20s; want %v", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node cut off from its peers has no leader: /readyz turns 503 with the
// reason and the gRPC health service NOT_SERVING, while /healthz stays 200
// (the process is alive); healed, it is ready again. `dlock health` exits
// 1 and 0 accordingly.
func TestReadinessFollowsIsolation(t *testing.T) {
	fabric := faultnet.New(1)
	t.Cleanup(fabric.Close)
	c, addrs := observedCluster(t, 3, fabric, nil)
	leader := c.WaitLeader(30 * time.Second)
	cut := leader%3 + 1
	var others []int
	for id := 1; id <= 3; id++ {
		if id != cut {
			others = append(others, id)
		}
	}
	conn := dial(t, c.Nodes[cut-1].ClientAddr)
	readyz := "http://" + addrs[cut] + "/readyz"
	if code := waitHTTPStatus(t, readyz, 200, 20*time.Second); code != 200 {
		t.Fatalf("node %d /readyz = %d before the cut, want 200", cut, code)
	}
	waitHealth(t, conn, healthpb.HealthCheckResponse_SERVING)

	fabric.Isolate(cut, others...)
	if code := waitHTTPStatus(t, readyz, 503, 20*time.Second); code != 503 {
		t.Fatalf("node %d /readyz = %d while cut off, want 503", cut, code)
	}
	code, body := httpGet(t, readyz)
	t.Logf("node %d cut off: /readyz %d %q", cut, code, body)
	if code != 503 || !strings.HasPrefix(body, "not ready: ") || strings.Contains(body, "\n") {
		t.Errorf("node %d /readyz while cut off = %d %q, want 503 and one line \"not ready: REASON\"", cut, code, body)
	}
	waitHealth(t, conn, healthpb.HealthCheckResponse_NOT_SERVING)
	if code, _ := httpGet(t, "http://"+addrs[cut]+"/healthz"); code != 200 {
		t.Errorf("node %d /healthz while cut off = %d, want 200", cut, code)
	}
	if m := scrape(t, addrs[cut]); m["dlock_ready"] != 0 {
		t.Errorf("node %d dlock_ready while cut off = %v, want 0", cut, m["dlock_ready"])
	}
	out, errOut, exit := dlockCmd(t, "", "health", "--endpoint", c.Nodes[cut-1].ClientAddr)
	if exit != 1 || !strings.Contains(errOut, "NOT_SERVING") {
		t.Errorf("dlock health while cut off: exit %d, %q %q; want exit 1 naming NOT_SERVING", exit, out, errOut)
	}
	// The majority keeps its leader and stays ready.
	for _, id := range others {
		if code := waitHTTPStatus(t, "http://"+addrs[id]+"/readyz", 200, 20*time.Second); code != 200 {
			t.Errorf("node %d of the majority: /readyz = %d, want 200", id, code)
		}
	}

	fabric.Heal()
	if code := waitHTTPStatus(t, readyz, 200, 20*time.Second); code != 200 {
		t.Fatalf("node %d /readyz = %d after healing, want 200", cut, code)
	}
	waitHealth(t, conn, healthpb.HealthCheckResponse_SERVING)
	for _, args := range [][]string{
		{"health", "--endpoint", c.Nodes[cut-1].ClientAddr},
		{"health", "--http", readyz},
	} {
		if out, errOut, exit := dlockCmd(t, "", args...); exit != 0 {
			t.Errorf("dlock %v after healing: exit %d, %q %q; want 0", args, exit, out, errOut)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func httpPut(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// logLine is the part of a JSON log line the test reads: slog's keys, and
// hashicorp/raft's.
type logLine struct {
	Msg       string `json:"msg"`
	Level     string `json:"level"`
	Lock      string `json:"lock"`
	RaftLevel string `json:"@level"`
}

// readLog reads node id's JSON log, failing the test on a line that is not
// JSON, and returns its lines from byte offset from on, and its length.
func readLog(t *testing.T, c *testcluster.Cluster, id int, from int) ([]logLine, string, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.Nodes[id-1].Dir, "dlock.log"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []logLine
	for _, raw := range strings.Split(string(data[from:]), "\n") {
		if raw == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log_format json, but a line is not JSON: %q: %v", raw, err)
		}
		lines = append(lines, l)
	}
	return lines, string(data), len(data)
}

// The log level changes at run time through PUT /loglevel: debug lines
// (lease expiries, calls) appear after it is set to Debug and stop once it
// is set back to Info. Every line is JSON (observability.log_format), and no
// line ever carries a KV value. Without observability.pprof, /debug/pprof/
// is not there.
func TestLogLevelAtRunTimeAndNoSecrets(t *testing.T) {
	c, addrs := observedCluster(t, 1, nil, func(cfg *config.Config) {
		cfg.Storage.LogLevel = "Info"
		cfg.Observability.LogFormat = config.LogFormatJSON
	})
	c.WaitLeader(30 * time.Second)
	base := "http://" + addrs[1]
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof off: GET /debug/pprof/ = %d, want 404", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &secretWorkload{t: t, ctx: ctx, conn: dial(t, c.Nodes[0].ClientAddr), metrics: addrs[1]}
	step := w.step

	step("at-info")
	lines, _, _ := readLog(t, c, 1, 0)
	if expired(lines, "at-info") || debugLines(lines) > 0 {
		t.Errorf("at Info: %d debug lines, expiry logged %v; want none", debugLines(lines), expired(lines, "at-info"))
	}

	if code, body := httpPut(t, base+"/loglevel", "Debug"); code != 200 || body != "Debug" {
		t.Fatalf("PUT /loglevel Debug = %d %q", code, body)
	}
	_, _, mark := readLog(t, c, 1, 0)
	step("at-debug")
	lines, _, _ = readLog(t, c, 1, mark)
	if !expired(lines, "at-debug") || debugLines(lines) == 0 {
		t.Errorf("at Debug: %d debug lines, expiry logged %v; want some, and the expiry", debugLines(lines), expired(lines, "at-debug"))
	}

	if code, body := httpPut(t, base+"/loglevel", "Info"); code != 200 || body != "Info" {
		t.Fatalf("PUT /loglevel Info = %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/loglevel"); code != 200 || body != "Info" {
		t.Errorf("GET /loglevel = %d %q, want 200 Info", code, body)
	}
	_, _, mark = readLog(t, c, 1, 0)
	step("back-at-info")
	lines, all, _ := readLog(t, c, 1, mark)
	if expired(lines, "back-at-info") || debugLines(lines) > 0 {
		t.Errorf("back at Info: %d debug lines, expiry logged %v; want none", debugLines(lines), expired(lines, "back-at-info"))
	}
	for _, s := range w.secrets {
		if strings.Contains(all, s) {
			t.Errorf("the log holds the KV value %q", s)
		}
	}
}

// secretWorkload writes KV values that must never be logged and lets
// leases run out, one step at a time.
type secretWorkload struct {
	t        *testing.T
	ctx      context.Context
	conn     *grpc.ClientConn
	metrics  string // the node's metrics address
	secrets  []string
	expiries float64
}

// step writes a secret value and reads it back, lets the lease of lock
// name run out, and waits until the node has applied the expiry.
func (w *secretWorkload) step(name string) {
	w.t.Helper()
	kv, locks := dlockv1.NewKVClient(w.conn), dlockv1.NewLockClient(w.conn)
	secret := fmt.Sprintf("s3cret-value-of-%s-%d", name, time.Now().UnixNano())
	w.secrets = append(w.secrets, secret)
	if _, err := kv.Put(w.ctx, &dlockv1.PutRequest{Key: "key-" + name, Value: []byte(secret)}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := kv.Get(w.ctx, &dlockv1.GetRequest{Key: "key-" + name}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := locks.Acquire(w.ctx, &dlockv1.AcquireRequest{Name: name, Owner: "o", TtlMs: 100}); err != nil {
		w.t.Fatal(err)
	}
	w.expiries++
	waitMetric(w.t, w.metrics, "the expiry of "+name, func(v float64) bool { return v >= w.expiries }, "dlock_lock_expiries_total")
}

// expired reports whether lines log the expiry of lock name.
func expired(lines []logLine, name string) bool {
	for _, l := range lines {
		if l.Msg == "lease expired" && l.Lock == name {
			return true
		}
	}
	return false
}

// debugLines counts the debug (and raft trace) lines among lines.
func debugLines(lines []logLine) int {
	n := 0
	for _, l := range lines {
		if l.Level == "DEBUG" || l.RaftLevel == "debug" || l.RaftLevel == "trace" {
			n++
		}
	}
	return n
}
