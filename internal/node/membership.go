package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// Membership changes run on the leader, one at a time; a follower forwards
// them over the peer plane, as it does a leadership transfer. A node added
// at run time is dialled at the peer address Raft's configuration records
// for it (see addressBook), and reports the client address it was added
// with itself, on the peer plane: the Raft configuration has no room for
// it, and the state machine stays free of membership (ADR 6).

// Errors a membership change can end with. Each leaves the membership as it
// was, except ErrNotCaughtUp.
var (
	// ErrInvalidMember: the change cannot apply to this cluster as asked: an
	// id of 0 or an undialable address, an id that is already a member (with
	// other addresses or another suffrage) or, for a removal, is none, an
	// address another member uses, or a node at peer_address that has
	// another id or belongs to a cluster already.
	ErrInvalidMember = errors.New("dlock: invalid membership change")
	// ErrMembersMax: the cluster has MembersMax members already.
	ErrMembersMax = errors.New("dlock: too many members")
	// ErrChangeInProgress: the leader is running another membership change;
	// retry once it has ended.
	ErrChangeInProgress = errors.New("dlock: another membership change is in progress")
	// ErrLastVoter: the removal would leave the cluster without a voter.
	ErrLastVoter = errors.New("dlock: cannot remove the last voter")
	// ErrMemberUnreachable: the node to add did not answer at its peer
	// address. Start it (with id.join) first.
	ErrMemberUnreachable = errors.New("dlock: node to add is unreachable")
	// ErrNotCaughtUp: the node was added as a non-voter but had not caught up
	// with the leader's log when the call's deadline came. It stays a
	// non-voter and keeps receiving the log; adding it again (same id and
	// addresses) promotes it once it has caught up.
	ErrNotCaughtUp = errors.New("dlock: new member has not caught up with the log")
	// ErrRemoved: this node was removed from its cluster (see New, Removed).
	ErrRemoved = errors.New("dlock: node removed from the cluster")
)

const (
	// MembersMax is the most servers, voters and non-voters, a cluster may
	// have: as many as a configuration file can name (id.peer_id holds at
	// most 8 peers). Every write goes to every member.
	MembersMax = 9
	// memberPollInterval is how often a node looks at Raft's configuration
	// for members whose client address it has not learned and for its own
	// removal. A leader asks a node it adds how far its log has come twice
	// as often.
	memberPollInterval = 100 * time.Millisecond
	// learnBackoffMax caps the wait between attempts to learn the client
	// address of a member that does not answer.
	learnBackoffMax = 5 * time.Second
	// catchUpMarginMax is how long, at most, before the call's deadline the
	// leader stops waiting for a new node to catch up, so that its answer
	// (ErrNotCaughtUp) reaches the caller before the caller gives up.
	catchUpMarginMax = time.Second
)

// clientAddressKey is the key, in the Raft stable store, of the client
// address a node was added with.
var clientAddressKey = []byte("dlock.client_address")

// AddMember adds m to the cluster from any node: as a non-voter, which
// receives the log, then, once its log is within one append of the
// leader's commit index, as a voter (unless !m.Voter). The node must be
// running, started with id.join (or otherwise without Raft state), and
// answer at m.PeerAddress. It returns the leader's view of the members
// after the change. Adding a member again exactly as it is changes nothing
// and succeeds, so a retry is safe; adding a non-voter again as a voter
// promotes it.
//
// The call is bounded by ctx: the new node's catch-up counts against it.
// Errors: ErrInvalidMember, ErrMembersMax, ErrChangeInProgress,
// ErrMemberUnreachable and ErrNotCaughtUp (see each), ErrNoLeader when ctx
// ends before a leader answers (the change may have been made), ErrClosed.
func (n *Node) AddMember(ctx context.Context, m Member) ([]Member, error) {
	if err := checkNewMember(m); err != nil {
		return nil, err
	}
	return throughLeader(ctx, n, func() ([]Member, error) { return n.addOnce(ctx, m) })
}

// RemoveMember removes the member with id from the cluster, from any node,
// and returns the leader's view of the members after the change. Removing
// the leader hands leadership to another voter first. The removed node, if
// it runs, learns of its removal (see Removed) and stops taking part.
//
// Errors: ErrInvalidMember (no member with id), ErrLastVoter,
// ErrChangeInProgress, ErrNoLeader when ctx ends before a leader answers
// (the member may have been removed), ErrClosed.
func (n *Node) RemoveMember(ctx context.Context, id uint32) ([]Member, error) {
	if id == 0 {
		return nil, fmt.Errorf("%w: id: 0 is reserved; use 1..4294967295", ErrInvalidMember)
	}
	return throughLeader(ctx, n, func() ([]Member, error) { return n.removeOnce(ctx, id) })
}

// Removed returns a channel that is closed (never sent on) once this node
// learns that the cluster removed it: its Raft configuration no longer
// lists it, or the leader told it so. The other nodes refuse a removed
// node's votes, so it cannot disrupt them; `dlock serve` stops when the
// channel closes.
func (n *Node) Removed() <-chan struct{} { return n.removed }

func (n *Node) markRemoved(why string) {
	n.removedOnce.Do(func() {
		n.log.Warn("this node was removed from the cluster", "why", why)
		close(n.removed)
	})
}

// checkNewMember checks what can be checked of m without the cluster.
func checkNewMember(m Member) error {
	var errs []error
	if m.ID == 0 {
		errs = append(errs, errors.New("id: 0 is reserved; use 1..4294967295"))
	}
	if err := config.CheckDialAddress("peer_address", m.PeerAddress); err != nil {
		errs = append(errs, err)
	}
	if err := config.CheckDialAddress("client_address", m.ClientAddress); err != nil {
		errs = append(errs, err)
	}
	if m.PeerAddress != "" && m.PeerAddress == m.ClientAddress {
		errs = append(errs, fmt.Errorf("client_address: %q repeats peer_address; a node serves Raft and clients on distinct ports", m.ClientAddress))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidMember, errors.Join(errs...))
}

func (n *Node) addOnce(ctx context.Context, m Member) ([]Member, error) {
	if n.isReady() {
		return n.leaderAddMember(ctx, m)
	}
	c, err := n.leaderPeer()
	if err != nil {
		return nil, err
	}
	resp, err := c.AddMember(ctx, &peerpb.AddMemberRequest{Member: toPeerMember(m)})
	if err != nil {
		return nil, fromMemberStatus(err)
	}
	return fromPeerMembers(resp.Members), nil
}

func (n *Node) removeOnce(ctx context.Context, id uint32) ([]Member, error) {
	if n.isReady() {
		return n.leaderRemoveMember(ctx, id)
	}
	c, err := n.leaderPeer()
	if err != nil {
		return nil, err
	}
	resp, err := c.RemoveMember(ctx, &peerpb.RemoveMemberRequest{Id: id})
	if err != nil {
		return nil, fromMemberStatus(err)
	}
	return fromPeerMembers(resp.Members), nil
}

// leaderPeer returns a peer client of the leader, or errNotLeader.
func (n *Node) leaderPeer() (peerpb.PeerClient, error) {
	addr, ok := n.leaderAddress()
	if !ok {
		return nil, errNotLeader
	}
	return n.peers.client(addr)
}

// addPlan is what an AddMember has left to do.
type addPlan int

const (
	addNew     addPlan = iota // add as a non-voter, then promote unless asked not to
	addPromote                // a non-voter already: promote it
	addNothing                // a member as asked already
)

// leaderAddMember runs AddMember on the leader.
func (n *Node) leaderAddMember(ctx context.Context, m Member) ([]Member, error) {
	if !n.changing.TryLock() {
		return nil, fmt.Errorf("%w: adding node %d must wait", ErrChangeInProgress, m.ID)
	}
	defer n.changing.Unlock()
	plan, err := n.planAdd(m)
	if err != nil {
		return nil, err
	}
	if plan == addNothing {
		return n.leaderMembers(), nil
	}
	if err := n.admit(ctx, m, plan == addPromote); err != nil {
		return nil, err
	}
	var index uint64
	if plan == addNew {
		f := n.raft.AddNonvoter(serverID(m.ID), raft.ServerAddress(m.PeerAddress), 0, n.timing.ApplyTimeout)
		if err := f.Error(); err != nil {
			return nil, fmt.Errorf("dlock: add node %d as a non-voter: %w", m.ID, err)
		}
		index = f.Index()
		n.log.Info("added a non-voter", "id", m.ID, "peer", m.PeerAddress, "client", m.ClientAddress, "index", index)
	}
	if m.Voter {
		if err := n.waitCaughtUp(ctx, m, index); err != nil {
			return nil, err
		}
		// prevIndex fails the promotion if the configuration changed since
		// the non-voter was added (another leader's change in between).
		f := n.raft.AddVoter(serverID(m.ID), raft.ServerAddress(m.PeerAddress), index, n.timing.ApplyTimeout)
		if err := f.Error(); err != nil {
			return nil, fmt.Errorf("dlock: promote node %d to a voter: %w", m.ID, err)
		}
		n.log.Info("promoted to a voter", "id", m.ID, "index", f.Index())
	}
	return n.leaderMembers(), nil
}

// planAdd checks m against the latest configuration and says what is left
// to do.
func (n *Node) planAdd(m Member) (addPlan, error) {
	servers := n.book.servers()
	id := serverID(m.ID)
	plan := addNew
	for _, s := range servers {
		d := n.book.describe(s)
		if s.ID == id {
			var err error
			if plan, err = planExisting(s, d, m); err != nil {
				return plan, err
			}
			continue
		}
		for _, a := range []string{string(s.Address), d.PeerAddress, d.ClientAddress} {
			if a != "" && (a == m.PeerAddress || a == m.ClientAddress) {
				return addNew, fmt.Errorf("%w: address %s is in use by node %d", ErrInvalidMember, a, d.ID)
			}
		}
	}
	if f, ok := n.book.byID[id]; ok && plan == addNew && f.PeerAddress != m.PeerAddress {
		// The nodes whose files name the id dial it at the file's address.
		return addNew, fmt.Errorf("%w: node %d is named in the configuration file at peer address %s; add it there, or under another id",
			ErrInvalidMember, m.ID, f.PeerAddress)
	}
	if plan == addNew && len(servers) >= MembersMax {
		return addNew, fmt.Errorf("%w: the cluster has %d members, the most it may have", ErrMembersMax, len(servers))
	}
	return plan, nil
}

// planExisting decides an add of m when server s has its id already.
func planExisting(s raft.Server, d config.Member, m Member) (addPlan, error) {
	voter := s.Suffrage == raft.Voter
	sameAddrs := string(s.Address) == m.PeerAddress && (d.ClientAddress == "" || d.ClientAddress == m.ClientAddress)
	switch {
	case sameAddrs && voter == m.Voter:
		return addNothing, nil
	case sameAddrs && !voter && m.Voter:
		return addPromote, nil
	}
	return addNew, fmt.Errorf("%w: node %d is a member already (%s, peer %s, client %s); remove it first to change it",
		ErrInvalidMember, m.ID, suffrage(voter), s.Address, orUnknown(d.ClientAddress))
}

func suffrage(voter bool) string {
	if voter {
		return "voter"
	}
	return "non-voter"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// admit checks that the node at m.PeerAddress is node m.ID and, unless it
// is being promoted, belongs to no cluster yet, then tells it the client
// address it is added with.
func (n *Node) admit(ctx context.Context, m Member, promote bool) error {
	d, err := n.describePeer(ctx, m.PeerAddress)
	if err != nil {
		return n.unreachable(ctx, m, err)
	}
	switch {
	case d.Id != m.ID:
		return fmt.Errorf("%w: the node at %s is node %d, not node %d", ErrInvalidMember, m.PeerAddress, d.Id, m.ID)
	case d.Configured && !promote:
		return fmt.Errorf("%w: node %d at %s belongs to a cluster already; start it with an empty data directory and id.join: true",
			ErrInvalidMember, m.ID, m.PeerAddress)
	}
	c, err := n.peers.client(m.PeerAddress)
	if err != nil {
		return n.unreachable(ctx, m, err)
	}
	jctx, cancel := context.WithTimeout(ctx, n.timing.TransportTimeout)
	defer cancel()
	if _, err := c.Join(jctx, &peerpb.JoinRequest{Id: m.ID, ClientAddress: m.ClientAddress}); err != nil {
		return n.unreachable(ctx, m, err)
	}
	n.book.learn(serverID(m.ID), m.PeerAddress, m.ClientAddress)
	return nil
}

func (n *Node) unreachable(ctx context.Context, m Member, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: node %d at %s: %v", ErrMemberUnreachable, m.ID, m.PeerAddress, status.Convert(err).Message())
}

// describePeer asks the node at address who it is and how far its log is.
// A connection the network reset (a partition healing resets every stream
// that stalled in it) fails the first call on it; the call is retried on a
// fresh connection until the transport timeout, so an operator adding a
// node right after a network fault is not told it is unreachable.
func (n *Node) describePeer(ctx context.Context, address string) (*peerpb.DescribeResponse, error) {
	c, err := n.peers.client(address)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.timing.TransportTimeout)
	defer cancel()
	for {
		d, err := c.Describe(ctx, &peerpb.DescribeRequest{})
		if status.Code(err) != codes.Unavailable {
			return d, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(describeRetryPause):
		}
	}
}

// describeRetryPause spaces the retries of a Describe that found the
// connection down, so a peer that is really gone is not dialled in a spin.
const describeRetryPause = 50 * time.Millisecond

// waitCaughtUp polls the node being added until its log holds the entry
// that added it (index) and is within one append (MaxAppendEntries) of the
// leader's commit index. hashicorp/raft keeps each follower's match index
// to itself, so the leader asks the node for its last log index over the
// peer plane instead; that also proves the node is still up. The wait ends
// a margin before ctx's deadline (a fifth of the time left, at most
// catchUpMarginMax) with ErrNotCaughtUp.
func (n *Node) waitCaughtUp(ctx context.Context, m Member, index uint64) error {
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wctx, cancel = context.WithTimeout(ctx, left-min(left/5, catchUpMarginMax))
	}
	defer cancel()
	tick := time.NewTicker(memberPollInterval / 2)
	defer tick.Stop()
	slack := uint64(n.timing.MaxAppendEntries)
	var have uint64
	var lastErr error
	for {
		d, err := n.describePeer(wctx, m.PeerAddress)
		commit := n.raft.CommitIndex()
		if err == nil {
			have, lastErr = d.LastIndex, nil
			if d.LastIndex >= index && d.LastIndex+slack >= commit {
				return nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: node %d has %d entries of the leader's %d committed (last error: %v); it stays a non-voter and receives the log: add it again to promote it",
				ErrNotCaughtUp, m.ID, have, commit, lastErr)
		case <-n.stop:
			return ErrClosed
		case <-tick.C:
		}
		if n.raft.State() != raft.Leader {
			// The next leader resumes the promotion (see planAdd).
			return raft.ErrLeadershipLost
		}
	}
}

// leaderRemoveMember runs RemoveMember on the leader. Removing the leader
// itself hands leadership over and returns errNotLeader, so that the call
// is retried through the new leader.
func (n *Node) leaderRemoveMember(ctx context.Context, id uint32) ([]Member, error) {
	if !n.changing.TryLock() {
		return nil, fmt.Errorf("%w: removing node %d must wait", ErrChangeInProgress, id)
	}
	defer n.changing.Unlock()
	servers := n.book.servers()
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return s.ID == serverID(id) })
	if i < 0 {
		return nil, fmt.Errorf("%w: no member with id %d (members: %s)", ErrInvalidMember, id, serverIDs(servers))
	}
	s := servers[i]
	if s.Suffrage == raft.Voter && countVoters(servers) == 1 {
		return nil, fmt.Errorf("%w: node %d is the only voter", ErrLastVoter, id)
	}
	if id == n.ID() {
		if err := n.leaderTransfer(0); err != nil {
			return nil, err
		}
		n.log.Info("handed leadership over before removing this node")
		return nil, errNotLeader
	}
	peer := n.book.describe(s).PeerAddress
	f := n.raft.RemoveServer(s.ID, 0, n.timing.ApplyTimeout)
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("dlock: remove node %d: %w", id, err)
	}
	n.log.Info("removed a member", "id", id, "index", f.Index())
	n.tellRemoved(ctx, id, peer)
	return n.leaderMembers(), nil
}

// tellRemoved tells the removed node so, best effort: Raft stops
// replicating to a removed server, which may never learn of the entry that
// removed it.
func (n *Node) tellRemoved(ctx context.Context, id uint32, address string) {
	c, err := n.peers.client(address)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, n.timing.TransportTimeout)
		_, err = c.Removed(rctx, &peerpb.RemovedRequest{Id: id})
		cancel()
	}
	if err != nil {
		n.log.Info("could not tell a removed node of its removal", "id", id, "err", err)
	}
}

// leaderMembers is members as this leader sees them.
func (n *Node) leaderMembers() []Member { return n.members(serverID(n.ID())) }

func countVoters(servers []raft.Server) int {
	c := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// describeServers lists servers as "1 voter, 2 nonvoter, ...", for logs.
func describeServers(servers []raft.Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = string(s.ID) + " " + suffrage(s.Suffrage == raft.Voter)
	}
	return strings.Join(parts, ", ")
}

func serverIDs(servers []raft.Server) string {
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	return strings.Join(ids, ", ")
}

// members is this node's view of the latest configuration, by id, with
// leader marked.
func (n *Node) members(leader raft.ServerID) []Member {
	servers := n.book.servers()
	ms := make([]Member, 0, len(servers))
	for _, s := range servers {
		d := n.book.describe(s)
		ms = append(ms, Member{ID: parseID(s.ID), PeerAddress: d.PeerAddress, ClientAddress: d.ClientAddress,
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return ms
}

// checkNotRemoved fails for a node that has Raft state whose configuration
// no longer lists it: it was removed while it was down, or stopped after
// its removal. A joining node (id.join) may be in no configuration yet.
func (n *Node) checkNotRemoved() error {
	servers := n.book.servers()
	if n.cfg.ID.Join || len(servers) == 0 || slices.ContainsFunc(servers, n.isSelf) {
		return nil
	}
	return fmt.Errorf("%w: node %d is not in its cluster's configuration (members %s); to add it again, empty its data directory, set id.join: true, start it and run dlock cluster member add",
		ErrRemoved, n.ID(), serverIDs(servers))
}

func (n *Node) isSelf(s raft.Server) bool { return s.ID == serverID(n.ID()) }

// loadClientAddress reads the client address this node was added with, if
// it joined a running cluster.
func (n *Node) loadClientAddress() error {
	v, err := n.store.Get(clientAddressKey)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dlock: read the recorded client address: %w", err)
	}
	s := string(v)
	n.book.selfClient.Store(&s)
	return nil
}

// watchMembers runs for the node's life: it notices when the latest Raft
// configuration drops this node (once it had listed it), and learns the
// client addresses of members the configuration file does not name by
// asking them, retrying one that does not answer with a growing backoff.
func (n *Node) watchMembers() {
	defer n.workers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n.workers.Add(1)
	go func() {
		defer n.workers.Done()
		select {
		case <-n.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	listed := slices.ContainsFunc(n.book.servers(), n.isSelf)
	seen := describeServers(n.book.servers())
	retry := make(map[raft.ServerID]learnRetry)
	tick := time.NewTicker(memberPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		servers := n.book.servers()
		if now := describeServers(servers); now != seen && len(servers) > 0 {
			if seen != "" {
				n.log.Info("cluster members changed", "members", now, "before", seen)
			}
			seen = now
		}
		switch {
		case slices.ContainsFunc(servers, n.isSelf):
			listed = true
		case listed && len(servers) > 0:
			n.markRemoved("the Raft configuration no longer lists it")
		}
		n.learnClientAddresses(ctx, servers, retry)
	}
}

// learnRetry is when to ask an unanswering member again, and the backoff.
type learnRetry struct {
	at      time.Time
	backoff time.Duration
}

func (n *Node) learnClientAddresses(ctx context.Context, servers []raft.Server, retry map[raft.ServerID]learnRetry) {
	now := time.Now()
	for _, s := range n.book.unresolved(servers) {
		r := retry[s.ID]
		if now.Before(r.at) {
			continue
		}
		d, err := n.describePeer(ctx, string(s.Address))
		if err == nil && serverID(d.Id) == s.ID {
			n.book.learn(s.ID, string(s.Address), d.ClientAddress)
			delete(retry, s.ID)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.backoff = min(max(2*r.backoff, memberPollInterval), learnBackoffMax)
		r.at = time.Now().Add(r.backoff)
		retry[s.ID] = r
	}
}

// The peer service's membership calls.

func (p *peerService) AddMember(ctx context.Context, req *peerpb.AddMemberRequest) (*peerpb.MembersResponse, error) {
	if !p.n.isReady() {
		return nil, status.Error(codes.FailedPrecondition, "dlock: not the leader")
	}
	m := fromPeerMember(req.GetMember())
	if err := checkNewMember(m); err != nil {
		return nil, toMemberStatus(err)
	}
	ms, err := p.n.leaderAddMember(ctx, m)
	if err != nil {
		return nil, toMemberStatus(err)
	}
	return &peerpb.MembersResponse{Members: toPeerMembers(ms)}, nil
}

func (p *peerService) RemoveMember(ctx context.Context, req *peerpb.RemoveMemberRequest) (*peerpb.MembersResponse, error) {
	if !p.n.isReady() {
		return nil, status.Error(codes.FailedPrecondition, "dlock: not the leader")
	}
	ms, err := p.n.leaderRemoveMember(ctx, req.GetId())
	if err != nil {
		return nil, toMemberStatus(err)
	}
	return &peerpb.MembersResponse{Members: toPeerMembers(ms)}, nil
}

func (p *peerService) Describe(context.Context, *peerpb.DescribeRequest) (*peerpb.DescribeResponse, error) {
	return p.n.describeSelf(), nil
}

func (p *peerService) Join(_ context.Context, req *peerpb.JoinRequest) (*peerpb.DescribeResponse, error) {
	n := p.n
	if req.GetId() != n.ID() {
		return nil, status.Errorf(codes.InvalidArgument, "dlock: this is node %d, not node %d", n.ID(), req.GetId())
	}
	if err := config.CheckDialAddress("client_address", req.GetClientAddress()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := n.store.Set(clientAddressKey, []byte(req.GetClientAddress())); err != nil {
		return nil, status.Errorf(codes.Internal, "dlock: record the client address: %v", err)
	}
	addr := req.GetClientAddress()
	n.book.selfClient.Store(&addr)
	n.log.Info("the leader is adding this node", "client_address", addr)
	return n.describeSelf(), nil
}

func (p *peerService) Removed(_ context.Context, req *peerpb.RemovedRequest) (*peerpb.RemovedResponse, error) {
	if req.GetId() != p.n.ID() {
		return nil, status.Errorf(codes.InvalidArgument, "dlock: this is node %d, not node %d", p.n.ID(), req.GetId())
	}
	p.n.markRemoved("the leader removed it")
	return &peerpb.RemovedResponse{}, nil
}

func (n *Node) describeSelf() *peerpb.DescribeResponse {
	client := n.cfg.Network.SelfCliAddress
	if c := n.book.selfClient.Load(); c != nil && *c != "" {
		client = *c
	}
	return &peerpb.DescribeResponse{
		Id:            n.ID(),
		ClientAddress: client,
		LastIndex:     n.raft.LastIndex(),
		AppliedIndex:  n.replica.appliedIndex(),
		Configured:    len(n.book.servers()) > 0,
	}
}

// Membership outcomes cross the peer plane as Aborted (which the
// forwarding node does not retry) with an ErrorInfo naming the sentinel.
const memberErrorDomain = "dlock.peer"

var memberErrors = map[string]error{
	"INVALID_MEMBER":     ErrInvalidMember,
	"MEMBERS_MAX":        ErrMembersMax,
	"CHANGE_IN_PROGRESS": ErrChangeInProgress,
	"LAST_VOTER":         ErrLastVoter,
	"MEMBER_UNREACHABLE": ErrMemberUnreachable,
	"NOT_CAUGHT_UP":      ErrNotCaughtUp,
}

// toMemberStatus turns a membership failure on the leader into the peer
// plane's status.
func toMemberStatus(err error) error {
	for reason, sentinel := range memberErrors {
		if errors.Is(err, sentinel) {
			st := status.New(codes.Aborted, err.Error())
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: memberErrorDomain}); derr == nil {
				st = d
			}
			return st.Err()
		}
	}
	switch {
	case retryable(err), errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromMemberStatus turns the leader's answer back into the sentinel it
// carries; other errors stay as they are, for throughLeader to judge.
func fromMemberStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == memberErrorDomain {
			if sentinel, ok := memberErrors[info.GetReason()]; ok {
				return &leaderError{kind: sentinel, msg: st.Message()}
			}
		}
	}
	return err
}

// leaderError is a membership failure the leader reported: its message,
// wrapping the sentinel.
type leaderError struct {
	kind error
	msg  string
}

func (e *leaderError) Error() string { return e.msg }
func (e *leaderError) Unwrap() error { return e.kind }

func toPeerMember(m Member) *peerpb.Member {
	return &peerpb.Member{Id: m.ID, PeerAddress: m.PeerAddress, ClientAddress: m.ClientAddress, Voter: m.Voter, Leader: m.Leader}
}

func fromPeerMember(m *peerpb.Member) Member {
	return Member{ID: m.GetId(), PeerAddress: m.GetPeerAddress(), ClientAddress: m.GetClientAddress(), Voter: m.GetVoter(), Leader: m.GetLeader()}
}

func toPeerMembers(ms []Member) []*peerpb.Member {
	out := make([]*peerpb.Member, len(ms))
	for i, m := range ms {
		out[i] = toPeerMember(m)
	}
	return out
}

func fromPeerMembers(ms []*peerpb.Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = fromPeerMember(m)
	}
	return out
}
