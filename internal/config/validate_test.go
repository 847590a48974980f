package config

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestDefaultIsSingleDevelopmentNode(t *testing.T) {
	c := Default()
	want := []Member{{ID: 1, PeerAddress: "127.0.0.1:14005", ClientAddress: "127.0.0.1:24005"}}
	if got := c.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default().Members() = %+v, want %+v", got, want)
	}
	if got, want := c.DataDir(), "dlock-data"; got != want {
		t.Errorf("Default().DataDir() = %q, want %q", got, want)
	}
	if got, want := c.LogStorePath(), "dlock-data/raft.db"; got != want {
		t.Errorf("Default().LogStorePath() = %q, want %q", got, want)
	}
}

func millis(ms int) Millis { return Millis(time.Duration(ms) * time.Millisecond) }

// Each row breaks one rule of a valid 3-node config; the error must name the key.
func TestValidateNamesTheBadKey(t *testing.T) {
	tests := []struct {
		name    string
		give    func(c *Config)
		wantKey string
	}{
		// "0 is invalid for id."
		{"self id 0 is reserved", func(c *Config) { c.ID.SelfID = 0 }, "id.self_id"},
		{"peer id 0 is reserved", func(c *Config) { c.ID.PeerIDs[1] = 0 }, "id.peer_id[1]"},
		// "all ids are globally unique"
		{"self id among peers", func(c *Config) { c.ID.PeerIDs[0] = 1 }, "id.peer_id[0]"},
		{"peer id repeated", func(c *Config) { c.ID.PeerIDs[1] = 2 }, "id.peer_id[1]"},
		{"more than 9 members", tenMembers, "id.peer_id"},
		// peer_address[i] and peer_cli_address[i] belong to peer_id[i]
		{"fewer peer addresses than ids", func(c *Config) { c.Network.PeerAddresses = c.Network.PeerAddresses[:1] },
			"network.peer_address"},
		{"more peer client addresses than ids", func(c *Config) {
			c.Network.PeerCliAddresses = append(c.Network.PeerCliAddresses, "10.0.0.4:24005")
		}, "network.peer_cli_address"},
		// addresses are host:port with a port 1..65535
		{"empty self address", func(c *Config) { c.Network.SelfAddress = "" }, "network.self_address"},
		{"self client address without port", func(c *Config) { c.Network.SelfCliAddress = "10.0.0.1" },
			"network.self_cli_address"},
		{"unparsable peer address", func(c *Config) { c.Network.PeerAddresses[0] = "[::1:14005" },
			"network.peer_address[0]"},
		{"port 0", func(c *Config) { c.Network.PeerAddresses[1] = "10.0.0.3:0" }, "network.peer_address[1]"},
		{"port 65536", func(c *Config) { c.Network.PeerCliAddresses[0] = "10.0.0.2:65536" },
			"network.peer_cli_address[0]"},
		{"named port", func(c *Config) { c.Network.SelfAddress = "10.0.0.1:raft" }, "network.self_address"},
		{"peer address without host", func(c *Config) { c.Network.PeerAddresses[1] = ":14005" },
			"network.peer_address[1]"},
		{"empty peer client address", func(c *Config) { c.Network.PeerCliAddresses[1] = "" },
			"network.peer_cli_address[1]"},
		{"advertise address on every interface", func(c *Config) { c.Network.AdvertiseAddress = "0.0.0.0:14005" },
			"network.advertise_address"},
		{"advertise address without port", func(c *Config) { c.Network.AdvertiseAddress = "node1" },
			"network.advertise_address"},
		// "all addresses should be globally unique"
		{"peer addresses repeated", func(c *Config) { c.Network.PeerAddresses[1] = "10.0.0.2:14005" },
			"network.peer_address[1]"},
		{"peer address is self address", func(c *Config) { c.Network.PeerAddresses[0] = "10.0.0.1:14005" },
			"network.peer_address[0]"},
		{"client and raft planes on one address", func(c *Config) { c.Network.SelfCliAddress = "10.0.0.1:14005" },
			"network.self_cli_address"},
		{"peer client addresses repeated", func(c *Config) { c.Network.PeerCliAddresses[1] = "10.0.0.2:24005" },
			"network.peer_cli_address[1]"},
		{"peer address is the advertise address", func(c *Config) { c.Network.AdvertiseAddress = "10.0.0.2:14005" },
			"network.peer_address[0]"},
	}
	tests = append(tests, parameterRows...)
	tests = append(tests, storageAndLimitRows...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := threeNodes()
			tt.give(c)
			err := c.Validate()
			if got := errorKeys(err); !slices.Contains(got, tt.wantKey) {
				t.Errorf("Validate() = %v; keys %q, want one to be %q", err, got, tt.wantKey)
			}
		})
	}
}

func tenMembers(c *Config) {
	c.ID.PeerIDs = []uint32{2, 3, 4, 5, 6, 7, 8, 9, 10}
	c.Network.PeerAddresses, c.Network.PeerCliAddresses = nil, nil
	for _, id := range c.ID.PeerIDs {
		c.Network.PeerAddresses = append(c.Network.PeerAddresses, fmt.Sprintf("10.0.1.%d:14005", id))
		c.Network.PeerCliAddresses = append(c.Network.PeerCliAddresses, fmt.Sprintf("10.0.1.%d:24005", id))
	}
}

var parameterRows = []struct {
	name    string
	give    func(c *Config)
	wantKey string
}{
	{"heart_beat_interval 0", func(c *Config) { c.Parameters.HeartbeatInterval = 0 }, "parameters.heart_beat_interval"},
	{"heart_beat_interval above 10s", func(c *Config) { c.Parameters.HeartbeatInterval = millis(10_001) },
		"parameters.heart_beat_interval"},
	{"append_entries_timeout 0", func(c *Config) { c.Parameters.AppendEntriesTimeout = 0 },
		"parameters.append_entries_timeout"},
	{"min_wait_time_candidate 0", func(c *Config) { c.Parameters.MinWaitTimeCandidate = 0 },
		"parameters.min_wait_time_candidate"},
	{"max_wait below min_wait", func(c *Config) { c.Parameters.MaxWaitTimeCandidate = millis(149) },
		"parameters.max_wait_time_candidate"},
	{"max_log_units_recover 0", func(c *Config) { c.Parameters.MaxLogUnitsRecover = 0 },
		"parameters.max_log_units_recover"},
	{"max_log_units_recover above raft's 1024", func(c *Config) { c.Parameters.MaxLogUnitsRecover = 1025 },
		"parameters.max_log_units_recover"},
	{"negative log_back_up_interval", func(c *Config) { c.Parameters.LogBackUpInterval = millis(-1) },
		"parameters.log_back_up_interval"},
	{"negative polling_interval", func(c *Config) { c.Parameters.PollingInterval = millis(-20) },
		"parameters.polling_interval"},
	{"negative acquirement_expire", func(c *Config) { c.Parameters.AcquirementExpire = millis(-500) },
		"parameters.acquirement_expire"},
	{"state_change_timeout 0", func(c *Config) { c.Parameters.StateChangeTimeout = 0 },
		"parameters.state_change_timeout"},
	{"snapshot_interval below raft's 5ms", func(c *Config) { c.Parameters.SnapshotInterval = millis(4) },
		"parameters.snapshot_interval"},
	{"snapshot_threshold 0", func(c *Config) { c.Parameters.SnapshotThreshold = 0 },
		"parameters.snapshot_threshold"},
}

var storageAndLimitRows = []struct {
	name    string
	give    func(c *Config)
	wantKey string
}{
	{"unknown log level", func(c *Config) { c.Storage.LogLevel = "Verbose" }, "storage.log_level"},
	{"entry storage path is a directory", func(c *Config) { c.Storage.EntryStoragePath = "./var/" },
		"storage.entry_storage_path"},
	// "Zero never means unlimited."
	{"name_bytes_max 0", func(c *Config) { c.Limits.NameBytesMax = 0 }, "limits.name_bytes_max"},
	{"value_bytes_max negative", func(c *Config) { c.Limits.ValueBytesMax = -1 }, "limits.value_bytes_max"},
	{"value_bytes_max above 64 MiB", func(c *Config) { c.Limits.ValueBytesMax = 64<<20 + 1 }, "limits.value_bytes_max"},
	{"waiters_per_lock_max 0", func(c *Config) { c.Limits.WaitersPerLockMax = 0 }, "limits.waiters_per_lock_max"},
	{"locks_max 0", func(c *Config) { c.Limits.LocksMax = 0 }, "limits.locks_max"},
	{"keys_max 0", func(c *Config) { c.Limits.KeysMax = 0 }, "limits.keys_max"},
	{"clients_max 0", func(c *Config) { c.Limits.ClientsMax = 0 }, "limits.clients_max"},
	{"inflight_requests_max 0", func(c *Config) { c.Limits.InflightRequestsMax = 0 }, "limits.inflight_requests_max"},
	{"lease_max 0", func(c *Config) { c.Limits.LeaseMax = 0 }, "limits.lease_max"},
	{"acquire_timeout_max 0", func(c *Config) { c.Limits.AcquireTimeoutMax = 0 }, "limits.acquire_timeout_max"},
}

// Settings at the edge of what is allowed, and the seed's loose forms, must still validate.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		give func(c *Config)
	}{
		{"three nodes", func(*Config) {}},
		{"single node with nil peer lists", func(c *Config) {
			c.ID.PeerIDs, c.Network.PeerAddresses, c.Network.PeerCliAddresses = nil, nil, nil
		}},
		{"listen on every interface", func(c *Config) { c.Network.SelfAddress = "0.0.0.0:14005" }},
		{"listen with empty host", func(c *Config) { c.Network.SelfCliAddress = ":24005" }},
		{"IPv6 addresses", func(c *Config) { c.Network.PeerAddresses[0] = "[fd00::2]:14005" }},
		{"advertise address equal to self address", func(c *Config) { c.Network.AdvertiseAddress = "10.0.0.1:14005" }},
		{"advertise a name", func(c *Config) {
			c.Network.SelfAddress, c.Network.AdvertiseAddress = "0.0.0.0:14005", "node1.dlock:14005"
		}},
		{"ignored parameters zero", func(c *Config) {
			c.Parameters.LogBackUpInterval, c.Parameters.PollingInterval, c.Parameters.AcquirementExpire = 0, 0, 0
		}},
		{"max_wait equal to min_wait", func(c *Config) { c.Parameters.MaxWaitTimeCandidate = millis(150) }},
		{"trailing_logs 0 keeps no log after a snapshot", func(c *Config) { c.Parameters.TrailingLogs = 0 }},
		{"lower-case log level", func(c *Config) { c.Storage.LogLevel = "warning" }},
		{"empty log level means Info", func(c *Config) { c.Storage.LogLevel = "" }},
		{"lowest bounds", lowestBounds},
		{"highest bounds", highestBounds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := threeNodes()
			tt.give(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func lowestBounds(c *Config) {
	c.Parameters = Parameters{
		HeartbeatInterval: millis(1), AppendEntriesTimeout: millis(1), MinWaitTimeCandidate: millis(1),
		MaxWaitTimeCandidate: millis(1), MaxLogUnitsRecover: 1, StateChangeTimeout: millis(1),
		SnapshotInterval: millis(5), SnapshotThreshold: 1,
	}
	c.Limits = Limits{
		NameBytesMax: 1, ValueBytesMax: 1, WaitersPerLockMax: 1, LocksMax: 1, KeysMax: 1, ClientsMax: 1,
		InflightRequestsMax: 1, LeaseMax: Millis(time.Second), AcquireTimeoutMax: millis(1),
	}
}

func highestBounds(c *Config) {
	c.Parameters = Parameters{
		HeartbeatInterval: Millis(10 * time.Second), AppendEntriesTimeout: Millis(time.Minute),
		MinWaitTimeCandidate: Millis(time.Minute), MaxWaitTimeCandidate: Millis(time.Minute),
		MaxLogUnitsRecover: 1024, StateChangeTimeout: Millis(time.Minute),
		SnapshotInterval: Millis(24 * time.Hour), SnapshotThreshold: 1 << 63, TrailingLogs: 1 << 63,
	}
	c.Limits = Limits{
		NameBytesMax: 64 << 10, ValueBytesMax: 64 << 20, WaitersPerLockMax: 1_000_000, LocksMax: 100_000_000,
		KeysMax: 100_000_000, ClientsMax: 10_000_000, InflightRequestsMax: 1_000_000,
		LeaseMax: Millis(720 * time.Hour), AcquireTimeoutMax: Millis(24 * time.Hour),
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := threeNodes()
	c.ID.SelfID = 0
	c.Parameters.HeartbeatInterval = 0
	c.Limits.KeysMax = 0
	want := []string{"id.self_id", "parameters.heart_beat_interval", "limits.keys_max"}
	if got := errorKeys(c.Validate()); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() keys = %q, want %q", got, want)
	}
}

func TestValidateNeverFillsDefaults(t *testing.T) {
	c := threeNodes()
	c.Parameters = Parameters{}
	c.Limits = Limits{}
	c.Storage = StorageConfig{}
	before := *c
	_ = c.Validate()
	if !reflect.DeepEqual(*c, before) {
		t.Errorf("Validate changed the config:\n got %+v\nwant %+v", *c, before)
	}
}
