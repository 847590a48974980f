package observe

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/dlock-raft/dlock/internal/node"
)

// Metrics holds one node's Prometheus metrics in a registry of its own (never
// the process-global one), so several nodes in one process do not collide.
// It implements node.Observer and server.Observer; its methods are safe for
// concurrent use and do not allocate on the success path of a call.
// docs/observability.md lists every metric.
type Metrics struct {
	reg *prometheus.Registry

	rpcs     *prometheus.CounterVec
	rpcTimes *prometheus.HistogramVec
	// okRPC caches the label children of successful calls per method, so
	// the common case costs a read-locked map lookup and no allocation.
	okMu  sync.RWMutex
	okRPC map[string]rpcChildren

	grants, releases, expiries, renewals prometheus.Counter
	leaderChanges                        prometheus.Counter
	batchCommands, batchProposals        prometheus.Histogram
	commitTimes                          *prometheus.HistogramVec
	commitOK, commitFailed               prometheus.Observer
	snapshotTimes                        *prometheus.HistogramVec
	snapshotCapture, snapshotPersist     prometheus.Observer
	snapshotRestore                      prometheus.Observer
	snapshotBytes                        prometheus.Gauge
}

type rpcChildren struct {
	count prometheus.Counter
	time  prometheus.Observer
}

// Buckets of the latency histograms, in seconds: from 0.5 ms (a read on the
// leader) to 10 s (a write that waited out an election), roughly doubling.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics returns the metrics of one node whose state gauges reads: Go
// runtime and process collectors, the node's Raft and lock gauges, and the
// counters and histograms its Observer methods feed.
func NewMetrics(gauges func() node.Gauges) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), okRPC: make(map[string]rpcChildren)}
	m.rpcs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dlock_rpc_requests_total",
		Help: "Client gRPC calls served by this node, by service, method, gRPC code and dlock reason (empty unless a dlock error).",
	}, []string{"service", "method", "code", "reason"})
	m.rpcTimes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dlock_rpc_request_duration_seconds",
		Help:    "Time from a client call's arrival to its answer, by service, method and gRPC code. Acquire includes its wait in the lock's queue.",
		Buckets: latencyBuckets,
	}, []string{"service", "method", "code"})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m.grants = counter("dlock_lock_grants_total", "Holds granted, by an acquire or by handing a released lock to the next waiter, as applied on this node.")
	m.releases = counter("dlock_lock_releases_total", "Holds ended by their owner (release, or a withdrawn acquire), as applied on this node.")
	m.expiries = counter("dlock_lock_expiries_total", "Holds ended because their lease ran out, as applied on this node.")
	m.renewals = counter("dlock_lock_renewals_total", "Leases renewed by their holder, as applied on this node.")
	m.leaderChanges = counter("dlock_raft_leader_changes_total", "Times this node learned of a new leader (an election or a transfer), the first one included.")
	m.batchCommands = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dlock_raft_apply_batch_commands",
		Help:    "Commands per Raft entry this node proposed as leader (requests batched into one entry).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1..512, the batch cap
	})
	m.batchProposals = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dlock_raft_apply_batch_proposals",
		Help:    "Proposals (client requests or leader duties) per Raft entry this node proposed as leader.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.commitTimes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dlock_raft_apply_duration_seconds",
		Help:    "Time from handing an entry to Raft until it was applied on this leader (replication, fsync on a majority, apply), by result (ok or error).",
		Buckets: latencyBuckets,
	}, []string{"result"})
	m.commitOK, m.commitFailed = m.commitTimes.WithLabelValues("ok"), m.commitTimes.WithLabelValues("error")
	m.snapshotTimes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dlock_raft_snapshot_duration_seconds",
		Help:    "Time of snapshot steps on this node, by op: capture (copy the state), persist (write it to disk), restore (replace the state with a snapshot).",
		Buckets: prometheus.ExponentialBuckets(.0001, 4, 10), // 0.1 ms .. 26 s
	}, []string{"op"})
	m.snapshotCapture = m.snapshotTimes.WithLabelValues("capture")
	m.snapshotPersist = m.snapshotTimes.WithLabelValues("persist")
	m.snapshotRestore = m.snapshotTimes.WithLabelValues("restore")
	m.snapshotBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dlock_raft_snapshot_size_bytes", Help: "Size of the last snapshot this node wrote.",
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rpcs, m.rpcTimes, m.grants, m.releases, m.expiries, m.renewals, m.leaderChanges,
		m.batchCommands, m.batchProposals, m.commitTimes, m.snapshotTimes, m.snapshotBytes,
		newGaugeCollector(gauges),
	)
	return m
}

// Registry is the node's registry, for /metrics (and for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// RPC implements server.Observer.
func (m *Metrics) RPC(fullMethod string, code codes.Code, reason string, d time.Duration) {
	if code == codes.OK {
		c := m.okChildren(fullMethod)
		c.count.Inc()
		c.time.Observe(d.Seconds())
		return
	}
	service, method := splitMethod(fullMethod)
	cs := code.String()
	m.rpcs.WithLabelValues(service, method, cs, reason).Inc()
	m.rpcTimes.WithLabelValues(service, method, cs).Observe(d.Seconds())
}

func (m *Metrics) okChildren(fullMethod string) rpcChildren {
	m.okMu.RLock()
	c, ok := m.okRPC[fullMethod]
	m.okMu.RUnlock()
	if ok {
		return c
	}
	service, method := splitMethod(fullMethod)
	c = rpcChildren{
		count: m.rpcs.WithLabelValues(service, method, "OK", ""),
		time:  m.rpcTimes.WithLabelValues(service, method, "OK"),
	}
	m.okMu.Lock()
	// The methods are those the server registered: the map stays small.
	m.okRPC[fullMethod] = c
	m.okMu.Unlock()
	return c
}

// splitMethod splits "/dlock.v1.Lock/Acquire" into "dlock.v1.Lock" and "Acquire".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

// Batched implements node.Observer.
func (m *Metrics) Batched(proposals, commands int) {
	m.batchProposals.Observe(float64(proposals))
	m.batchCommands.Observe(float64(commands))
}

// Committed implements node.Observer.
func (m *Metrics) Committed(d time.Duration, err error) {
	if err != nil {
		m.commitFailed.Observe(d.Seconds())
		return
	}
	m.commitOK.Observe(d.Seconds())
}

// Applied implements node.Observer.
func (m *Metrics) Applied(grants, releases, expiries, renewals int) {
	m.grants.Add(float64(grants))
	m.releases.Add(float64(releases))
	m.expiries.Add(float64(expiries))
	m.renewals.Add(float64(renewals))
}

// Snapshot implements node.Observer.
func (m *Metrics) Snapshot(op string, d time.Duration, bytes int) {
	switch op {
	case "capture":
		m.snapshotCapture.Observe(d.Seconds())
	case "persist":
		m.snapshotPersist.Observe(d.Seconds())
		m.snapshotBytes.Set(float64(bytes))
	case "restore":
		m.snapshotRestore.Observe(d.Seconds())
	}
}

// LeaderChanged implements node.Observer.
func (m *Metrics) LeaderChanged() { m.leaderChanges.Inc() }

// gaugeCollector reads the node's state once per scrape.
type gaugeCollector struct {
	read func() node.Gauges

	state, leader, hasLeader, term, commit, applied, last, ready *prometheus.Desc
	locks, held, waiters, keys, clients                          *prometheus.Desc
}

// raftStates are the values of the state label of dlock_raft_state.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

func newGaugeCollector(read func() node.Gauges) *gaugeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &gaugeCollector{
		read:      read,
		state:     d("dlock_raft_state", "1 for this node's Raft state (Follower, Candidate, Leader, Shutdown), 0 for the others.", "state"),
		leader:    d("dlock_raft_leader_id", "The id of the leader this node knows, 0 if none."),
		hasLeader: d("dlock_raft_has_leader", "1 if this node knows a leader, else 0."),
		term:      d("dlock_raft_term", "This node's current Raft term."),
		commit:    d("dlock_raft_commit_index", "The highest log index this node knows to be committed."),
		applied:   d("dlock_raft_applied_index", "The highest log index this node's state machine has applied."),
		last:      d("dlock_raft_last_index", "The highest index in this node's Raft log (or its last snapshot)."),
		ready:     d("dlock_ready", "1 if this node is ready to serve clients (what /readyz and the gRPC health service report), else 0."),
		locks:     d("dlock_locks", "Lock records kept (held or not), as applied on this node."),
		held:      d("dlock_locks_held", "Locks held (including leases that ran out and are not yet expired), as applied on this node."),
		waiters:   d("dlock_lock_waiters", "Acquires waiting in lock queues, as applied on this node."),
		keys:      d("dlock_kv_keys", "Keys in the KV store, as applied on this node."),
		clients:   d("dlock_dedup_clients", "Clients whose recent results are remembered for retries, as applied on this node."),
	}
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.leader, c.hasLeader, c.term, c.commit, c.applied, c.last, c.ready,
		c.locks, c.held, c.waiters, c.keys, c.clients} {
		ch <- d
	}
}

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.read()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range raftStates {
		gauge(c.state, b2f(g.State == s), s)
	}
	gauge(c.leader, float64(g.LeaderID))
	gauge(c.hasLeader, b2f(g.LeaderID != 0))
	gauge(c.term, float64(g.Term))
	gauge(c.commit, float64(g.CommitIndex))
	gauge(c.applied, float64(g.AppliedIndex))
	gauge(c.last, float64(g.LastIndex))
	gauge(c.ready, b2f(g.Ready))
	gauge(c.locks, float64(g.Locks))
	gauge(c.held, float64(g.Held))
	gauge(c.waiters, float64(g.Waiters))
	gauge(c.keys, float64(g.Keys))
	gauge(c.clients, float64(g.Clients))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
