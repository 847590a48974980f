package dlockapi

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/dlock-raft/dlock/client"
)

const (
	// DefaultTimeoutMs is the timeout of every call that is given none, in milliseconds: the seed's
	// default acquire timeout.
	DefaultTimeoutMs = 2500
	// AddressesMax bounds the addresses one handler talks to (one connection each); a call naming one
	// more fails.
	AddressesMax = 64
	// acquireGrace is how long AcquireDLock waits for the cluster's answer beyond its timeout.
	acquireGrace = time.Second
)

// DLockRaftClientAPI is a handler for dlock calls, as in the seed. Create it with
// NewDLockRaftClientAPI; it is safe for concurrent use. Close it when done.
type DLockRaftClientAPI struct {
	// ClientId is the owner id of every lock acquired through this handler. Set it through
	// NewDLockRaftClientAPI and do not change it after the first call.
	ClientId string

	mu      sync.Mutex
	clients map[string]*client.Client // by address
	closed  bool
}

// DLockQueryInfo is a lock's state as QueryDLock reports it.
type DLockQueryInfo struct {
	// Owner is the ClientId holding the lock, or "" if it is free (released or expired).
	Owner string
	// Nonce counts the grants of this lock (truncated to 32 bits, as in the seed).
	Nonce uint32
	// Timestamp is the time of the last grant, in Unix nanoseconds (the leader's wall clock).
	Timestamp int64
	// Expire is the lease of the current (or last) hold, in nanoseconds.
	Expire int64
	// PendingNum is the number of clients waiting in the lock's queue.
	PendingNum int32
	// Token is the fencing token of the current (or last) hold; it strictly grows with every grant.
	Token uint64
	// Remaining is the lease left, in nanoseconds, as the answering node saw it; 0 if free.
	Remaining int64
}

// NewDLockRaftClientAPI returns a handler whose locks are held by clientIdPreset[0] if given and not
// empty, else by a fresh KSUID-formatted id. It does not connect; connections are made on first use.
func NewDLockRaftClientAPI(clientIdPreset ...string) *DLockRaftClientAPI {
	id := ""
	if len(clientIdPreset) > 0 {
		id = clientIdPreset[0]
	}
	if id == "" {
		id = newKSUID(time.Now())
	}
	return &DLockRaftClientAPI{ClientId: id, clients: make(map[string]*client.Client)}
}

// Close closes the handler's connections. Calls after Close fail (false or nil). It is idempotent.
func (api *DLockRaftClientAPI) Close() {
	api.mu.Lock()
	if api.closed {
		api.mu.Unlock()
		return
	}
	api.closed = true
	clients := api.clients
	api.clients = nil
	api.mu.Unlock()
	for _, c := range clients {
		_ = c.Close() // nothing to do about a failed close of a connection we are abandoning
	}
}

// client returns the address's client, creating it on first use. Each client has its own random
// request id (deduplication must not mix the sequence numbers of several clients); the lock owner is
// always ClientId, given explicitly on every call.
func (api *DLockRaftClientAPI) client(address string) (*client.Client, bool) {
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.closed {
		return nil, false
	}
	if c, ok := api.clients[address]; ok {
		return c, true
	}
	if len(api.clients) >= AddressesMax {
		return nil, false
	}
	c, err := client.New([]string{address})
	if err != nil {
		return nil, false
	}
	api.clients[address] = c
	return c, true
}

// waitOf is AcquireDLock's wait: the timeout given (0: do not wait), else
// the default.
func waitOf(timeout []uint32) time.Duration {
	if len(timeout) > 0 {
		return time.Duration(timeout[0]) * time.Millisecond
	}
	return DefaultTimeoutMs * time.Millisecond
}

// timeoutOf bounds the other calls: the timeout given, else (or if 0) the
// default, since a call with no time at all could never reach the cluster.
func timeoutOf(timeout []uint32) time.Duration {
	if len(timeout) > 0 && timeout[0] > 0 {
		return time.Duration(timeout[0]) * time.Millisecond
	}
	return DefaultTimeoutMs * time.Millisecond
}

// AcquireDLock takes lockName for ClientId with a lease of expire milliseconds, waiting in the lock's
// FIFO queue for up to timeout milliseconds (default 2500; 0: do not wait). An expire over the cluster's
// limits.lease_max (default 24h) or a timeout over its limits.acquire_timeout_max (default 1h) is refused:
// false, with nothing changed. It returns true only if the
// cluster granted the lock to ClientId (an Acquire by the current owner is a grant too, and refreshes
// the lease). It blocks at most timeout plus one second.
func (api *DLockRaftClientAPI) AcquireDLock(address, lockName string, expire int64, timeout ...uint32) bool {
	c, ok := api.client(address)
	if !ok || expire <= 0 {
		return false
	}
	wait := waitOf(timeout)
	ctx, cancel := context.WithTimeout(context.Background(), wait+acquireGrace)
	defer cancel()
	_, err := c.Acquire(ctx, lockName, client.WithOwner(api.ClientId),
		client.WithTTL(time.Duration(expire)*time.Millisecond), client.WithWait(wait), client.WithoutAutoRenew())
	return err == nil
}

// QueryDLock returns lockName's state and true, or nil and false if the lock was never acquired or the
// node did not answer within timeout milliseconds (default, and for 0, 2500). A released lock is reported with an
// empty Owner.
func (api *DLockRaftClientAPI) QueryDLock(address, lockName string, timeout ...uint32) (*DLockQueryInfo, bool) {
	c, ok := api.client(address)
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(timeout))
	defer cancel()
	info, err := c.Query(ctx, lockName)
	if err != nil {
		return nil, false
	}
	q := &DLockQueryInfo{
		Owner:      info.Owner,
		Nonce:      uint32(info.Nonce),
		Expire:     info.TTL.Nanoseconds(),
		PendingNum: int32(info.Waiters),
		Token:      info.Token,
		Remaining:  max(info.Remaining, 0).Nanoseconds(),
	}
	if !info.Acquired.IsZero() {
		q.Timestamp = info.Acquired.UnixNano()
	}
	return q, true
}

// ReleaseDLock releases lockName if ClientId holds it, handing it to the next waiter. It returns true
// iff this call released the lock; false if the lock was not held by ClientId or the node did not answer
// within timeout milliseconds (default, and for 0, 2500).
func (api *DLockRaftClientAPI) ReleaseDLock(address, lockName string, timeout ...uint32) bool {
	c, ok := api.client(address)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(timeout))
	defer cancel()
	return c.ReleaseOwned(ctx, lockName, api.ClientId, 0) == nil
}

// PutState stores value under key (an empty value stores an empty value) and returns true once the
// cluster has applied it, within timeout milliseconds (default, and for 0, 2500).
func (api *DLockRaftClientAPI) PutState(address, key string, value []byte, timeout ...uint32) bool {
	c, ok := api.client(address)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(timeout))
	defer cancel()
	_, err := c.Put(ctx, key, value)
	return err == nil
}

// GetState returns the value stored under key: nil if the key is missing or the node did not answer
// within timeout milliseconds (default, and for 0, 2500), a non-nil empty slice for an empty value.
func (api *DLockRaftClientAPI) GetState(address, key string, timeout ...uint32) []byte {
	c, ok := api.client(address)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(timeout))
	defer cancel()
	v, err := c.Get(ctx, key)
	if err != nil {
		return nil
	}
	return v
}

// DelState deletes key and returns true iff it existed and was deleted within timeout milliseconds
// (default, and for 0, 2500).
func (api *DLockRaftClientAPI) DelState(address, key string, timeout ...uint32) bool {
	c, ok := api.client(address)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(timeout))
	defer cancel()
	return c.Delete(ctx, key) == nil
}

// ksuidEpoch is KSUID's epoch (2014-05-13T16:53:20Z) in Unix seconds.
const ksuidEpoch = 1400000000

// newKSUID returns an id in the format of github.com/segmentio/ksuid, as the seed generated: 4 bytes of
// seconds since the KSUID epoch and 16 random bytes, in 27 base62 characters (0-9A-Za-z), so ids sort
// by creation time.
func newKSUID(now time.Time) string {
	var b [20]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()-ksuidEpoch))
	_, _ = cryptorand.Read(b[4:]) // crypto/rand.Read never fails
	// big.Int's base 62 digits are 0-9a-zA-Z; KSUID's are 0-9A-Za-z: swap the letters' case.
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, new(big.Int).SetBytes(b[:]).Text(62))
	return strings.Repeat("0", 27-len(s)) + s
}
