package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// Errors a proposal can end with.
var (
	// ErrNoLeader: no leader could be reached before the context ended. A
	// write that failed this way may still have been committed.
	ErrNoLeader = errors.New("dlock: no leader")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("dlock: node closed")
	// errNotLeader: this node does not lead (or does not serve yet); the
	// caller retries through the current leader.
	errNotLeader = errors.New("dlock: not the leader")
)

// batchCommandsMax caps the commands grouped into one Raft entry.
const batchCommandsMax = 512

// proposal is one caller's commands waiting to be batched into an entry.
type proposal struct {
	cmds     []*fsmpb.Command
	internal bool // LeaderStart: allowed before the leader is ready
	done     chan proposalResult
}

type proposalResult struct {
	results []*fsmpb.Result
	index   uint64
	err     error
}

// Propose commits commands and returns one result per command once they
// are applied (on the leader; on this node too, see the returned index).
// From a follower it forwards them to the leader. While there is no leader
// it waits for one until ctx ends. A retry after an error applies a command
// again unless it carries a client id and seq (deduplicated).
func (n *Node) Propose(ctx context.Context, cmds []*fsmpb.Command) ([]*fsmpb.Result, uint64, error) {
	backoff := 5 * time.Millisecond
	for {
		res, idx, err := n.proposeOnce(ctx, cmds)
		if err == nil || !retryable(err) {
			return res, idx, err
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("%w: %v (last error: %v)", ErrNoLeader, ctx.Err(), err)
		case <-n.stop:
			return nil, 0, ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

func (n *Node) proposeOnce(ctx context.Context, cmds []*fsmpb.Command) ([]*fsmpb.Result, uint64, error) {
	if n.isReady() {
		return n.proposeLocal(ctx, cmds, false)
	}
	addr, ok := n.leaderAddress()
	if !ok {
		return nil, 0, errNotLeader
	}
	c, err := n.peers.client(addr)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Propose(ctx, &peerpb.ProposeRequest{Commands: cmds})
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Results) != len(cmds) {
		return nil, 0, fmt.Errorf("dlock: leader at %s answered %d results for %d commands", addr, len(resp.Results), len(cmds))
	}
	return resp.Results, resp.Index, nil
}

// retryable reports whether a proposal may be tried again through the
// (possibly new) leader.
func retryable(err error) bool {
	if errors.Is(err, errNotLeader) || errors.Is(err, raft.ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.FailedPrecondition:
		return true
	}
	return false
}

// leaderAddress returns the peer address of the current leader, if known
// and not this node.
func (n *Node) leaderAddress() (string, bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return "", false
	}
	if id == serverID(n.cfg.ID.SelfID) {
		return "", false
	}
	if m, ok := n.book.member(id); ok {
		return m.PeerAddress, true
	}
	return string(addr), addr != ""
}

// proposeLocal hands commands to the batcher on this leader and waits for
// their results.
func (n *Node) proposeLocal(ctx context.Context, cmds []*fsmpb.Command, internal bool) ([]*fsmpb.Result, uint64, error) {
	p := &proposal{cmds: cmds, internal: internal, done: make(chan proposalResult, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-n.stop:
		return nil, 0, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.results, r.index, r.err
	case <-ctx.Done():
		// The entry may still commit; its result is dropped.
		return nil, 0, ctx.Err()
	case <-n.stop:
		return nil, 0, ErrClosed
	}
}

// inflight is one Raft entry on its way to commit, with its proposals.
type inflight struct {
	future raft.ApplyFuture
	props  []*proposal
}

// runBatcher groups waiting proposals into one Raft entry, stamped with
// cluster time, and hands the entry to a responder so that the next batch
// can be proposed while this one commits.
func (n *Node) runBatcher() {
	defer n.wg.Done()
	pending := make(chan inflight, 64)
	n.wg.Add(1)
	go n.runResponder(pending)
	defer close(pending)
	for {
		var first *proposal
		select {
		case <-n.stop:
			return
		case first = <-n.proposals:
		}
		batch := n.gather(first)
		if f, ok := n.submit(batch); ok {
			pending <- inflight{future: f, props: batch}
		}
	}
}

// gather takes the first proposal and every other one already waiting, up
// to batchCommandsMax commands.
func (n *Node) gather(first *proposal) []*proposal {
	batch := []*proposal{first}
	count := len(first.cmds)
	for count < batchCommandsMax {
		select {
		case p := <-n.proposals:
			batch = append(batch, p)
			count += len(p.cmds)
		default:
			return batch
		}
	}
	return batch
}

// submit stamps and encodes the batch and starts its Raft apply. Proposals
// this node may not serve fail at once with errNotLeader.
func (n *Node) submit(batch []*proposal) (raft.ApplyFuture, bool) {
	stamped, ready, base, start := n.lead.snapshot()
	entry := &fsmpb.Entry{NowNanos: base + int64(n.clock().Sub(start)), WallUnixNanos: time.Now().UnixNano()}
	kept := batch[:0]
	for _, p := range batch {
		if !stamped || (!ready && !p.internal) {
			p.done <- proposalResult{err: errNotLeader}
			continue
		}
		kept = append(kept, p)
		entry.Commands = append(entry.Commands, p.cmds...)
	}
	if len(kept) == 0 {
		return nil, false
	}
	data, err := proto.Marshal(entry)
	if err != nil {
		failAll(kept, fmt.Errorf("dlock: encode entry: %w", err))
		return nil, false
	}
	return n.raft.Apply(data, n.timing.ApplyTimeout), true
}

// runResponder waits for each entry in order and splits its results among
// the proposals it carried.
func (n *Node) runResponder(pending <-chan inflight) {
	defer n.wg.Done()
	for in := range pending {
		props := in.props
		if err := in.future.Error(); err != nil {
			failAll(props, err)
			continue
		}
		out, ok := in.future.Response().(fsm.Output)
		if !ok {
			failAll(props, fmt.Errorf("dlock: unexpected apply response %T", in.future.Response()))
			continue
		}
		idx := in.future.Index()
		i := 0
		for _, p := range props {
			end := i + len(p.cmds)
			if end > len(out.Results) {
				p.done <- proposalResult{err: fmt.Errorf("dlock: entry %d has %d results, want %d", idx, len(out.Results), end)}
				continue
			}
			p.done <- proposalResult{results: out.Results[i:end], index: idx}
			i = end
		}
	}
}

func failAll(props []*proposal, err error) {
	for _, p := range props {
		p.done <- proposalResult{err: err}
	}
}
