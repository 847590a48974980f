package node

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// addressBook resolves Raft server IDs to addresses. A member the
// configuration file names is dialled at the address the file gives
// (peer_address), not at the address in Raft's configuration: a node whose
// self_address binds 0.0.0.0 is then reached at the name its peers know it
// by, as in the seed's Docker configs. A member added at run time (dlock
// cluster member add) is dialled at the address its AddNonvoter recorded in
// Raft's configuration, and its client address is the one it reports on
// the peer plane (see watchMembers). It is safe for concurrent use.
type addressBook struct {
	selfID raft.ServerID
	// byID holds the configuration file's members. It never changes.
	byID map[raft.ServerID]config.Member
	// raft is set once Raft runs; the book then reads its configuration.
	raft atomic.Pointer[raft.Raft]
	// selfClient is the client address this node was added with, if it
	// joined a running cluster ("" otherwise).
	selfClient atomic.Pointer[string]

	mu      sync.Mutex
	learned map[raft.ServerID]learnedMember // members byID does not name
}

// learnedMember is what a member the configuration file does not name said
// about itself, at the peer address it answered on.
type learnedMember struct {
	peerAddress   string
	clientAddress string
}

func newAddressBook(self uint32, ms []config.Member) *addressBook {
	b := &addressBook{
		selfID:  serverID(self),
		byID:    make(map[raft.ServerID]config.Member, len(ms)),
		learned: make(map[raft.ServerID]learnedMember),
	}
	for _, m := range ms {
		b.byID[serverID(m.ID)] = m
	}
	return b
}

// ServerAddr implements raft.ServerAddressProvider: the configuration
// file's address, else the one in Raft's latest configuration. An ID known
// to neither makes the transport use the address Raft passed it.
func (b *addressBook) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if m, ok := b.byID[id]; ok {
		return raft.ServerAddress(m.PeerAddress), nil
	}
	if s, ok := b.server(id); ok {
		return s.Address, nil
	}
	return "", errUnknownServer
}

func (b *addressBook) self(id uint32) string { return b.byID[serverID(id)].PeerAddress }

// servers returns Raft's latest configuration (committed or not), or nil
// before Raft runs or while this node has none (it waits to join).
func (b *addressBook) servers() []raft.Server {
	r := b.raft.Load()
	if r == nil {
		return nil
	}
	return r.GetConfiguration().Configuration().Servers
}

func (b *addressBook) server(id raft.ServerID) (raft.Server, bool) {
	for _, s := range b.servers() {
		if s.ID == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// member returns a voter of Raft's latest configuration with its
// addresses (before Raft runs, a member the configuration file names).
func (b *addressBook) member(id raft.ServerID) (config.Member, bool) {
	if b.raft.Load() == nil {
		m, ok := b.byID[id]
		return m, ok
	}
	s, ok := b.server(id)
	if !ok || s.Suffrage != raft.Voter {
		return config.Member{}, false
	}
	return b.describe(s), true
}

// describe returns server s's addresses: the configuration file's, else
// Raft's peer address and the client address the member reported ("" until
// it has).
func (b *addressBook) describe(s raft.Server) config.Member {
	m, ok := b.byID[s.ID]
	if !ok {
		m = config.Member{ID: parseID(s.ID), PeerAddress: string(s.Address)}
		b.mu.Lock()
		if l, ok := b.learned[s.ID]; ok && l.peerAddress == m.PeerAddress {
			m.ClientAddress = l.clientAddress
		}
		b.mu.Unlock()
	}
	if s.ID == b.selfID {
		if c := b.selfClient.Load(); c != nil && *c != "" {
			m.ClientAddress = *c
		}
	}
	return m
}

// learn records the client address a member reported at peerAddress.
func (b *addressBook) learn(id raft.ServerID, peerAddress, clientAddress string) {
	b.mu.Lock()
	b.learned[id] = learnedMember{peerAddress: peerAddress, clientAddress: clientAddress}
	b.mu.Unlock()
}

// unresolved returns the servers of servers that the configuration file
// does not name and whose client address is not known at their current
// peer address, and forgets what it learned of servers no longer there.
func (b *addressBook) unresolved(servers []raft.Server) []raft.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	present := make(map[raft.ServerID]bool, len(servers))
	var out []raft.Server
	for _, s := range servers {
		present[s.ID] = true
		if _, static := b.byID[s.ID]; static || s.ID == b.selfID {
			continue
		}
		if l, ok := b.learned[s.ID]; !ok || l.peerAddress != string(s.Address) {
			out = append(out, s)
		}
	}
	for id := range b.learned {
		if !present[id] {
			delete(b.learned, id)
		}
	}
	return out
}

type errString string

func (e errString) Error() string { return string(e) }

const errUnknownServer = errString("server id not in the configuration")

// peerClients caches one gRPC connection per peer address.
type peerClients struct {
	dial    func(address string, timeout time.Duration, proto byte) (net.Conn, error)
	timeout time.Duration
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	closed  bool
}

func newPeerClients(dial func(string, time.Duration, byte) (net.Conn, error), timeout time.Duration) *peerClients {
	return &peerClients{dial: dial, timeout: timeout, conns: make(map[string]*grpc.ClientConn)}
}

func (p *peerClients) client(address string) (peerpb.PeerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errString("node is closed")
	}
	if c, ok := p.conns[address]; ok {
		return peerpb.NewPeerClient(c), nil
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		t := p.timeout
		if dl, ok := ctx.Deadline(); ok {
			t = time.Until(dl)
		}
		return p.dial(addr, t, protoPeer)
	}
	c, err := grpc.NewClient("passthrough:///"+address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dial))
	if err != nil {
		return nil, err
	}
	p.conns[address] = c
	return peerpb.NewPeerClient(c), nil
}

func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for a, c := range p.conns {
		c.Close()
		delete(p.conns, a)
	}
}
