package node

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
)

// addressBook resolves Raft server IDs to peer addresses from the
// configuration. Dialling by ID (not by the address in Raft's configuration)
// lets a node whose self_address binds 0.0.0.0 be reached at the name its
// peers know it by, as in the seed's Docker configs.
type addressBook struct {
	byID map[raft.ServerID]config.Member
}

func newAddressBook(ms []config.Member) addressBook {
	b := addressBook{byID: make(map[raft.ServerID]config.Member, len(ms))}
	for _, m := range ms {
		b.byID[serverID(m.ID)] = m
	}
	return b
}

// ServerAddr implements raft.ServerAddressProvider. An unknown ID (a node
// added later) falls back to the address in Raft's configuration.
func (b addressBook) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if m, ok := b.byID[id]; ok {
		return raft.ServerAddress(m.PeerAddress), nil
	}
	return "", errUnknownServer
}

func (b addressBook) self(id uint32) string { return b.byID[serverID(id)].PeerAddress }

// member returns what the configuration says about a server.
func (b addressBook) member(id raft.ServerID) (config.Member, bool) {
	m, ok := b.byID[id]
	return m, ok
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
