package fsm

import (
	"fmt"
	"time"
)

// Limits are the state machine's hard ceilings. Every replica must use the
// same Limits: a command refused on one replica and accepted on another would
// fork the state. Over a limit a command gets a LIMIT result and changes
// nothing. Zero never means unlimited: every field must be positive.
type Limits struct {
	// NameBytesMax bounds a lock name and a KV key, in bytes. Default 1024.
	NameBytesMax int
	// ValueBytesMax bounds a KV value, in bytes. Default 1 MiB.
	ValueBytesMax int
	// OwnerBytesMax bounds an owner id and a client id, in bytes. Default 1024.
	OwnerBytesMax int
	// WaitersPerLockMax bounds one lock's FIFO queue. Default 1024.
	WaitersPerLockMax int
	// LocksMax bounds lock records: held locks plus released ones not yet
	// pruned (see LockIdleMax). Default 1_000_000.
	LocksMax int
	// KeysMax bounds KV keys. Default 1_000_000.
	KeysMax int
	// ClientsMax bounds the idempotency table; a new client beyond it evicts
	// the least recently seen one. Default 100_000.
	ClientsMax int
	// ResultsPerClientMax bounds the results remembered per client: the ones
	// with the highest seqs are kept. A client's acknowledgement mark frees
	// the rest, so this bounds the writes one client may have in flight
	// before a retry of its oldest is refused (STALE_REQUEST, never applied
	// twice). Default 256.
	ResultsPerClientMax int
}

// Timing of the deterministic pruning, in cluster (log) time.
const (
	// PruneInterval is how often, in cluster time, idle entries are pruned.
	PruneInterval = time.Minute
	// ClientIdleMax is how long a client may stay unseen before its
	// remembered results are forgotten.
	ClientIdleMax = 10 * time.Minute
	// LockIdleMax is how long a released lock record without waiters is kept
	// (its nonce restarts at 1 if the name is acquired after pruning).
	LockIdleMax = time.Hour
)

// Ceilings on the limits themselves, so that size arithmetic never overflows.
const (
	bytesLimitMax   = 1 << 30
	countLimitMax   = 1 << 31
	waitersLimitMax = 1 << 20
	resultsLimitMax = 1 << 16
)

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		NameBytesMax:        1024,
		ValueBytesMax:       1 << 20,
		OwnerBytesMax:       1024,
		WaitersPerLockMax:   1024,
		LocksMax:            1_000_000,
		KeysMax:             1_000_000,
		ClientsMax:          100_000,
		ResultsPerClientMax: 256,
	}
}

// Validate reports the first field outside [1, ceiling], naming it, its value
// and the bound. It never fills defaults.
func (l Limits) Validate() error {
	fields := []struct {
		name     string
		val, max int
	}{
		{"NameBytesMax", l.NameBytesMax, bytesLimitMax},
		{"ValueBytesMax", l.ValueBytesMax, bytesLimitMax},
		{"OwnerBytesMax", l.OwnerBytesMax, bytesLimitMax},
		{"WaitersPerLockMax", l.WaitersPerLockMax, waitersLimitMax},
		{"LocksMax", l.LocksMax, countLimitMax},
		{"KeysMax", l.KeysMax, countLimitMax},
		{"ClientsMax", l.ClientsMax, countLimitMax},
		{"ResultsPerClientMax", l.ResultsPerClientMax, resultsLimitMax},
	}
	for _, f := range fields {
		if f.val < 1 {
			return fmt.Errorf("dlock: fsm limits: %s: %d below 1", f.name, f.val)
		}
		if f.val > f.max {
			return fmt.Errorf("dlock: fsm limits: %s: %d above %d", f.name, f.val, f.max)
		}
	}
	return nil
}
