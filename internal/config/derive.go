package config

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Member is one node of the cluster as this node's configuration sees it.
type Member struct {
	// ID is the node's Raft server ID.
	ID uint32
	// PeerAddress is where the node's Raft plane is dialled.
	PeerAddress string
	// ClientAddress is where the node serves client gRPC requests.
	ClientAddress string
}

// Members returns this node and every peer, sorted by ID. This node's PeerAddress is
// network.advertise_address if set, else network.self_address; its ClientAddress is
// network.self_cli_address. Call it on a validated Config: on an invalid one, peers beyond the
// shortest of the three peer lists are left out.
func (c *Config) Members() []Member {
	self := Member{
		ID:            c.ID.SelfID,
		PeerAddress:   c.Network.SelfAddress,
		ClientAddress: c.Network.SelfCliAddress,
	}
	if c.Network.AdvertiseAddress != "" {
		self.PeerAddress = c.Network.AdvertiseAddress
	}
	n := min(len(c.ID.PeerIDs), len(c.Network.PeerAddresses), len(c.Network.PeerCliAddresses))
	ms := make([]Member, 0, n+1)
	ms = append(ms, self)
	for i := range n {
		ms = append(ms, Member{
			ID:            c.ID.PeerIDs[i],
			PeerAddress:   c.Network.PeerAddresses[i],
			ClientAddress: c.Network.PeerCliAddresses[i],
		})
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return ms
}

// RaftTiming is the subset of hashicorp/raft's Config (and its TCP transport) that the configuration
// decides. Field names match hashicorp/raft's, except TransportTimeout (the transport's I/O timeout) and
// ApplyTimeout (the timeout passed to Raft.Apply).
type RaftTiming struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	TransportTimeout   time.Duration
	ApplyTimeout       time.Duration
	SnapshotInterval   time.Duration
	MaxAppendEntries   int
	SnapshotThreshold  uint64
	TrailingLogs       uint64
}

const (
	// commitTimeout is how long a leader with nothing new to send waits before telling followers the
	// new commit index (hashicorp/raft randomises it up to 2x). A follower applies an entry, and so
	// answers a linearizable read or wakes a waiter it serves, only once it learns the entry is
	// committed. Measured on 3 loopback nodes (2 cores), a put then a linearizable get through a
	// follower: p50 80ms at hashicorp/raft's 50ms default, 17ms at 10ms, 10ms at 5ms; the idle
	// leader's CPU: 6.6% of a core at 10ms, 9.2% at 5ms. 10ms is the middle ground.
	commitTimeout = 10 * time.Millisecond
	// transportTimeoutMin floors append_entries_timeout: see Parameters.AppendEntriesTimeout.
	transportTimeoutMin = time.Second
)

// RaftTiming maps the parameters onto hashicorp/raft settings; a validated Config gives values that pass
// raft.ValidateConfig. The mapping, and why, is on each Parameters field; in short:
//
//	HeartbeatTimeout   = max(5*heart_beat_interval, min_wait_time_candidate)  (raft heartbeats every T/10)
//	ElectionTimeout    = HeartbeatTimeout                                     (raft randomizes in [T, 2T])
//	LeaderLeaseTimeout = HeartbeatTimeout                                     (must not exceed HeartbeatTimeout)
//	TransportTimeout   = max(append_entries_timeout, 1s)
//	ApplyTimeout       = state_change_timeout
//	MaxAppendEntries   = max_log_units_recover
//	CommitTimeout      = 10ms
func (c *Config) RaftTiming() RaftTiming {
	p := &c.Parameters
	// Five intervals, not ten: raft re-arms a follower's timer at a random point in [T, 2T) and only
	// then checks the last contact, so a dead leader is noticed after T to 3T. With T = 500ms (ten
	// intervals) a SIGKILLed leader left clients without a write for 1.5s; with 250ms, 0.47-0.78s.
	hb := max(5*p.HeartbeatInterval.Duration(), p.MinWaitTimeCandidate.Duration())
	return RaftTiming{
		HeartbeatTimeout:   hb,
		ElectionTimeout:    hb,
		LeaderLeaseTimeout: hb,
		CommitTimeout:      commitTimeout,
		TransportTimeout:   max(p.AppendEntriesTimeout.Duration(), transportTimeoutMin),
		ApplyTimeout:       p.StateChangeTimeout.Duration(),
		SnapshotInterval:   p.SnapshotInterval.Duration(),
		MaxAppendEntries:   p.MaxLogUnitsRecover,
		SnapshotThreshold:  p.SnapshotThreshold,
		TrailingLogs:       p.TrailingLogs,
	}
}

// defaultDataDir is the data directory when neither data_dir nor entry_storage_path names one.
const defaultDataDir = "dlock-data"

// DataDir returns the directory for snapshots and other node data: storage.data_dir if set, else the
// directory of storage.entry_storage_path, else "dlock-data".
func (c *Config) DataDir() string {
	switch {
	case c.Storage.DataDir != "":
		return c.Storage.DataDir
	case c.Storage.EntryStoragePath != "":
		return filepath.Dir(c.Storage.EntryStoragePath)
	}
	return defaultDataDir
}

// LogStorePath returns the file holding the Raft stable store (a bolt file: terms, votes, and the
// log of nodes from before the log moved to WALDir): storage.entry_storage_path if set, the seed's
// "persistent entry storage", else DataDir()/raft.db.
func (c *Config) LogStorePath() string {
	if c.Storage.EntryStoragePath != "" {
		return c.Storage.EntryStoragePath
	}
	return filepath.Join(c.DataDir(), "raft.db")
}

// WALDir returns the directory holding the Raft log's segment files, fsync'd on every append:
// LogStorePath() + ".wal", so that the log lives on the file system entry_storage_path chose.
func (c *Config) WALDir() string { return c.LogStorePath() + ".wal" }

// logFileName is the file written inside a storage.log_path that names a directory.
const logFileName = "dlock.log"

// LogFile returns the file the node's log goes to, or "" for standard error: storage.log_path as is, or
// log_path/dlock.log when log_path ends in "/" (the seed's "./var/" form names a directory).
func (c *Config) LogFile() string {
	p := c.Storage.LogPath
	if strings.HasSuffix(p, "/") {
		return filepath.Join(p, logFileName)
	}
	return p
}

// The seed's levels beyond slog's four sit between and above them, so a slog handler orders them right.
const (
	// LevelNotice is the seed's Notice: more important than Info, not a warning.
	LevelNotice = slog.LevelInfo + 2
	// LevelCritical is the seed's Critical: above Error.
	LevelCritical = slog.LevelError + 4
)

var levels = map[string]slog.Level{
	"critical": LevelCritical,
	"error":    slog.LevelError,
	"warning":  slog.LevelWarn,
	"notice":   LevelNotice,
	"info":     slog.LevelInfo,
	"debug":    slog.LevelDebug,
}

const levelNames = "Critical, Error, Warning, Notice, Info or Debug"

// ParseLogLevel maps one of the seed's six levels, case-insensitive, onto a slog.Level: Critical ->
// LevelError+4, Error -> LevelError, Warning -> LevelWarn, Notice -> LevelInfo+2, Info -> LevelInfo,
// Debug -> LevelDebug. The empty string is Info, the seed's default. Anything else is an error.
func ParseLogLevel(s string) (slog.Level, error) {
	if s == "" {
		return slog.LevelInfo, nil
	}
	l, ok := levels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return slog.LevelInfo, fmt.Errorf("log level %q: want %s", s, levelNames)
	}
	return l, nil
}

// SlogLevel returns storage.log_level as a slog.Level (see ParseLogLevel). An unknown level, which
// Validate reports, gives Info.
func (c *Config) SlogLevel() slog.Level {
	l, _ := ParseLogLevel(c.Storage.LogLevel)
	return l
}

// Render writes c as a YAML config file that Parse reads back to an equal
// Config: every key, in the seed's layout. Tools that write configs (dlock
// dev, test clusters) use it so that what they write is what a node reads.
func (c *Config) Render() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b.Bytes(), nil
}

// ForMember returns a copy of c for member self of the cluster members:
// its id and addresses, and every other member as a peer. Members are
// listed as Members returns them.
func (c *Config) ForMember(self uint32, members []Member) *Config {
	out := *c
	out.ID = IDConfig{SelfID: self}
	out.Network = NetworkConfig{}
	for _, m := range members {
		if m.ID == self {
			out.Network.SelfAddress, out.Network.SelfCliAddress = m.PeerAddress, m.ClientAddress
			continue
		}
		out.ID.PeerIDs = append(out.ID.PeerIDs, m.ID)
		out.Network.PeerAddresses = append(out.Network.PeerAddresses, m.PeerAddress)
		out.Network.PeerCliAddresses = append(out.Network.PeerCliAddresses, m.ClientAddress)
	}
	return &out
}
