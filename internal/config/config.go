package config

import "time"

// Config is one node's configuration: the seed's config.yaml shape plus dlock's additions.
// Build one with Default, Parse or Load; see the package doc for the order of duties.
type Config struct {
	ID         IDConfig      `yaml:"id"`
	Network    NetworkConfig `yaml:"network"`
	Parameters Parameters    `yaml:"parameters"`
	Storage    StorageConfig `yaml:"storage"`
	Limits     Limits        `yaml:"limits"`
	TLS        TLSConfig     `yaml:"tls,omitempty"` // see tls.go
	Auth       AuthConfig    `yaml:"auth,omitempty"`
	// Observability is optional: metrics, health endpoints, pprof, log format (observability.go).
	Observability ObservabilityConfig `yaml:"observability,omitempty"`
}

// IDConfig names the cluster's members. Seed section.
type IDConfig struct {
	// SelfID is this node's Raft server ID, unique in the cluster. 0 is reserved for "unknown" and
	// rejected, as in the seed. Seed key. Default 1.
	SelfID uint32 `yaml:"self_id"`
	// PeerIDs are the IDs of every other node; PeerIDs[i] is reached at Network.PeerAddresses[i] and
	// serves clients at Network.PeerCliAddresses[i]. Each node lists all the others, so the cluster has
	// len(PeerIDs)+1 members, at most 9: Raft replicates every write to every member, and clusters past 7
	// voters only get slower without surviving more failures than operators plan for. Seed key.
	// Default empty (a single-node cluster).
	PeerIDs []uint32 `yaml:"peer_id"`
	// Join makes a node with no Raft state wait to be added to a running cluster (dlock cluster member
	// add) instead of bootstrapping a cluster of its own from the members above, which then only tell it
	// where its peers are. It matters only at a node's first start: once the node has Raft state, the
	// cluster's replicated configuration decides its members. Requires at least one peer. Optional;
	// default false (a new node bootstraps a cluster of PeerIDs and itself, as in the seed).
	Join bool `yaml:"join,omitempty"`
}

// NetworkConfig holds the two planes each node serves: the Raft peer plane and the client gRPC plane.
// Addresses are host:port with a numeric port 1..65535. Seed section.
type NetworkConfig struct {
	// SelfAddress is where this node listens for Raft traffic from its peers. The host may be empty or
	// 0.0.0.0 to listen on every interface, as the seed's Docker files do. Seed key.
	// Default "127.0.0.1:14005".
	SelfAddress string `yaml:"self_address"`
	// SelfCliAddress is where this node listens for client gRPC requests. Seed key.
	// Default "127.0.0.1:24005".
	SelfCliAddress string `yaml:"self_cli_address"`
	// PeerAddresses are the peers' Raft addresses; PeerAddresses[i] belongs to ID.PeerIDs[i]. They must be
	// dialable from this node, so each needs a host. Seed key. Default empty.
	PeerAddresses []string `yaml:"peer_address"`
	// PeerCliAddresses are the peers' client addresses; PeerCliAddresses[i] belongs to ID.PeerIDs[i].
	// Clients are told these addresses (for example when they ask for the cluster's members). Seed key.
	// Default empty.
	PeerCliAddresses []string `yaml:"peer_cli_address"`
	// AdvertiseAddress is how other nodes reach this node's Raft plane, when that differs from
	// SelfAddress (a listen address of 0.0.0.0, NAT, a container name). It must name a dialable host,
	// so 0.0.0.0 and :: are rejected here. Optional; default empty, meaning SelfAddress. The seed's
	// Docker files leave it out and listen on 0.0.0.0: each peer then knows the node by the name in its
	// own peer_address list, and only this node's view of itself carries the unspecified address.
	AdvertiseAddress string `yaml:"advertise_address,omitempty"`
}

// Parameters are the Raft and lock timings. Durations are Millis: an integer of milliseconds (the seed's
// form) or a Go duration string such as "150ms" or "2s". The seed's keys keep their names, and their
// defaults are the seed config.yaml's values; how each maps onto hashicorp/raft is documented on the
// field and in docs/config.md. Seed section.
type Parameters struct {
	// HeartbeatInterval sets how soon a dead leader is noticed: RaftTiming sets HeartbeatTimeout =
	// max(5*HeartbeatInterval, MinWaitTimeCandidate), and hashicorp/raft heartbeats every
	// HeartbeatTimeout/10. Shorter fails over sooner but costs more traffic and risks elections on a
	// loaded network. Seed key. Default 50ms (giving a 250ms heartbeat timeout, a failover under a
	// second); range 1ms..10s.
	HeartbeatInterval Millis `yaml:"heart_beat_interval"`
	// AppendEntriesTimeout is the Raft peer transport's I/O timeout (RaftTiming.TransportTimeout), floored
	// at 1s: a follower on a busy disk may take longer than the seed's 150ms to fsync, and a timeout there
	// would fail replication and restart it from scratch. Seed key. Default 150ms (effective 1s);
	// range 1ms..60s.
	AppendEntriesTimeout Millis `yaml:"append_entries_timeout"`
	// MinWaitTimeCandidate is the shortest time a follower waits without hearing from a leader before it
	// stands for election. It is a floor for RaftTiming.HeartbeatTimeout (see HeartbeatInterval);
	// hashicorp/raft randomizes each wait in [T, 2T] itself. Seed key. Default 150ms; range 1ms..60s.
	MinWaitTimeCandidate Millis `yaml:"min_wait_time_candidate"`
	// MaxWaitTimeCandidate is the longest such wait in the seed. hashicorp/raft picks its own random wait
	// in [T, 2T], so this only has to be at least MinWaitTimeCandidate; it does not change the timing.
	// Seed key. Default 300ms; range MinWaitTimeCandidate..60s.
	MaxWaitTimeCandidate Millis `yaml:"max_wait_time_candidate"`
	// MaxLogUnitsRecover is the most log entries sent in one append (RaftTiming.MaxAppendEntries). Larger
	// batches catch a lagging follower up faster but make each RPC bigger. Seed key. Default 200;
	// range 1..1024 (hashicorp/raft's cap).
	MaxLogUnitsRecover int `yaml:"max_log_units_recover"`
	// LogBackUpInterval is accepted and ignored: the seed flushed entries to disk periodically, but dlock
	// fsyncs every entry on a majority before acknowledging it, so there is nothing to back up later.
	// Seed key. Default 1000ms; must not be negative.
	LogBackUpInterval Millis `yaml:"log_back_up_interval"`
	// PollingInterval is accepted and ignored: seed clients polled for a lock, while dlock waits on the
	// server and answers when the lock is granted. Seed key. Default 20ms; must not be negative.
	PollingInterval Millis `yaml:"polling_interval"`
	// StateChangeTimeout is how long a write waits to be committed before it fails with Unavailable
	// (RaftTiming.ApplyTimeout). Such a write may still commit later; retries are idempotent. Longer rides
	// out a slow election; shorter fails fast to the client. Seed key. Default 2000ms; range 1ms..60s.
	StateChangeTimeout Millis `yaml:"state_change_timeout"`
	// AcquirementExpire is accepted and ignored: the seed expired a pending acquirement after this long,
	// while a dlock waiter's deadline is its own acquire timeout, which every request carries. Seed key. Default 500ms; must not be negative.
	AcquirementExpire Millis `yaml:"acquirement_expire"`
	// SnapshotInterval is how often Raft checks whether to snapshot (RaftTiming.SnapshotInterval). Shorter
	// bounds disk use more tightly; each snapshot costs a full copy of the state. Default 30s;
	// range 5ms (hashicorp/raft's floor)..24h.
	SnapshotInterval Millis `yaml:"snapshot_interval"`
	// SnapshotThreshold is how many new log entries there must be before a check takes a snapshot
	// (RaftTiming.SnapshotThreshold). Default 8192 entries; at least 1.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold"`
	// TrailingLogs is how many entries stay in the log after a snapshot (RaftTiming.TrailingLogs), so a
	// follower that lags by fewer catches up from the log instead of a full snapshot. 0 keeps none.
	// Default 10240 entries.
	TrailingLogs uint64 `yaml:"trailing_logs"`
}

// StorageConfig says where the node keeps its data and logs. Relative paths are relative to the
// process's working directory, as in the seed. Seed section, plus data_dir.
type StorageConfig struct {
	// LogPath is where the node writes its own log: a path ending in "/" is a directory that gets
	// dlock.log (the seed's "./var/" form), any other path is the file itself. Default empty: standard
	// error, which is what containers and systemd collect. Seed key.
	LogPath string `yaml:"log_path"`
	// LogLevel is the least severe level logged, one of the seed's Critical, Error, Warning, Notice,
	// Info, Debug (case-insensitive; see SlogLevel). Empty means Info, as in the seed. Seed key.
	// Default "Info".
	LogLevel string `yaml:"log_level"`
	// EntryStoragePath is the Raft stable store, a bolt file (terms and votes), beside which the Raft
	// log is kept in the directory EntryStoragePath + ".wal" (see LogStorePath, WALDir). The seed's own
	// entry database at this path is not readable by dlock: point it at a new path or an empty
	// directory. Must name a file, not end in "/". Seed key.
	// Default empty, meaning DataDir()/raft.db.
	EntryStoragePath string `yaml:"entry_storage_path"`
	// DataDir holds snapshots and, unless EntryStoragePath says otherwise, the Raft log (see DataDir).
	// Default empty, meaning the directory of EntryStoragePath, else "dlock-data": so a seed file that
	// sets entry_storage_path "./var/persistence.db" keeps all its data in ./var, the directory the
	// seed's Docker files mount as a volume.
	DataDir string `yaml:"data_dir,omitempty"`
}

// Limits bound everything that grows, so one client cannot exhaust a node. A request over a size limit
// is refused as invalid; one that would exceed a count is refused as resource-exhausted; nothing else
// is affected. Each limit must be at least 1: zero never means unlimited. Every node of a cluster must
// use the same limits, because the state machine checks them again when applying.
type Limits struct {
	// NameBytesMax is the longest lock name or KV key, in bytes. Longer names cost memory in every
	// queue entry and snapshot. Default 1024; range 1..65536.
	NameBytesMax int `yaml:"name_bytes_max"`
	// ValueBytesMax is the largest KV value, in bytes. Every value passes through one Raft entry and one
	// gRPC message, so large values delay heartbeats behind them. Default 1 MiB; range 1..64 MiB.
	ValueBytesMax int `yaml:"value_bytes_max"`
	// WaitersPerLockMax is the most acquirers queued on one lock. Default 1024; range 1..1000000.
	WaitersPerLockMax int `yaml:"waiters_per_lock_max"`
	// LocksMax is the most lock records the cluster keeps, held or released (a released lock is still
	// queryable, as in the seed). Default 1000000; range 1..100000000.
	LocksMax int `yaml:"locks_max"`
	// KeysMax is the most keys in the KV store. Default 1000000; range 1..100000000.
	KeysMax int `yaml:"keys_max"`
	// ClientsMax is the most clients whose recent results the state machine remembers so that retried
	// writes apply once. Default 100000; range 1..10000000.
	ClientsMax int `yaml:"clients_max"`
	// InflightRequestsMax is the most client requests one node serves at once, waiting acquires
	// included. Default 4096; range 1..1000000.
	InflightRequestsMax int `yaml:"inflight_requests_max"`
	// LeaseMax is the longest lease (TTL) a client may ask for. A crashed holder keeps a lock until its
	// lease ends, so this bounds how long a lock can be stranded. Default 24h; range 1s..720h.
	LeaseMax Millis `yaml:"lease_max"`
	// AcquireTimeoutMax is the longest a client may ask to wait in a lock's queue. A waiter whose client
	// vanished holds its queue slot until then. Default 1h; range 1ms..24h.
	AcquireTimeoutMax Millis `yaml:"acquire_timeout_max"`
}

// Default returns a single-node development configuration that passes Validate and runs as is:
// node 1, Raft on 127.0.0.1:14005, clients on 127.0.0.1:24005, data in ./dlock-data, logs at Info to
// standard error, and the seed config.yaml's parameters. Each call returns a new Config.
func Default() *Config {
	return &Config{
		ID: IDConfig{SelfID: 1},
		Network: NetworkConfig{
			SelfAddress:    "127.0.0.1:14005",
			SelfCliAddress: "127.0.0.1:24005",
		},
		Parameters: defaultParameters(),
		Storage:    StorageConfig{LogLevel: "Info"},
		Limits:     defaultLimits(),
	}
}

func defaultParameters() Parameters {
	return Parameters{
		// The seed config.yaml's values, so a seed file that omits a key behaves as the seed did.
		HeartbeatInterval:    Millis(50 * time.Millisecond),
		AppendEntriesTimeout: Millis(150 * time.Millisecond),
		MinWaitTimeCandidate: Millis(150 * time.Millisecond),
		MaxWaitTimeCandidate: Millis(300 * time.Millisecond),
		MaxLogUnitsRecover:   200,
		LogBackUpInterval:    Millis(1000 * time.Millisecond),
		PollingInterval:      Millis(20 * time.Millisecond),
		StateChangeTimeout:   Millis(2000 * time.Millisecond),
		AcquirementExpire:    Millis(500 * time.Millisecond),

		SnapshotInterval:  Millis(30 * time.Second),
		SnapshotThreshold: 8192,
		TrailingLogs:      10240,
	}
}

func defaultLimits() Limits {
	return Limits{
		NameBytesMax:        1024,
		ValueBytesMax:       1 << 20,
		WaitersPerLockMax:   1024,
		LocksMax:            1_000_000,
		KeysMax:             1_000_000,
		ClientsMax:          100_000,
		InflightRequestsMax: 4096,
		LeaseMax:            Millis(24 * time.Hour),
		AcquireTimeoutMax:   Millis(time.Hour),
	}
}
