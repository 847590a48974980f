// Package server serves dlock's client API over gRPC on top of a node:
// request validation, the error table, server-side waiting for grants, a
// cap on requests in flight, and access control (auth.go).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/node"
)

// Node is what the server needs of a replica.
type Node interface {
	Propose(ctx context.Context, cmds []*fsmpb.Command) ([]*fsmpb.Result, uint64, error)
	Read(ctx context.Context, stale bool, fn func(s *fsm.State)) error
	WaitApplied(ctx context.Context, index uint64) error
	ClusterNow() int64
	Status() (node.Status, error)
	TransferLeadership(ctx context.Context, to uint32) (uint32, error)
	AddMember(ctx context.Context, m node.Member) ([]node.Member, error)
	RemoveMember(ctx context.Context, id uint32) ([]node.Member, error)
	SaveSnapshot(ctx context.Context, w io.Writer) (uint64, error)
}

// Options configure a Server.
type Options struct {
	Limits config.Limits
	// WriteTimeout bounds a write (or a linearizable read) whose client set
	// no earlier deadline, including the wait for a new leader.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// TLS, if set, makes the client port TLS with this configuration
	// (mutual TLS when it requires client certificates). gRPC then reports
	// each call's verified certificate in its peer.AuthInfo
	// (credentials.TLSInfo). Default nil: plaintext.
	TLS *tls.Config
	// Auth turns access control on (see auth.go).
	Auth config.AuthConfig
	// Observer is told every call's outcome, for metrics. Default: nothing.
	Observer Observer
}

// Server implements the Lock, KV, Cluster and Acl services.
type Server struct {
	node    Node
	waiters *Waiters
	opts    Options
	log     *slog.Logger
	grpc    *grpc.Server
	slots   chan struct{}

	// observer is never nil (nopObserver by default).
	observer Observer

	// stopping is closed when the server begins to stop: waiting acquires
	// then return Unavailable at once and keep their place in the queue
	// (see GracefulStop).
	stopping     chan struct{}
	stoppingOnce sync.Once
}

// New returns a server for n. waiters must be the registry the node
// publishes its events to.
func New(n Node, waiters *Waiters, opts Options) *Server {
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	s := &Server{node: n, waiters: waiters, opts: opts, log: opts.Logger,
		slots: make(chan struct{}, max(opts.Limits.InflightRequestsMax, 1)), stopping: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.observer = opts.Observer; s.observer == nil {
		s.observer = nopObserver{}
	}
	// Observation first, so that refusals (limits, access control) are
	// counted too.
	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.observeUnary, s.limitInflight, s.authUnary),
		grpc.ChainStreamInterceptor(s.observeStream, s.authStream),
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.grpc = grpc.NewServer(sopts...)
	dlockv1.RegisterAclServer(s.grpc, aclService{Server: s})
	healthpb.RegisterHealthServer(s.grpc, healthService{s: s})
	dlockv1.RegisterLockServer(s.grpc, lockService{Server: s})
	dlockv1.RegisterKVServer(s.grpc, kvService{Server: s})
	dlockv1.RegisterClusterServer(s.grpc, clusterService{Server: s})
	return s
}

// Serve accepts client connections on ln until Stop or GracefulStop.
func (s *Server) Serve(ln net.Listener) error { return s.grpc.Serve(ln) }

// GracefulStop stops accepting calls and waits for those in flight until
// ctx ends, then stops hard. Acquires waiting in a queue return Unavailable
// at once without withdrawing: their clients retry on another node with
// the same request, which takes over the wait and keeps its place. (A
// waiter whose client never comes back leaves at its deadline; if granted
// first, its lease ends the hold.)
func (s *Server) GracefulStop(ctx context.Context) {
	s.stoppingOnce.Do(func() { close(s.stopping) })
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
}

// Stop closes every connection at once. Waiting acquires withdraw.
func (s *Server) Stop() { s.grpc.Stop() }

// isStopping reports whether GracefulStop has begun.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// limitInflight refuses a call when InflightRequestsMax calls are running.
func (s *Server) limitInflight(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
		return h(ctx, req)
	default:
		return nil, statusError(codes.ResourceExhausted, dlockv1.ReasonLimit,
			fmt.Sprintf("dlock: %d requests in flight on this node (limits.inflight_requests_max)", cap(s.slots)))
	}
}

// writeCtx bounds ctx by the write timeout.
func (s *Server) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.WriteTimeout)
}

// propose1 commits one command and returns its result. The command acts
// for the caller's principal, if access control identified one.
func (s *Server) propose1(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Result, uint64, error) {
	cmd.Principal = identityOf(ctx).principal
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	res, idx, err := s.node.Propose(wctx, []*fsmpb.Command{cmd})
	if err != nil {
		return nil, 0, boundedError(ctx, err)
	}
	return res[0], idx, nil
}

// read runs fn on a linearizable (or, if stale, local) view of the state,
// unless that view does not permit the caller's access (see auth.go).
func (s *Server) read(ctx context.Context, stale bool, fn func(st *fsm.State)) error {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	a, _ := ctx.Value(accessKey{}).(*access)
	var denied error
	if err := s.node.Read(wctx, stale, func(st *fsm.State) {
		if denied = a.denied(st); denied == nil {
			fn(st)
		}
	}); err != nil {
		return boundedError(ctx, err)
	}
	return denied
}

// boundedError maps a failure under the write timeout. If the caller's own
// context is still alive, the node gave up (no leader in time): the caller
// may retry, elsewhere or later, so it is Unavailable, not a deadline.
func boundedError(caller context.Context, err error) error {
	if caller.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return statusError(codes.Unavailable, dlockv1.ReasonNoLeader, "dlock: "+err.Error())
	}
	return nodeError(err)
}

// withHeader gives cmd the request header's deduplication fields.
func withHeader(h *dlockv1.RequestHeader, cmd *fsmpb.Command) *fsmpb.Command {
	cmd.ClientId, cmd.Seq, cmd.AckedBelow = h.GetClientId(), h.GetSeq(), h.GetAckedBelow()
	return cmd
}
