package fsm

import (
	"fmt"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// EventKind says what happened to a hold.
type EventKind uint8

// The kinds of Event.
const (
	// EventGranted: Owner now holds Name with Token, by an Acquire or by a
	// hand-on to the first live waiter.
	EventGranted EventKind = iota + 1
	// EventReleased: Owner's hold with Token ended by Release or Withdraw.
	EventReleased
	// EventExpired: Owner's hold with Token ended because its lease lapsed
	// (by Expire, or by a command that found it lapsed).
	EventExpired
)

func (k EventKind) String() string {
	switch k {
	case EventGranted:
		return "granted"
	case EventReleased:
		return "released"
	case EventExpired:
		return "expired"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event reports a change of hold, so the server can wake a blocked Acquire
// (and tell a holder its lease is gone). Events describe the hold they
// concern: for Released and Expired, the hold that ended. Renewals and
// reentrant Acquires emit none: they keep the hold and only move its deadline.
type Event struct {
	Kind              EventKind
	Name, Owner       string
	Token, Nonce      uint64
	TTL               int64
	AcquiredUnixNanos int64
}

// Output is what applying one entry produced: one result per command, in
// order, and the events of all its commands, in the order they happened.
type Output struct {
	Results []*fsmpb.Result
	Events  []Event
}

// emit records an event about l's current hold.
func (s *State) emit(kind EventKind, l *lock) {
	s.events = append(s.events, Event{
		Kind:              kind,
		Name:              l.name,
		Owner:             l.hold.owner,
		Token:             l.hold.token,
		Nonce:             l.nonce,
		TTL:               l.hold.ttl,
		AcquiredUnixNanos: l.hold.acquiredUnix,
	})
}
