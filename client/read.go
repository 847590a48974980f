package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// LockInfo is a lock's state as one node reported it.
type LockInfo struct {
	Name string
	// Owner holds the lock; "" when the lock is free (a released lock keeps its record so that its
	// nonce keeps counting).
	Owner string
	// Token is the fencing token of the current (or last) hold.
	Token uint64
	// Nonce counts the grants of this lock.
	Nonce uint64
	// TTL is the lease the current hold was granted with.
	TTL time.Duration
	// Remaining is the lease left as the answering node saw it; a lower bound for the holder only if
	// the read was linearizable, and always approximate for anyone else.
	Remaining time.Duration
	// Acquired is the leader's wall clock at the last grant (display only; zero if never granted).
	Acquired time.Time
	// Waiters is the number of owners queued for the lock.
	Waiters int
}

// Held reports whether the lock had an owner when read.
func (i LockInfo) Held() bool { return i.Owner != "" }

func lockInfo(p *dlockv1.LockInfo) LockInfo {
	info := LockInfo{
		Name:      p.GetName(),
		Owner:     p.GetOwner(),
		Token:     p.GetToken(),
		Nonce:     p.GetNonce(),
		TTL:       time.Duration(p.GetTtlMs()) * time.Millisecond,
		Remaining: time.Duration(p.GetRemainingMs()) * time.Millisecond,
		Waiters:   int(p.GetWaiters()),
	}
	if ns := p.GetAcquiredUnixNano(); ns != 0 {
		info.Acquired = time.Unix(0, ns)
	}
	return info
}

// Query returns the named lock's state. It fails with ErrNotFound if the lock was never acquired; a
// released lock is found, with an empty Owner. The read is linearizable unless Stale.
func (c *Client) Query(ctx context.Context, name string, opts ...ReadOption) (LockInfo, error) {
	if name == "" {
		return LockInfo{}, invalidf("empty lock name")
	}
	req := &dlockv1.QueryRequest{Name: name, Stale: readOpts(opts).stale}
	var resp *dlockv1.QueryResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewLockClient(cc).Query(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return LockInfo{}, err
	}
	return lockInfo(resp.GetLock()), nil
}

// Locks returns the locks whose names start with prefix ("" for all), in name order, fetching page
// after page until the listing is complete or ctx ends. Each page is read linearizably unless Stale,
// but the listing as a whole is not a snapshot.
func (c *Client) Locks(ctx context.Context, prefix string, opts ...ReadOption) ([]LockInfo, error) {
	stale := readOpts(opts).stale
	var out []LockInfo
	after := ""
	for {
		req := &dlockv1.ListLocksRequest{Prefix: prefix, StartAfter: after, Stale: stale}
		var resp *dlockv1.ListLocksResponse
		err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
			r, err := dlockv1.NewLockClient(cc).List(ctx, req)
			resp = r
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, p := range resp.GetLocks() {
			out = append(out, lockInfo(p))
		}
		if !resp.GetMore() {
			return out, nil
		}
		next, err := nextPage(after, len(resp.GetLocks()), func() string { return out[len(out)-1].Name })
		if err != nil {
			return nil, err
		}
		after = next
	}
}

// nextPage returns where the next page starts, refusing a page that would not move the listing on (a
// server bug that would otherwise loop for ever).
func nextPage(after string, n int, last func() string) (string, error) {
	if n == 0 || last() <= after {
		return "", fmt.Errorf("dlock: listing did not advance after %q", after)
	}
	return last(), nil
}

// Put stores value under key and reports whether the key was created (false: replaced). A nil or
// empty value stores an empty value. Retries reuse the request header, so the write is applied once; if
// Put fails with ErrUnavailable or a context error it may still have been applied.
func (c *Client) Put(ctx context.Context, key string, value []byte) (created bool, err error) {
	if key == "" {
		return false, invalidf("empty key")
	}
	hdr, done := c.header()
	defer done()
	req := &dlockv1.PutRequest{Header: hdr, Key: key, Value: value}
	var resp *dlockv1.PutResponse
	err = c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewKVClient(cc).Put(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return false, err
	}
	return resp.GetCreated(), nil
}

// Get returns the value stored under key, never nil on success (an empty value is an empty, non-nil
// slice). It fails with ErrNotFound for a missing key. The read is linearizable unless Stale.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) ([]byte, error) {
	if key == "" {
		return nil, invalidf("empty key")
	}
	req := &dlockv1.GetRequest{Key: key, Stale: readOpts(opts).stale}
	var resp *dlockv1.GetResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewKVClient(cc).Get(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.GetValue() == nil {
		return []byte{}, nil
	}
	return resp.GetValue(), nil
}

// Delete removes key. It fails with ErrNotFound for a missing key. Retries reuse the request header; a
// retry of a delete that was applied gets the first attempt's answer. If Delete fails with
// ErrUnavailable or a context error it may still have been applied.
func (c *Client) Delete(ctx context.Context, key string) error {
	if key == "" {
		return invalidf("empty key")
	}
	hdr, done := c.header()
	defer done()
	req := &dlockv1.DeleteRequest{Header: hdr, Key: key}
	return c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := dlockv1.NewKVClient(cc).Delete(ctx, req)
		return err
	})
}

// Keys returns the keys that start with prefix ("" for all), in order, fetching page after page until
// the listing is complete or ctx ends. Each page is read linearizably unless Stale.
func (c *Client) Keys(ctx context.Context, prefix string, opts ...ReadOption) ([]string, error) {
	stale := readOpts(opts).stale
	var out []string
	after := ""
	for {
		req := &dlockv1.ListKeysRequest{Prefix: prefix, StartAfter: after, Stale: stale, KeysOnly: true}
		var resp *dlockv1.ListKeysResponse
		err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
			r, err := dlockv1.NewKVClient(cc).List(ctx, req)
			resp = r
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.GetKvs() {
			out = append(out, kv.GetKey())
		}
		if !resp.GetMore() {
			return out, nil
		}
		next, err := nextPage(after, len(resp.GetKvs()), func() string { return out[len(out)-1] })
		if err != nil {
			return nil, err
		}
		after = next
	}
}

// Status is one node's view of the cluster.
type Status struct {
	// Endpoint is the endpoint that answered.
	Endpoint string
	// NodeID is the answering node's id.
	NodeID uint32
	// State is the answering node's Raft state: Leader, Follower or Candidate.
	State    string
	LeaderID uint32
	Term     uint64
	// CommitIndex and AppliedIndex are the node's Raft log positions.
	CommitIndex  uint64
	AppliedIndex uint64
	Members      []Member
	// Ready is true when the node has a leader and serves requests.
	Ready bool
}

// Member is one node of the cluster's configuration.
type Member struct {
	ID            uint32
	PeerAddress   string
	ClientAddress string
	// Voter is false for a non-voting member.
	Voter  bool
	Leader bool
}

// Status returns the view of whichever endpoint answers first (the one that answered last, or the next
// if it is unavailable).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var resp *dlockv1.StatusResponse
	var endpoint string
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewClusterClient(cc).Status(ctx, &dlockv1.StatusRequest{})
		resp, endpoint = r, cc.Target()
		return err
	})
	if err != nil {
		return Status{}, err
	}
	s := Status{
		Endpoint: endpoint, NodeID: resp.GetNodeId(), State: resp.GetState(), LeaderID: resp.GetLeaderId(),
		Term: resp.GetTerm(), CommitIndex: resp.GetCommitIndex(), AppliedIndex: resp.GetAppliedIndex(),
		Ready: resp.GetReady(),
	}
	for _, m := range resp.GetMembers() {
		s.Members = append(s.Members, Member{
			ID: m.GetId(), PeerAddress: m.GetPeerAddress(), ClientAddress: m.GetClientAddress(),
			Voter: m.GetSuffrage() != "nonvoter", Leader: m.GetLeader(),
		})
	}
	return s, nil
}

// TransferLeader asks the cluster to hand leadership to voter to (0: the most up-to-date follower),
// before maintenance of the current leader, and returns the new leader's id once it serves. Any
// endpoint accepts the call and passes it to the leader.
func (c *Client) TransferLeader(ctx context.Context, to uint32) (uint32, error) {
	var resp *dlockv1.TransferLeaderResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewClusterClient(cc).TransferLeader(ctx, &dlockv1.TransferLeaderRequest{ToId: to})
		resp = r
		return err
	})
	if err != nil {
		return 0, err
	}
	return resp.GetLeaderId(), nil
}
