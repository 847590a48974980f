package config

import (
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestRaftTimingMapsSeedParameters(t *testing.T) {
	tests := []struct {
		name                 string
		giveHeartbeat        Millis
		giveMinWait          Millis
		giveAppendEntries    Millis
		wantHeartbeatTimeout time.Duration
		wantTransportTimeout time.Duration
	}{
		{"seed values: five intervals per timeout", millis(50), millis(150), millis(150),
			250 * time.Millisecond, time.Second},
		{"min wait above five intervals is the floor", millis(20), millis(150), millis(150),
			150 * time.Millisecond, time.Second},
		{"smallest allowed values", millis(1), millis(1), millis(1),
			5 * time.Millisecond, time.Second},
		{"slow append timeout kept above the 1s floor", millis(100), millis(150), millis(3000),
			500 * time.Millisecond, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Parameters.HeartbeatInterval = tt.giveHeartbeat
			c.Parameters.MinWaitTimeCandidate = tt.giveMinWait
			c.Parameters.MaxWaitTimeCandidate = tt.giveMinWait
			c.Parameters.AppendEntriesTimeout = tt.giveAppendEntries
			got := c.RaftTiming()
			want := RaftTiming{
				HeartbeatTimeout:   tt.wantHeartbeatTimeout,
				ElectionTimeout:    tt.wantHeartbeatTimeout,
				LeaderLeaseTimeout: tt.wantHeartbeatTimeout,
				CommitTimeout:      10 * time.Millisecond,
				TransportTimeout:   tt.wantTransportTimeout,
				ApplyTimeout:       2 * time.Second,
				SnapshotInterval:   30 * time.Second,
				MaxAppendEntries:   200,
				SnapshotThreshold:  8192,
				TrailingLogs:       10240,
			}
			if got != want {
				t.Errorf("RaftTiming() = %+v, want %+v", got, want)
			}
		})
	}
}

// Whatever Validate accepts, hashicorp/raft must accept too, or a node would fail at startup on a
// config that passed validation.
func TestValidConfigPassesRaftValidateConfig(t *testing.T) {
	tests := []struct {
		name string
		give *Config
	}{
		{"default", Default()},
		{"lowest bounds", func() *Config { c := threeNodes(); lowestBounds(c); return c }()},
		{"highest bounds", func() *Config { c := threeNodes(); highestBounds(c); return c }()},
		{"seed config.yaml", mustLoad(t, filepath.Join("testdata", "seed", "config.yaml"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.give.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			timing := tt.give.RaftTiming()
			rc := raft.DefaultConfig()
			rc.LocalID = "1"
			rc.HeartbeatTimeout = timing.HeartbeatTimeout
			rc.ElectionTimeout = timing.ElectionTimeout
			rc.LeaderLeaseTimeout = timing.LeaderLeaseTimeout
			rc.CommitTimeout = timing.CommitTimeout
			rc.SnapshotInterval = timing.SnapshotInterval
			rc.MaxAppendEntries = timing.MaxAppendEntries
			rc.SnapshotThreshold = timing.SnapshotThreshold
			rc.TrailingLogs = timing.TrailingLogs
			if err := raft.ValidateConfig(rc); err != nil {
				t.Errorf("raft.ValidateConfig(%+v) = %v, want nil", timing, err)
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) error = %v, want none", path, err)
	}
	return c
}

func TestMembersSortedByIDWithAdvertiseAddress(t *testing.T) {
	c := Default()
	c.ID = IDConfig{SelfID: 2, PeerIDs: []uint32{3, 1}}
	c.Network = NetworkConfig{
		SelfAddress:      "0.0.0.0:14006",
		SelfCliAddress:   "0.0.0.0:24006",
		AdvertiseAddress: "node2:14006",
		PeerAddresses:    []string{"node3:14007", "node1:14005"},
		PeerCliAddresses: []string{"node3:24007", "node1:24005"},
	}
	want := []Member{
		{ID: 1, PeerAddress: "node1:14005", ClientAddress: "node1:24005"},
		{ID: 2, PeerAddress: "node2:14006", ClientAddress: "0.0.0.0:24006"},
		{ID: 3, PeerAddress: "node3:14007", ClientAddress: "node3:24007"},
	}
	if got := c.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("Members() = %+v, want %+v", got, want)
	}
}

func TestStoragePaths(t *testing.T) {
	tests := []struct {
		name             string
		give             StorageConfig
		wantDataDir      string
		wantLogStorePath string
		wantLogFile      string
	}{
		{"nothing set", StorageConfig{}, "dlock-data", "dlock-data/raft.db", ""},
		{"data_dir only", StorageConfig{DataDir: "/var/lib/dlock"}, "/var/lib/dlock", "/var/lib/dlock/raft.db", ""},
		{"seed entry storage path", StorageConfig{EntryStoragePath: "./var/persistence.db", LogPath: "./var/"},
			"var", "./var/persistence.db", "var/dlock.log"},
		{"data_dir wins over entry storage directory",
			StorageConfig{DataDir: "/data", EntryStoragePath: "/fast/raft.db", LogPath: "/log/node.log"},
			"/data", "/fast/raft.db", "/log/node.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Storage = tt.give
			if got := c.DataDir(); got != tt.wantDataDir {
				t.Errorf("DataDir() = %q, want %q", got, tt.wantDataDir)
			}
			if got := c.LogStorePath(); got != tt.wantLogStorePath {
				t.Errorf("LogStorePath() = %q, want %q", got, tt.wantLogStorePath)
			}
			if got, want := c.WALDir(), tt.wantLogStorePath+".wal"; got != want {
				t.Errorf("WALDir() = %q, want %q: the log beside the stable store", got, want)
			}
			if got := c.LogFile(); got != tt.wantLogFile {
				t.Errorf("LogFile() = %q, want %q", got, tt.wantLogFile)
			}
		})
	}
}

func TestParseLogLevelSeedLevels(t *testing.T) {
	tests := []struct {
		give string
		want slog.Level
	}{
		{"Critical", slog.LevelError + 4},
		{"Error", slog.LevelError},
		{"Warning", slog.LevelWarn},
		{"Notice", slog.LevelInfo + 2},
		{"Info", slog.LevelInfo},
		{"Debug", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{"critical", slog.LevelError + 4},
		{"", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseLogLevel(tt.give)
			if err != nil || got != tt.want {
				t.Errorf("ParseLogLevel(%q) = %v, %v; want %v, nil", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestParseLogLevelRejectsOthers(t *testing.T) {
	for _, give := range []string{"warn", "Verbose", "Trace", "5"} {
		if _, err := ParseLogLevel(give); err == nil {
			t.Errorf("ParseLogLevel(%q) error = nil, want one", give)
		}
	}
}

func TestSlogLevelOfConfig(t *testing.T) {
	c := Default()
	c.Storage.LogLevel = "Notice"
	if got, want := c.SlogLevel(), slog.LevelInfo+2; got != want {
		t.Errorf("SlogLevel() = %v, want %v", got, want)
	}
}
