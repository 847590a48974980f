package config

import (
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// seedTiming is what every seed file's parameters (heart_beat_interval 50, min_wait_time_candidate 150,
// append_entries_timeout 150, max_log_units_recover 200, state_change_timeout 2000 or left out) give.
var seedTiming = RaftTiming{
	HeartbeatTimeout:   250 * time.Millisecond,
	ElectionTimeout:    250 * time.Millisecond,
	LeaderLeaseTimeout: 250 * time.Millisecond,
	CommitTimeout:      10 * time.Millisecond,
	TransportTimeout:   time.Second,
	ApplyTimeout:       2 * time.Second,
	SnapshotInterval:   30 * time.Second,
	MaxAppendEntries:   200,
	SnapshotThreshold:  8192,
	TrailingLogs:       10240,
}

var seedLANMembers = []Member{
	{ID: 1, PeerAddress: "192.168.2.30:14005", ClientAddress: "192.168.2.30:24005"},
	{ID: 2, PeerAddress: "192.168.0.2:14005", ClientAddress: "192.168.0.2:24005"},
	{ID: 3, PeerAddress: "192.168.0.3:14005", ClientAddress: "192.168.0.3:24005"},
}

// seedFiles are the seed's five config files (byte-for-byte copies in testdata/seed) and what each means.
var seedFiles = []struct {
	give           string
	wantMembers    []Member
	wantLogStore   string
	wantDataDir    string
	wantLogFile    string
	wantSlogLevel  slog.Level
	wantRaftTiming RaftTiming
}{
	{
		give:        "config.yaml",
		wantMembers: seedLANMembers, wantLogStore: "./var/persistence.db",
		wantDataDir: "var", wantLogFile: "var/dlock.log", wantSlogLevel: slog.LevelInfo,
		wantRaftTiming: seedTiming,
	},
	{
		give:        "config-node-test.yaml",
		wantMembers: seedLANMembers, wantLogStore: "../var/persistence.db",
		wantDataDir: "../var", wantLogFile: "../var/dlock.log", wantSlogLevel: slog.LevelDebug,
		wantRaftTiming: seedTiming,
	},
	{
		give: "config_node1.yaml",
		wantMembers: []Member{
			{ID: 1, PeerAddress: "0.0.0.0:14005", ClientAddress: "0.0.0.0:24005"},
			{ID: 2, PeerAddress: "raft_peer2:14006", ClientAddress: "0.0.0.0:24006"},
			{ID: 3, PeerAddress: "raft_peer3:14007", ClientAddress: "0.0.0.0:24007"},
		},
		wantLogStore: "./var/persistence.db", wantDataDir: "var", wantLogFile: "var/dlock.log",
		wantSlogLevel: slog.LevelDebug, wantRaftTiming: seedTiming,
	},
	{
		give: "config_node2.yaml",
		wantMembers: []Member{
			{ID: 1, PeerAddress: "raft_peer1:14005", ClientAddress: "0.0.0.0:24005"},
			{ID: 2, PeerAddress: "0.0.0.0:14006", ClientAddress: "0.0.0.0:24006"},
			{ID: 3, PeerAddress: "raft_peer3:14007", ClientAddress: "0.0.0.0:24007"},
		},
		wantLogStore: "./var/persistence.db", wantDataDir: "var", wantLogFile: "var/dlock.log",
		wantSlogLevel: slog.LevelDebug, wantRaftTiming: seedTiming,
	},
	{
		give: "config_node3.yaml",
		wantMembers: []Member{
			{ID: 1, PeerAddress: "raft_peer1:14005", ClientAddress: "0.0.0.0:24005"},
			{ID: 2, PeerAddress: "raft_peer2:14006", ClientAddress: "0.0.0.0:24006"},
			{ID: 3, PeerAddress: "0.0.0.0:14007", ClientAddress: "0.0.0.0:24007"},
		},
		wantLogStore: "./var/persistence.db", wantDataDir: "var", wantLogFile: "var/dlock.log",
		wantSlogLevel: slog.LevelDebug, wantRaftTiming: seedTiming,
	},
}

// The seed's files load unchanged and mean what a seed user expects: the Docker node configs listen on
// 0.0.0.0 and name their peers by compose service.
func TestSeedFilesLoadUnchanged(t *testing.T) {
	for _, tt := range seedFiles {
		t.Run(tt.give, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", "seed", tt.give))
			if err != nil {
				t.Fatalf("Load: got error %v, want none", err)
			}
			if got := c.Members(); !reflect.DeepEqual(got, tt.wantMembers) {
				t.Errorf("Members() = %+v, want %+v", got, tt.wantMembers)
			}
			if got := c.RaftTiming(); got != tt.wantRaftTiming {
				t.Errorf("RaftTiming() = %+v, want %+v", got, tt.wantRaftTiming)
			}
			if got := c.LogStorePath(); got != tt.wantLogStore {
				t.Errorf("LogStorePath() = %q, want %q", got, tt.wantLogStore)
			}
			if got := c.DataDir(); got != tt.wantDataDir {
				t.Errorf("DataDir() = %q, want %q", got, tt.wantDataDir)
			}
			if got := c.LogFile(); got != tt.wantLogFile {
				t.Errorf("LogFile() = %q, want %q", got, tt.wantLogFile)
			}
			if got := c.SlogLevel(); got != tt.wantSlogLevel {
				t.Errorf("SlogLevel() = %v, want %v", got, tt.wantSlogLevel)
			}
		})
	}
}

// The seed's test config comments out polling_interval and state_change_timeout: they take the seed
// config.yaml's values, and every key the file does give is read as written.
func TestSeedTestConfigTakesDefaultsForLeftOutKeys(t *testing.T) {
	want := Default()
	want.ID = IDConfig{SelfID: 1, PeerIDs: []uint32{2, 3}}
	want.Network = NetworkConfig{
		SelfAddress:      "192.168.2.30:14005",
		SelfCliAddress:   "192.168.2.30:24005",
		PeerAddresses:    []string{"192.168.0.2:14005", "192.168.0.3:14005"},
		PeerCliAddresses: []string{"192.168.0.2:24005", "192.168.0.3:24005"},
	}
	want.Parameters.MaxWaitTimeCandidate = Millis(400 * time.Millisecond)
	want.Parameters.LogBackUpInterval = Millis(800 * time.Millisecond)
	want.Storage = StorageConfig{
		LogPath:          "../var/",
		LogLevel:         "Debug",
		EntryStoragePath: "../var/persistence.db",
	}

	got, err := Load(filepath.Join("testdata", "seed", "config-node-test.yaml"))
	if err != nil {
		t.Fatalf("Load: got error %v, want none", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(config-node-test.yaml) =\n%+v\nwant\n%+v", got, want)
	}
	if got.Parameters.PollingInterval != Millis(20*time.Millisecond) {
		t.Errorf("polling_interval = %s, want the default 20ms", got.Parameters.PollingInterval)
	}
}
