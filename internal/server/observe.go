package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Observer is told the outcome of every client call, for metrics. It is
// called once per call, on the call's goroutine: it must be cheap, safe for
// concurrent use and never block.
type Observer interface {
	// RPC: the call to fullMethod ("/dlock.v1.Lock/Acquire") ended with
	// code and, for a dlock error, its reason ("" otherwise), d after it
	// arrived.
	RPC(fullMethod string, code codes.Code, reason string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) RPC(string, codes.Code, string, time.Duration) {}

// observeUnary reports every unary call to the observer and, at debug
// level, logs its method, outcome and duration: never its request or
// response, which may carry KV values.
func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	s.observed(ctx, info.FullMethod, start, err)
	return resp, err
}

// observeStream is observeUnary for streaming calls (Cluster.Snapshot,
// Health.Watch).
func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	s.observed(ss.Context(), info.FullMethod, start, err)
	return err
}

func (s *Server) observed(ctx context.Context, method string, start time.Time, err error) {
	d := time.Since(start)
	code, reason := codes.OK, ""
	if err != nil {
		code, reason = status.Code(err), reasonOf(err)
	}
	s.observer.RPC(method, code, reason, d)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("rpc", "method", method, "code", code.String(), "reason", reason, "duration", d)
	}
}

// readiness is the optional capability of a Node that can say whether it
// serves clients well (node.Node.Readiness).
type readiness interface {
	Readiness() (ready bool, reason string)
}

// healthService is the standard gRPC health service (grpc.health.v1) on the
// client port: SERVING while the node is ready (see node.Node.Readiness),
// NOT_SERVING otherwise, for the whole server ("") and each dlock service
// by name. It computes the answer on every call, so it is never stale.
type healthService struct {
	healthpb.UnimplementedHealthServer
	s *Server
}

// healthServices are the names the health service answers for.
var healthServices = []string{"", "dlock.v1.Lock", "dlock.v1.KV", "dlock.v1.Cluster"}

// healthWatchInterval is how often a Watch call looks at readiness again.
const healthWatchInterval = 250 * time.Millisecond

func (h healthService) status() healthpb.HealthCheckResponse_ServingStatus {
	if h.s.isStopping() {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	r, ok := h.s.node.(readiness)
	if !ok {
		return healthpb.HealthCheckResponse_SERVING
	}
	if ready, _ := r.Readiness(); ready {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

func known(service string) bool {
	for _, s := range healthServices {
		if s == service {
			return true
		}
	}
	return false
}

func (h healthService) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if !known(req.GetService()) {
		return nil, status.Errorf(codes.NotFound, "dlock: unknown service %q", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: h.status()}, nil
}

func (h healthService) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st := h.status()
	resp := &healthpb.HealthListResponse{Statuses: make(map[string]*healthpb.HealthCheckResponse, len(healthServices))}
	for _, name := range healthServices {
		resp.Statuses[name] = &healthpb.HealthCheckResponse{Status: st}
	}
	return resp, nil
}

// Watch sends the status at once and again whenever it changes, until the
// client goes away or the server stops (it then sends NOT_SERVING and
// returns, so a graceful stop does not wait for watchers). An unknown
// service is SERVICE_UNKNOWN, as the protocol asks.
func (h healthService) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if !known(req.GetService()) {
		return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN})
	}
	tick := time.NewTicker(healthWatchInterval)
	defer tick.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		if st := h.status(); st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-h.s.stopping:
			if last != healthpb.HealthCheckResponse_NOT_SERVING {
				_ = stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
			}
			return status.Error(codes.Unavailable, "dlock: this node is stopping")
		case <-tick.C:
		}
	}
}
