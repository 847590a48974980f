// Package node runs one dlock replica: hashicorp/raft with an fsync'd
// segmented log (internal/wal) and a bolt stable store, file snapshots and
// a TCP transport on the peer port, the replicated state machine, leader
// duties (cluster time, lease expiry) and the peer plane through which
// followers forward writes and read indexes to the leader.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/peer/peerpb"
	"github.com/dlock-raft/dlock/internal/wal"
)

// Options configure a Node. Config is required; the rest have defaults.
type Options struct {
	Config *config.Config
	// Logger receives the node's own log lines. Default: slog.Default().
	Logger *slog.Logger
	// RaftLogOutput receives hashicorp/raft's log lines. Default: os.Stderr.
	RaftLogOutput io.Writer
	// Sink receives applied events (see EventSink).
	Sink EventSink
	// Clock is the monotonic clock the leader measures cluster time with
	// (only differences between its readings count). Default time.Now.
	Clock func() time.Time
	// WallClock is the wall clock the leader stamps grants with, for
	// display only: it may jump (an operator or NTP setting it) and no
	// decision depends on it. Default time.Now; tests inject jumps.
	WallClock func() time.Time
	// PeerTLS, if set, makes the peer port mutual TLS (see PeerTLS).
	// Default nil: plaintext.
	PeerTLS PeerTLS
	// Observer is told what the node does, for metrics. Default: nothing.
	Observer Observer
}

// Node is one running replica. Its methods are safe for concurrent use.
type Node struct {
	cfg    *config.Config
	log    *slog.Logger
	clock  func() time.Time
	wall   func() time.Time
	timing config.RaftTiming
	book   *addressBook
	// observer is never nil (nopObserver by default).
	observer Observer
	// raftLog is hashicorp/raft's logger; SetLogLevel changes its level.
	raftLog hclog.Logger

	raft      *raft.Raft
	replica   *replica
	mux       *mux
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore // the stable store: terms, votes, client address
	wal       *wal.Log              // the Raft log
	peerSrv   *grpc.Server
	peers     *peerClients
	peerTLS   PeerTLS

	lead      leaderState
	proposals chan *proposal
	stop      chan struct{}
	// changing is held by the membership change this leader runs; another
	// fails with ErrChangeInProgress rather than wait.
	changing sync.Mutex
	// removed is closed once this node learns the cluster removed it.
	removed     chan struct{}
	removedOnce sync.Once
	// workers counts the goroutines that wait on Raft futures (batcher,
	// responder, leadership watcher, leader duties) or use the peer
	// clients (membership watcher). Close drains them
	// while Raft still runs, because Raft's Shutdown leaves some futures
	// unanswered (hashicorp/raft#498).
	workers sync.WaitGroup
	// wg counts the peer server's goroutine, which ends when it stops.
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens (or creates) the node's data, starts Raft and the peer plane,
// and, if this node has no Raft state yet, bootstraps the cluster from the
// configuration's members, or, with id.join, waits to be added to a running
// cluster (see AddMember). It returns once the node runs; the cluster may
// not have a leader yet (see Ready). A node whose Raft state shows it was
// removed from its cluster fails with ErrRemoved.
func New(opts Options) (*Node, error) {
	n, err := newNode(opts)
	if err != nil {
		return nil, err
	}
	if err := n.checkNotRemoved(); err != nil {
		n.Close()
		return nil, err
	}
	n.start()
	return n, nil
}

func newNode(opts Options) (*Node, error) {
	if opts.Config == nil {
		return nil, errors.New("dlock: node options: Config is required")
	}
	n := &Node{
		cfg:       opts.Config,
		log:       opts.Logger,
		clock:     opts.Clock,
		wall:      opts.WallClock,
		timing:    opts.Config.RaftTiming(),
		book:      newAddressBook(opts.Config.ID.SelfID, opts.Config.Members()),
		proposals: make(chan *proposal, proposalQueueMax),
		stop:      make(chan struct{}),
		removed:   make(chan struct{}),
		peerTLS:   opts.PeerTLS,
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.observer = opts.Observer; n.observer == nil {
		n.observer = nopObserver{}
	}
	if n.clock == nil {
		n.clock = time.Now
	}
	if n.wall == nil {
		n.wall = time.Now
	}
	limits := stateLimits(opts.Config.Limits)
	if err := limits.Validate(); err != nil {
		return nil, fmt.Errorf("dlock: state machine limits: %w", err)
	}
	n.replica = newReplica(limits, opts.Sink, n.clock)
	n.replica.log, n.replica.observer = n.log, n.observer
	out := opts.RaftLogOutput
	if out == nil {
		out = os.Stderr
	}
	if err := n.openRaft(out); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// openRaft opens the stores, the transport and Raft itself, bootstrapping
// a new cluster if there is no state on disk.
func (n *Node) openRaft(logOut io.Writer) error {
	dataDir := n.cfg.DataDir()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("dlock: create data dir %q: %w", dataDir, err)
	}
	logPath := n.cfg.LogStorePath()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return fmt.Errorf("dlock: create log dir %q: %w", filepath.Dir(logPath), err)
	}
	snapIndex, err := checkStorage(n.cfg)
	if err != nil {
		return err
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: logPath})
	if err != nil {
		return fmt.Errorf("dlock: open raft stable store %q: %w", logPath, err)
	}
	n.store = store
	if n.wal, err = openLog(n.cfg, store, snapIndex, n.log); err != nil {
		return err
	}
	if err := n.loadClientAddress(); err != nil {
		return err
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: logOut, Level: hclogLevel(n.cfg.SlogLevel()),
		JSONFormat: n.cfg.Observability.LogFormat == config.LogFormatJSON})
	n.raftLog = hlog
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, snapshotsRetained, hlog)
	if err != nil {
		return fmt.Errorf("dlock: open snapshots in %q: %w", dataDir, err)
	}
	ln, err := net.Listen("tcp", n.cfg.Network.SelfAddress)
	if err != nil {
		return fmt.Errorf("dlock: listen on network.self_address %q: %w", n.cfg.Network.SelfAddress, err)
	}
	n.mux = newMux(ln, n.book.self(n.cfg.ID.SelfID), n.peerTLS, n.log)
	n.peers = newPeerClients(n.mux.dial, n.timing.TransportTimeout)
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: n.book,
		Stream:                raftStream{n.mux},
		MaxPool:               3,
		Timeout:               n.timing.TransportTimeout,
		Logger:                hlog,
	})
	logs, err := raft.NewLogCache(logCacheEntries, n.wal)
	if err != nil {
		return fmt.Errorf("dlock: raft log cache: %w", err)
	}
	rc := n.raftConfig(hlog)
	if err := n.bootstrapIfNew(rc, logs, snaps); err != nil {
		return err
	}
	r, err := raft.NewRaft(rc, n.replica, logs, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("dlock: start raft: %w", err)
	}
	n.raft = r
	n.book.raft.Store(r)
	return nil
}

const (
	snapshotsRetained = 2
	logCacheEntries   = 512
	proposalQueueMax  = 4096
)

func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.FormatUint(uint64(n.cfg.ID.SelfID), 10))
	rc.HeartbeatTimeout = n.timing.HeartbeatTimeout
	rc.ElectionTimeout = n.timing.ElectionTimeout
	rc.LeaderLeaseTimeout = n.timing.LeaderLeaseTimeout
	rc.CommitTimeout = n.timing.CommitTimeout
	rc.MaxAppendEntries = n.timing.MaxAppendEntries
	rc.SnapshotInterval = n.timing.SnapshotInterval
	rc.SnapshotThreshold = n.timing.SnapshotThreshold
	rc.TrailingLogs = n.timing.TrailingLogs
	rc.BatchApplyCh = true
	// A leader that commits its own removal (RemoveMember hands leadership
	// over first, so only in a race) steps down instead of shutting Raft
	// down under the node's feet; watchMembers then notices the removal.
	rc.ShutdownOnRemove = false
	rc.Logger = hlog
	return rc
}

func (n *Node) bootstrapIfNew(rc *raft.Config, logs raft.LogStore, snaps raft.SnapshotStore) error {
	has, err := raft.HasExistingState(logs, n.store, snaps)
	if err != nil {
		return fmt.Errorf("dlock: read raft state: %w", err)
	}
	if has {
		return nil
	}
	if n.cfg.ID.Join {
		n.log.Info("waiting to be added to a running cluster (id.join); run dlock cluster member add on one of its nodes",
			"id", n.cfg.ID.SelfID, "peer_address", n.book.self(n.cfg.ID.SelfID))
		return nil
	}
	var servers []raft.Server
	for _, m := range n.cfg.Members() {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       serverID(m.ID),
			Address:  raft.ServerAddress(m.PeerAddress),
		})
	}
	if err := raft.BootstrapCluster(rc, logs, n.store, snaps, n.transport, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("dlock: bootstrap cluster: %w", err)
	}
	n.log.Info("bootstrapped a new cluster", "members", len(servers))
	return nil
}

// start launches the node's goroutines: the peer gRPC server, the proposal
// batcher and the leadership watcher.
func (n *Node) start() {
	n.peerSrv = grpc.NewServer()
	peerpb.RegisterPeerServer(n.peerSrv, &peerService{n: n})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = n.peerSrv.Serve(n.mux.peer)
	}()
	n.workers.Add(4)
	go n.runBatcher()
	go n.watchLeadership()
	go n.watchMembers()
	go n.watchLeaders()
}

// Close stops the node at once: it takes no new proposals, and callers
// waiting on one return ErrClosed (an in-flight write may or may not
// commit); Raft shuts down, listeners close, goroutines end. Close returns
// within about 2x the apply timeout. Idempotent; the node cannot be reused.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown() })
	return n.closeErr
}

func (n *Node) shutdown() error {
	close(n.stop)
	n.drainWorkers()
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
	}
	if n.peerSrv != nil {
		n.peerSrv.Stop()
	}
	if n.transport != nil {
		n.transport.Close()
	} else if n.mux != nil {
		n.mux.Close()
	}
	if n.peers != nil {
		n.peers.close()
	}
	n.wg.Wait()
	if n.wal != nil {
		if err := n.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft stable store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// drainWorkers waits, after n.stop closed and before Raft shuts down, for
// the goroutines that wait on Raft futures. While Raft runs, every future
// is answered (applied, or failed on lost leadership or timeout); after
// Shutdown some never are, and a worker waiting on one would block forever.
func (n *Node) drainWorkers() {
	done := make(chan struct{})
	go func() {
		n.workers.Wait()
		close(done)
	}()
	wait := 2 * n.timing.ApplyTimeout
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// Raft should have answered every future by now. Shutting down
		// anyway may strand the late workers (and the waiter above), but
		// a Close that never returns would strand the whole process.
		n.log.Warn("node workers still running at shutdown; closing anyway", "waited", wait)
	}
}

// Shutdown hands leadership to another voter if this node leads, then
// closes the node. It returns when the node is closed or ctx ends.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.raft != nil && n.raft.State() == raft.Leader && n.voters() > 1 {
		f := n.raft.LeadershipTransfer()
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err := <-done:
			if err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", err)
			}
		case <-ctx.Done():
		}
	}
	return n.Close()
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

func serverID(id uint32) raft.ServerID { return raft.ServerID(strconv.FormatUint(uint64(id), 10)) }

func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l <= slog.LevelDebug:
		return hclog.Debug
	case l <= slog.LevelInfo:
		return hclog.Info
	case l <= slog.LevelWarn:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

// stateLimits are the state machine's limits for a configuration. Every node
// of a cluster must have the same: the state machine checks them as it
// applies each command.
func stateLimits(l config.Limits) fsm.Limits {
	fl := fsm.DefaultLimits()
	fl.NameBytesMax = l.NameBytesMax
	fl.OwnerBytesMax = l.NameBytesMax
	fl.ValueBytesMax = l.ValueBytesMax
	fl.WaitersPerLockMax = l.WaitersPerLockMax
	fl.LocksMax = l.LocksMax
	fl.KeysMax = l.KeysMax
	fl.ClientsMax = l.ClientsMax
	return fl
}
