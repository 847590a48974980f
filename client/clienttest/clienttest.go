// Package clienttest serves an in-memory stand-in for dlock nodes over gRPC on loopback listeners, for
// unit tests of code built on the dlock client (client, dlockapi, the CLI).
//
// The stand-in follows the API's contract closely enough for client tests: owners, fencing tokens,
// nonces, leases on the real clock, a FIFO queue with server-side waiting and withdrawal on
// cancellation, request deduplication by header, a KV store and paged listings. Tests script faults per
// call with SetFault and read back every call (with its request header) with Calls.
//
// WARNING: it is not the dlock server: it has no Raft, no persistence and no cluster time. Never use it
// to test the server's semantics.
package clienttest

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// Fault decides the fate of one call before the stand-in handles it: a non-nil error is returned to
// the client instead. method is the full gRPC method name (dlockv1.Lock_Acquire_FullMethodName, ...).
// A Fault may block, for instance until ctx ends, to play a hung node.
type Fault func(ctx context.Context, method string, req proto.Message) error

// Call is one call a node received, recorded before its Fault ran.
type Call struct {
	// Method is the full gRPC method name.
	Method string
	// Header is the request header of a write; nil for a read.
	Header *dlockv1.RequestHeader
	// Request is the request as received.
	Request proto.Message
}

// Server is one node of the stand-in: a gRPC server on 127.0.0.1 serving the Lock, KV and Cluster
// services over state it may share with peers (see Peer). Its methods are safe for concurrent use.
type Server struct {
	st   *state
	srv  *grpc.Server
	addr string

	mu    sync.Mutex
	fault Fault
	calls []Call
}

// NewServer starts a node with empty state on a free loopback port and stops it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return start(t, newState())
}

// Peer starts another node serving the same state as s, with its own faults and call log, so that a
// client may reach the same locks through several endpoints. It stops when the test ends.
func (s *Server) Peer(t testing.TB) *Server {
	t.Helper()
	return start(t, s.st)
}

func start(t testing.TB, st *state) *Server {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	s := &Server{st: st, addr: lis.Addr().String()}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(s.intercept), grpc.WaitForHandlers(true))
	dlockv1.RegisterLockServer(s.srv, &lockService{st: st})
	dlockv1.RegisterKVServer(s.srv, &kvService{st: st})
	dlockv1.RegisterClusterServer(s.srv, &clusterService{st: st})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.srv.Serve(lis) // returns when Stop closes the listener
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	return s
}

// Addr returns the node's "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// Stop stops the node at once: open calls fail and its port refuses connections. It waits for the
// node's handlers to return and is idempotent. The shared state lives on for peers.
func (s *Server) Stop() { s.srv.Stop() }

// SetFault installs f for every later call to this node; nil removes it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Calls returns the calls this node received so far, oldest first, to the given method, or to every
// method if none is given.
func (s *Server) Calls(methods ...string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if len(methods) == 0 || slices.Contains(methods, c.Method) {
			out = append(out, c)
		}
	}
	return out
}

// SetStatus sets what Cluster.Status answers (shared by peers). Default: node 1, the ready leader of a
// one-node cluster.
func (s *Server) SetStatus(resp *dlockv1.StatusResponse) {
	s.st.mu.Lock()
	s.st.status = proto.Clone(resp).(*dlockv1.StatusResponse)
	s.st.mu.Unlock()
}

// SetPageSize sets how many entries a listing returns per page when the request sets no limit (shared
// by peers). Default 100.
func (s *Server) SetPageSize(n int) {
	s.st.mu.Lock()
	s.st.pageSize = n
	s.st.mu.Unlock()
}

type headered interface{ GetHeader() *dlockv1.RequestHeader }

func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	msg := proto.Clone(req.(proto.Message))
	call := Call{Method: info.FullMethod, Request: msg}
	if h, ok := msg.(headered); ok {
		call.Header = h.GetHeader()
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		if err := fault(ctx, info.FullMethod, msg); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

// Error returns a dlock error as the server sends it: code plus a google.rpc.ErrorInfo with domain
// "dlock" and reason (one of the dlockv1.Reason* constants).
func Error(code codes.Code, reason, msg string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Domain: dlockv1.ErrorDomain, Reason: reason})
	if err != nil {
		panic("clienttest: attach ErrorInfo: " + err.Error()) // only for a detail that cannot marshal
	}
	return st.Err()
}

// Fail returns a Fault that fails every call to one of methods (every call if none is given) with err.
func Fail(err error, methods ...string) Fault {
	return func(_ context.Context, method string, _ proto.Message) error {
		if len(methods) == 0 || slices.Contains(methods, method) {
			return err
		}
		return nil
	}
}

// Hang returns a Fault that holds every call to one of methods (every call if none is given) until the
// caller gives up, as a node cut off mid-call would.
func Hang(methods ...string) Fault {
	return func(ctx context.Context, method string, _ proto.Message) error {
		if len(methods) == 0 || slices.Contains(methods, method) {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		return nil
	}
}
