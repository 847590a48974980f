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

// Caps on the proposals grouped into one Raft entry. A batch holds at least
// one proposal, whatever its size: the state machine's limits bound that.
const (
	// batchCommandsMax caps the commands in one entry.
	batchCommandsMax = 512
	// batchBytesMax caps the encoded commands in one entry, so that an
	// entry of large values still crosses the peer transport well within
	// its I/O timeout instead of timing out on every retry.
	batchBytesMax = 1 << 20
)

// entriesQueuedMax caps the entries handed to Raft that the responder has not
// yet taken up, so at most entriesQueuedMax+2 entries are in flight (queued,
// one awaited by the responder, one being submitted). While they commit,
// new proposals wait in n.proposals and the next entry carries all of them:
// under load one entry groups many commands (64 clients averaged about 4 a
// entry) and Raft stores, replicates and applies fewer, larger entries; an
// idle cluster proposes at once, so a lone write gains no latency.
const entriesQueuedMax = 1

// proposal is one caller's commands waiting to be batched into an entry.
type proposal struct {
	cmds     []*fsmpb.Command
	bytes    int  // encoded size of cmds, for batchBytesMax
	internal bool // LeaderStart: allowed before the leader is ready
	done     chan proposalResult
}

func newProposal(cmds []*fsmpb.Command, internal bool) *proposal {
	p := &proposal{cmds: cmds, internal: internal, done: make(chan proposalResult, 1)}
	for _, c := range cmds {
		p.bytes += proto.Size(c)
	}
	return p
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
	type answer struct {
		results []*fsmpb.Result
		index   uint64
	}
	a, err := throughLeader(ctx, n, func() (answer, error) {
		res, idx, err := n.proposeOnce(ctx, cmds)
		return answer{res, idx}, err
	})
	return a.results, a.index, err
}

// throughLeader runs once until it succeeds or fails for a reason other
// than the leader being unknown, moving or unreachable, backing off between
// tries, until ctx ends (ErrNoLeader) or the node closes (ErrClosed).
func throughLeader[T any](ctx context.Context, n *Node, once func() (T, error)) (T, error) {
	backoff := 5 * time.Millisecond
	for {
		v, err := once()
		if err == nil || !retryable(err) {
			return v, err
		}
		var zero T
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%w: %v (last error: %v)", ErrNoLeader, ctx.Err(), err)
		case <-n.stop:
			return zero, ErrClosed
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
		return nil, 0, fromPeer(err)
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
// their results. It returns ErrClosed as soon as the node closes.
func (n *Node) proposeLocal(ctx context.Context, cmds []*fsmpb.Command, internal bool) ([]*fsmpb.Result, uint64, error) {
	// Checked first because a select picks at random among ready cases,
	// and a closing node must not take new proposals.
	if n.closing() {
		return nil, 0, ErrClosed
	}
	p := newProposal(cmds, internal)
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
	start  time.Time // when it was handed to Raft, for the apply latency
}

// runBatcher groups waiting proposals into one Raft entry, stamped with
// cluster time, and hands the entry to a responder so that the next batch
// can be proposed while this one commits. It stops when the node closes;
// the callers of proposals it leaves return ErrClosed on their own.
func (n *Node) runBatcher() {
	defer n.workers.Done()
	pending := make(chan inflight, entriesQueuedMax)
	n.workers.Add(1)
	go n.runResponder(pending)
	defer close(pending)
	var next *proposal
	for {
		first := next
		if first == nil {
			select {
			case <-n.stop:
				return
			case first = <-n.proposals:
			}
		}
		if n.closing() {
			return
		}
		var batch []*proposal
		batch, next = n.gather(first)
		f, ok := n.submit(batch)
		if !ok {
			continue
		}
		select {
		case pending <- inflight{future: f, props: batch, start: time.Now()}:
		case <-n.stop:
			// Nobody waits for this entry now; Raft answers its future
			// unheard. Blocking here would stall Close.
			return
		}
	}
}

// closing reports whether Close has begun.
func (n *Node) closing() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// gather takes the first proposal and each other one already waiting
// while the batch stays within batchCommandsMax and batchBytesMax; the
// first is taken even if it alone exceeds them. A waiting proposal that
// does not fit is returned as next, to start the next batch, so no entry
// grows past the caps and proposals keep their order.
func (n *Node) gather(first *proposal) (batch []*proposal, next *proposal) {
	batch = []*proposal{first}
	count, size := len(first.cmds), first.bytes
	for count < batchCommandsMax && size < batchBytesMax {
		select {
		case p := <-n.proposals:
			if count+len(p.cmds) > batchCommandsMax || size+p.bytes > batchBytesMax {
				return batch, p
			}
			batch = append(batch, p)
			count, size = count+len(p.cmds), size+p.bytes
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// submit stamps and encodes the batch and starts its Raft apply. Proposals
// this node may not serve fail at once with errNotLeader.
func (n *Node) submit(batch []*proposal) (raft.ApplyFuture, bool) {
	stamped, ready, base, start := n.lead.snapshot()
	entry := &fsmpb.Entry{NowNanos: base + int64(n.clock().Sub(start)), WallUnixNanos: n.wall().UnixNano()}
	kept := batch[:0]
	full := n.diskFull()
	for _, p := range batch {
		if !stamped || (!ready && !p.internal) {
			p.done <- proposalResult{err: errNotLeader}
			continue
		}
		if full != nil && !p.mayUseReserve() {
			p.done <- proposalResult{err: full}
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
	n.observer.Batched(len(kept), len(entry.Commands))
	return n.raft.Apply(data, n.timing.ApplyTimeout), true
}

// runResponder waits for each entry in order and splits its results among
// the proposals it carried.
func (n *Node) runResponder(pending <-chan inflight) {
	defer n.workers.Done()
	for in := range pending {
		props := in.props
		err := in.future.Error()
		n.observer.Committed(time.Since(in.start), err)
		if err != nil {
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
