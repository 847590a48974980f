package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Bounds, documented on the fields and in docs/config.md. Upper bounds exist so that a slip of the
// keyboard (a few zeros too many) is an error at startup rather than a node that stalls or runs out of
// memory later.
const (
	peersMax = 8 // so a cluster has at most 9 members

	heartbeatIntervalMin, heartbeatIntervalMax = time.Millisecond, 10 * time.Second
	timeoutMin, timeoutMax                     = time.Millisecond, time.Minute
	appendEntriesMax                           = 1024 // hashicorp/raft's cap on MaxAppendEntries
	snapshotIntervalMin, snapshotIntervalMax   = 5 * time.Millisecond, 24 * time.Hour
	leaseMaxMin, leaseMaxMax                   = time.Second, 720 * time.Hour
	acquireTimeoutMin, acquireTimeoutMax       = time.Millisecond, 24 * time.Hour
	durationMax                                = time.Duration(math.MaxInt64)

	nameBytesMax, valueBytesMax = 64 << 10, 64 << 20
)

// Validate checks every field and every rule between fields, and returns all problems joined with
// errors.Join, each a *KeyError naming the YAML key, the value and the bound; nil if there are none.
// It never changes c: defaults are Default's business, so a valid Config is exactly what runs.
func (c *Config) Validate() error {
	var p problems
	c.validateIDs(&p)
	c.validateNetwork(&p)
	c.validateParameters(&p)
	c.validateStorage(&p)
	c.validateLimits(&p)
	c.validateTLS(&p)
	c.validateAuth(&p)
	c.validateObservability(&p)
	return errors.Join(p...)
}

func (c *Config) validateIDs(p *problems) {
	seen := make(map[uint32]string, len(c.ID.PeerIDs)+1)
	if c.ID.SelfID == 0 {
		p.add("id.self_id", "0 is reserved; use 1..4294967295")
	} else {
		seen[c.ID.SelfID] = "id.self_id"
	}
	if n := len(c.ID.PeerIDs); n > peersMax {
		p.add("id.peer_id", "%d entries above %d (a cluster has at most %d members)", n, peersMax, peersMax+1)
	}
	for i, id := range c.ID.PeerIDs {
		key := fmt.Sprintf("id.peer_id[%d]", i)
		if id == 0 {
			p.add(key, "0 is reserved; use 1..4294967295")
			continue
		}
		if prev, dup := seen[id]; dup {
			p.add(key, "%d repeats %s; every node needs its own id", id, prev)
			continue
		}
		seen[id] = key
	}
	if c.ID.Join && len(c.ID.PeerIDs) == 0 {
		p.add("id.join", "true, but id.peer_id is empty; a joining node names the members of the cluster it joins")
	}
}

func (c *Config) validateNetwork(p *problems) {
	n := &c.Network
	checkAddress(p, "network.self_address", n.SelfAddress, false)
	checkAddress(p, "network.self_cli_address", n.SelfCliAddress, false)
	if n.AdvertiseAddress != "" {
		checkAdvertise(p, n.AdvertiseAddress)
	}
	peers := len(c.ID.PeerIDs)
	if len(n.PeerAddresses) != peers {
		p.add("network.peer_address", "%d entries, but id.peer_id has %d", len(n.PeerAddresses), peers)
	}
	if len(n.PeerCliAddresses) != peers {
		p.add("network.peer_cli_address", "%d entries, but id.peer_id has %d", len(n.PeerCliAddresses), peers)
	}
	for i, a := range n.PeerAddresses {
		checkAddress(p, fmt.Sprintf("network.peer_address[%d]", i), a, true)
	}
	for i, a := range n.PeerCliAddresses {
		checkAddress(p, fmt.Sprintf("network.peer_cli_address[%d]", i), a, true)
	}
	c.checkDistinctAddresses(p)
}

// checkAddress checks that addr is host:port with a numeric port 1..65535. A listen address may leave
// the host empty (every interface); an address other nodes dial (needHost) may not.
func checkAddress(p *problems, key, addr string, needHost bool) {
	if addr == "" {
		p.add(key, "empty; want host:port")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := err.Error()
		var addrErr *net.AddrError
		if errors.As(err, &addrErr) {
			reason = addrErr.Err
		}
		p.add(key, "%q is not host:port (%s)", addr, reason)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(key, "port %q of %q is not a number in 1..65535", port, addr)
	}
	if needHost && host == "" {
		p.add(key, "%q has no host; other nodes must be able to dial it", addr)
	}
}

// CheckDialAddress returns a *KeyError naming key if addr is not an address other nodes and clients can
// dial: host:port with a host that is not empty, 0.0.0.0 or ::, and a numeric port 1..65535. It checks
// addresses that arrive at run time, such as those of a member being added, as Validate checks a file's.
func CheckDialAddress(key, addr string) error {
	var p problems
	checkAddress(&p, key, addr, true)
	if len(p) == 0 {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				p.add(key, "%q means every interface, which nobody can dial; give a host they can reach", addr)
			}
		}
	}
	return errors.Join(p...)
}

// checkAdvertise rejects an advertise address no other node could dial.
func checkAdvertise(p *problems, addr string) {
	const key = "network.advertise_address"
	checkAddress(p, key, addr, true)
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		p.add(key, "%q means every interface, which no other node can dial; give a host they can reach", addr)
	}
}

// checkDistinctAddresses enforces the seed's rule that all addresses in a file are distinct: two members
// on one address, or a node's Raft and client planes on one port, cannot both work.
func (c *Config) checkDistinctAddresses(p *problems) {
	n := &c.Network
	type entry struct{ key, addr string }
	all := []entry{{"network.self_address", n.SelfAddress}, {"network.self_cli_address", n.SelfCliAddress}}
	if n.AdvertiseAddress != n.SelfAddress {
		all = append(all, entry{"network.advertise_address", n.AdvertiseAddress})
	}
	for i, a := range n.PeerAddresses {
		all = append(all, entry{fmt.Sprintf("network.peer_address[%d]", i), a})
	}
	for i, a := range n.PeerCliAddresses {
		all = append(all, entry{fmt.Sprintf("network.peer_cli_address[%d]", i), a})
	}
	seen := make(map[string]string, len(all))
	for _, e := range all {
		if e.addr == "" {
			continue // reported by checkAddress
		}
		if prev, dup := seen[e.addr]; dup {
			p.add(e.key, "%q repeats %s; every address must be distinct", e.addr, prev)
			continue
		}
		seen[e.addr] = e.key
	}
}

func (c *Config) validateParameters(p *problems) {
	const pre = "parameters."
	v := &c.Parameters
	checkMillis(p, pre+"heart_beat_interval", v.HeartbeatInterval, heartbeatIntervalMin, heartbeatIntervalMax)
	checkMillis(p, pre+"append_entries_timeout", v.AppendEntriesTimeout, timeoutMin, timeoutMax)
	checkMillis(p, pre+"min_wait_time_candidate", v.MinWaitTimeCandidate, timeoutMin, timeoutMax)
	checkMillis(p, pre+"max_wait_time_candidate", v.MaxWaitTimeCandidate, timeoutMin, timeoutMax)
	if v.MaxWaitTimeCandidate < v.MinWaitTimeCandidate {
		p.add(pre+"max_wait_time_candidate", "%s below parameters.min_wait_time_candidate (%s)",
			v.MaxWaitTimeCandidate, v.MinWaitTimeCandidate)
	}
	checkInt(p, pre+"max_log_units_recover", v.MaxLogUnitsRecover, 1, appendEntriesMax)
	// Ignored, but a negative value is still a mistake worth reporting.
	checkMillis(p, pre+"log_back_up_interval", v.LogBackUpInterval, 0, durationMax)
	checkMillis(p, pre+"polling_interval", v.PollingInterval, 0, durationMax)
	checkMillis(p, pre+"acquirement_expire", v.AcquirementExpire, 0, durationMax)

	checkMillis(p, pre+"state_change_timeout", v.StateChangeTimeout, timeoutMin, timeoutMax)
	checkMillis(p, pre+"snapshot_interval", v.SnapshotInterval, snapshotIntervalMin, snapshotIntervalMax)
	if v.SnapshotThreshold < 1 {
		p.add(pre+"snapshot_threshold", "%d below 1", v.SnapshotThreshold)
	}
}

func (c *Config) validateStorage(p *problems) {
	s := &c.Storage
	if _, err := ParseLogLevel(s.LogLevel); err != nil {
		p.add("storage.log_level", "%q is not a log level (want %s)", s.LogLevel, levelNames)
	}
	if strings.HasSuffix(s.EntryStoragePath, "/") {
		p.add("storage.entry_storage_path", "%q names a directory; want a file such as %q",
			s.EntryStoragePath, s.EntryStoragePath+"raft.db")
	}
}

func (c *Config) validateLimits(p *problems) {
	const pre = "limits."
	l := &c.Limits
	checkInt(p, pre+"name_bytes_max", l.NameBytesMax, 1, nameBytesMax)
	checkInt(p, pre+"value_bytes_max", l.ValueBytesMax, 1, valueBytesMax)
	checkInt(p, pre+"waiters_per_lock_max", l.WaitersPerLockMax, 1, 1_000_000)
	checkInt(p, pre+"locks_max", l.LocksMax, 1, 100_000_000)
	checkInt(p, pre+"keys_max", l.KeysMax, 1, 100_000_000)
	checkInt(p, pre+"clients_max", l.ClientsMax, 1, 10_000_000)
	checkInt(p, pre+"inflight_requests_max", l.InflightRequestsMax, 1, 1_000_000)
	checkMillis(p, pre+"lease_max", l.LeaseMax, leaseMaxMin, leaseMaxMax)
	checkMillis(p, pre+"acquire_timeout_max", l.AcquireTimeoutMax, acquireTimeoutMin, acquireTimeoutMax)
}

func checkMillis(p *problems, key string, v Millis, lo, hi time.Duration) {
	switch {
	case v < 0 && lo == 0:
		p.add(key, "%s is negative", v)
	case v.Duration() < lo:
		p.add(key, "%s below %s", v, lo)
	case v.Duration() > hi:
		p.add(key, "%s above %s", v, hi)
	}
}

func checkInt(p *problems, key string, v, lo, hi int) {
	switch {
	case v < lo:
		p.add(key, "%d below %d", v, lo)
	case v > hi:
		p.add(key, "%d above %d", v, hi)
	}
}
