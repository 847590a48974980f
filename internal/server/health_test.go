package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/internal/testcluster"
)

// The standard gRPC health service answers on the client port: SERVING for
// the server and each dlock service while the node is ready, NotFound for
// other names; a Watch gets the status at once, then NOT_SERVING and its end
// when the server stops.
func TestHealthService(t *testing.T) {
	c := testcluster.StartInProcess(t, 1)
	cc, err := grpc.NewClient("passthrough:///"+c.Endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h := healthpb.NewHealthClient(cc)
	ctx := ctxT(t)
	for _, svc := range []string{"", "dlock.v1.Lock", "dlock.v1.KV", "dlock.v1.Cluster"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Check(%q) = %v, %v; want SERVING", svc, resp, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(nope) = %v, want NotFound", err)
	}
	list, err := h.List(ctx, &healthpb.HealthListRequest{})
	if err != nil || len(list.Statuses) != 4 || list.Statuses[""].Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("List = %v, %v; want 4 services, the server SERVING", list, err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := h.Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := w.Recv(); err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch message = %v, %v; want SERVING", first, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.StopServer(0)
	}()
	if next, err := w.Recv(); err != nil || next.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch during the stop = %v, %v; want NOT_SERVING", next, err)
	}
	if _, err := w.Recv(); err == nil {
		t.Error("Watch goes on after the server stopped")
	}
	<-stopped
}
