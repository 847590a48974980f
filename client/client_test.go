package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/client/clienttest"
)

func TestNewRefusesBadOptions(t *testing.T) {
	ok := []string{"127.0.0.1:24005"}
	tests := []struct {
		name      string
		endpoints []string
		opts      []client.Option
	}{
		{"no endpoints", nil, nil},
		{"endpoint without port", []string{"127.0.0.1"}, nil},
		{"empty client id", ok, []client.Option{client.WithClientID("")}},
		{"client id too long", ok, []client.Option{client.WithClientID(strings.Repeat("x", client.ClientIDMax+1))}},
		{"zero dial timeout", ok, []client.Option{client.WithDialTimeout(0)}},
		{"negative call timeout", ok, []client.Option{client.WithCallTimeout(-time.Second)}},
		{"call timeout above max", ok, []client.Option{client.WithCallTimeout(client.TimeoutMax + 1)}},
		{"backoff max below min", ok, []client.Option{client.WithRetryBackoff(2*time.Second, time.Second)}},
		{"zero retry limit", ok, []client.Option{client.WithRetryLimit(0)}},
		{"retry limit above max", ok, []client.Option{client.WithRetryLimit(client.RetryAttemptsMax + 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.endpoints, tt.opts...)
			if c != nil {
				_ = c.Close()
			}
			if !errors.Is(err, client.ErrInvalid) {
				t.Errorf("New() error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c := newClient(t, []string{"127.0.0.1:1"})
	if got := len(c.ID()); got != 20 {
		t.Errorf("default ID() = %q, %d characters, want 20", c.ID(), got)
	}
	other := newClient(t, []string{"127.0.0.1:1"})
	if c.ID() == other.ID() {
		t.Errorf("two clients share the default ID %q, want random ids", c.ID())
	}
	named := newClient(t, []string{"127.0.0.1:1"}, client.WithClientID("svc-a"))
	if got, want := named.ID(), "svc-a"; got != want {
		t.Errorf("ID() = %q, want %q", got, want)
	}
}

// callsBy returns the calls to method that carry clientID's header.
func callsBy(s *clienttest.Server, clientID, method string) []clienttest.Call {
	var out []clienttest.Call
	for _, c := range s.Calls(method) {
		if c.Header.GetClientId() == clientID {
			out = append(out, c)
		}
	}
	return out
}

// holdAs makes owner hold name through its own client on s, without renewal.
func holdAs(t *testing.T, s *clienttest.Server, name, owner string, ttl time.Duration) *client.Lock {
	t.Helper()
	c := newClient(t, []string{s.Addr()})
	l, err := c.TryAcquire(testCtx(t), name, client.WithOwner(owner), client.WithTTL(ttl), client.WithoutAutoRenew())
	if err != nil {
		t.Fatalf("TryAcquire(%q) as %q = %v, want the lock", name, owner, err)
	}
	return l
}

// writes are the mutating calls; each row runs one through c, after preparing state through s.
var writes = []struct {
	name    string
	method  string
	prepare func(t *testing.T, s *clienttest.Server)
	run     func(ctx context.Context, c *client.Client) error
}{
	{"acquire", dlockv1.Lock_Acquire_FullMethodName, nil, func(ctx context.Context, c *client.Client) error {
		_, err := c.TryAcquire(ctx, "l", client.WithoutAutoRenew())
		return err
	}},
	{"renew", dlockv1.Lock_Renew_FullMethodName,
		func(t *testing.T, s *clienttest.Server) { holdAs(t, s, "l", "o", time.Minute) },
		func(ctx context.Context, c *client.Client) error {
			_, err := c.RenewOwned(ctx, "l", "o", 0, time.Minute)
			return err
		}},
	{"release", dlockv1.Lock_Release_FullMethodName,
		func(t *testing.T, s *clienttest.Server) { holdAs(t, s, "l", "o", time.Minute) },
		func(ctx context.Context, c *client.Client) error { return c.ReleaseOwned(ctx, "l", "o", 0) }},
	{"put", dlockv1.KV_Put_FullMethodName, nil, func(ctx context.Context, c *client.Client) error {
		_, err := c.Put(ctx, "k", []byte("v"))
		return err
	}},
	{"delete", dlockv1.KV_Delete_FullMethodName,
		func(t *testing.T, s *clienttest.Server) {
			if _, err := newClient(t, []string{s.Addr()}).Put(testCtx(t), "k", []byte("v")); err != nil {
				t.Fatalf("Put(k) = %v, want nil", err)
			}
		},
		func(ctx context.Context, c *client.Client) error { return c.Delete(ctx, "k") }},
}

// DESIGN.md: "every mutating request carries (client id, request sequence); ... a retry after a timeout
// or a leader change is applied once." The client must resend the very same header to the next node.
func TestRetryOnUnavailableMovesToNextEndpointWithSameHeader(t *testing.T) {
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			down := clienttest.NewServer(t)
			up := down.Peer(t)
			if w.prepare != nil {
				w.prepare(t, up)
			}
			down.SetFault(clienttest.Fail(clienttest.Error(codes.Unavailable, dlockv1.ReasonNoLeader, "no leader")))
			c := newClient(t, []string{down.Addr(), up.Addr()})

			if err := w.run(testCtx(t), c); err != nil {
				t.Fatalf("%s through a node without a leader and a healthy node = %v, want nil", w.name, err)
			}
			first, retry := callsBy(down, c.ID(), w.method), callsBy(up, c.ID(), w.method)
			if len(first) != 1 || len(retry) != 1 {
				t.Fatalf("calls: %d to the failing node, %d to the healthy one, want 1 and 1", len(first), len(retry))
			}
			// The same request: the same header, but for an Acquire's send
			// number, which grows so that a late first send claims nothing.
			want := proto.Clone(first[0].Header).(*dlockv1.RequestHeader)
			if w.method == dlockv1.Lock_Acquire_FullMethodName {
				if first[0].Header.GetTry() != 1 || retry[0].Header.GetTry() != 2 {
					t.Errorf("acquire sends numbered %d then %d, want 1 then 2",
						first[0].Header.GetTry(), retry[0].Header.GetTry())
				}
				want.Try = retry[0].Header.GetTry()
			}
			if !proto.Equal(want, retry[0].Header) {
				t.Errorf("retry header = %v, want the first attempt's %v", retry[0].Header, first[0].Header)
			}
		})
	}
}

func TestRetryAfterConnectionRefused(t *testing.T) {
	dead := clienttest.NewServer(t)
	dead.Stop() // its port now refuses connections
	up := clienttest.NewServer(t)
	c := newClient(t, []string{dead.Addr(), up.Addr()}, client.WithDialTimeout(time.Second))

	if _, err := c.Put(testCtx(t), "k", []byte("v")); err != nil {
		t.Fatalf("Put with the first endpoint refusing connections = %v, want nil", err)
	}
	if got := len(callsBy(up, c.ID(), dlockv1.KV_Put_FullMethodName)); got != 1 {
		t.Errorf("puts on the live node = %d, want 1", got)
	}
}

func TestRetryAfterAttemptTimeoutKeepsHeader(t *testing.T) {
	hung := clienttest.NewServer(t)
	up := hung.Peer(t)
	hung.SetFault(clienttest.Hang())
	c := newClient(t, []string{hung.Addr(), up.Addr()}, client.WithCallTimeout(200*time.Millisecond))

	if _, err := c.Put(testCtx(t), "k", []byte("v")); err != nil {
		t.Fatalf("Put with the first node hung = %v, want nil", err)
	}
	first, retry := callsBy(hung, c.ID(), dlockv1.KV_Put_FullMethodName), callsBy(up, c.ID(), dlockv1.KV_Put_FullMethodName)
	if len(first) != 1 || len(retry) != 1 {
		t.Fatalf("calls: %d to the hung node, %d to the healthy one, want 1 and 1", len(first), len(retry))
	}
	if !proto.Equal(first[0].Header, retry[0].Header) {
		t.Errorf("retry header = %v, want the first attempt's %v", retry[0].Header, first[0].Header)
	}
}

func TestStaysOnTheEndpointThatAnswered(t *testing.T) {
	down := clienttest.NewServer(t)
	up := down.Peer(t)
	down.SetFault(clienttest.Fail(clienttest.Error(codes.Unavailable, dlockv1.ReasonShuttingDown, "stopping")))
	c := newClient(t, []string{down.Addr(), up.Addr()})
	for range 3 {
		if _, err := c.Put(testCtx(t), "k", []byte("v")); err != nil {
			t.Fatalf("Put = %v, want nil", err)
		}
	}
	if got := len(callsBy(down, c.ID(), dlockv1.KV_Put_FullMethodName)); got != 1 {
		t.Errorf("puts to the stopping node = %d, want 1 (later calls go to the node that answered)", got)
	}
}

func TestUnavailableUntilContextEnds(t *testing.T) {
	a := clienttest.NewServer(t)
	b := a.Peer(t)
	unavailable := clienttest.Fail(clienttest.Error(codes.Unavailable, dlockv1.ReasonNoLeader, "no leader"))
	a.SetFault(unavailable)
	b.SetFault(unavailable)
	c := newClient(t, []string{a.Addr(), b.Addr()}, client.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond), client.WithRetryLimit(client.RetryAttemptsMax))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()

	_, err := c.Put(ctx, "k", []byte("v"))
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put with no leader anywhere = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if len(a.Calls()) < 2 || len(b.Calls()) < 2 {
		t.Errorf("attempts: %d on a, %d on b, want at least 2 each (rounds with backoff)", len(a.Calls()), len(b.Calls()))
	}
}

func TestRetryLimitBoundsAttempts(t *testing.T) {
	a := clienttest.NewServer(t)
	a.SetFault(clienttest.Fail(clienttest.Error(codes.Unavailable, dlockv1.ReasonNoLeader, "no leader")))
	c := newClient(t, []string{a.Addr()}, client.WithRetryLimit(3), client.WithRetryBackoff(time.Millisecond, time.Millisecond))

	_, err := c.Put(context.Background(), "k", []byte("v"))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Put = %v, want ErrUnavailable", err)
	}
	if got := len(a.Calls()); got != 3 {
		t.Errorf("attempts = %d, want the limit, 3", got)
	}
}

// DESIGN.md: "gRPC status codes with machine-readable details; the Go client maps them to sentinel
// errors (errors.Is works)."
func TestReasonsMapToSentinels(t *testing.T) {
	tests := []struct {
		reason string
		code   codes.Code
		want   error
	}{
		{dlockv1.ReasonInvalid, codes.InvalidArgument, client.ErrInvalid},
		{dlockv1.ReasonLocked, codes.FailedPrecondition, client.ErrLocked},
		{dlockv1.ReasonWaitTimeout, codes.DeadlineExceeded, client.ErrWaitTimeout},
		{dlockv1.ReasonNotHeld, codes.FailedPrecondition, client.ErrNotHeld},
		{dlockv1.ReasonHeldByOther, codes.FailedPrecondition, client.ErrHeldByOther},
		{dlockv1.ReasonTokenMismatch, codes.FailedPrecondition, client.ErrTokenMismatch},
		{dlockv1.ReasonNotFound, codes.NotFound, client.ErrNotFound},
		{dlockv1.ReasonLimit, codes.ResourceExhausted, client.ErrLimit},
		{dlockv1.ReasonStaleRequest, codes.FailedPrecondition, client.ErrStaleRequest},
		{dlockv1.ReasonNoLeader, codes.Unavailable, client.ErrUnavailable},
		{dlockv1.ReasonShuttingDown, codes.Unavailable, client.ErrUnavailable},
		// Errors without a dlock reason (from gRPC itself or a proxy) fall back on the code.
		{"", codes.Unavailable, client.ErrUnavailable},
		{"SOME_FUTURE_REASON", codes.Unavailable, client.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.code.String()+"/"+tt.reason, func(t *testing.T) {
			s := clienttest.NewServer(t)
			s.SetFault(clienttest.Fail(clienttest.Error(tt.code, tt.reason, "the server says why")))
			c := newClient(t, []string{s.Addr()}, client.WithRetryLimit(1))

			_, err := c.Put(testCtx(t), "k", nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("Put failing with %s/%s = %v, want %v", tt.code, tt.reason, err, tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "dlock: ") || !strings.Contains(msg, "the server says why") {
				t.Errorf("error message = %q, want it to start with \"dlock: \" and keep the server's message", msg)
			}
		})
	}
}

func TestUnmappedErrorKeepsMessage(t *testing.T) {
	s := clienttest.NewServer(t)
	s.SetFault(clienttest.Fail(clienttest.Error(codes.Internal, "", "disk on fire")))
	c := newClient(t, []string{s.Addr()})

	_, err := c.Put(testCtx(t), "k", nil)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put failing with Internal = %v, want an error keeping \"disk on fire\"", err)
	}
	for _, sentinel := range []error{client.ErrUnavailable, client.ErrInvalid, client.ErrNotFound} {
		if errors.Is(err, sentinel) {
			t.Errorf("Put failing with Internal = %v, want it not to be %v", err, sentinel)
		}
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	s := clienttest.NewServer(t)
	c, err := client.New([]string{s.Addr()})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil (idempotent)", err)
	}
	if _, err := c.Put(testCtx(t), "k", nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := c.TryAcquire(testCtx(t), "l"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("TryAcquire after Close = %v, want ErrClosed", err)
	}
}

// Every write tells the cluster the lowest seq still in flight, so the
// cluster forgets the answers the client already has and keeps those it
// may still be asked for again.
func TestHeaderAcknowledgesAnswersBelowTheOldestInFlight(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := newClient(t, []string{srv.Addr()})
	ctx := testCtx(t)
	srv.SetFault(clienttest.Hang(dlockv1.KV_Delete_FullMethodName))
	hung, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Delete(hung, "slow") }()
	waitUntil(t, 5*time.Second, "the delete to arrive", func() bool {
		return len(callsBy(srv, c.ID(), dlockv1.KV_Delete_FullMethodName)) == 1
	})
	slow := callsBy(srv, c.ID(), dlockv1.KV_Delete_FullMethodName)[0].Header

	if _, err := c.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	put := callsBy(srv, c.ID(), dlockv1.KV_Put_FullMethodName)[0].Header
	if put.AckedBelow != slow.Seq {
		t.Fatalf("put while seq %d is in flight acknowledges below %d, want %d", slow.Seq, put.AckedBelow, slow.Seq)
	}
	cancel()
	<-done
	if _, err := c.Put(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	last := callsBy(srv, c.ID(), dlockv1.KV_Put_FullMethodName)[1].Header
	if last.AckedBelow != last.Seq {
		t.Fatalf("put with nothing else in flight acknowledges below %d, want its own seq %d", last.AckedBelow, last.Seq)
	}
}

// Given several endpoints, the client sends its calls to the one the
// cluster names as leader.
func TestPrefersTheLeadersEndpoint(t *testing.T) {
	follower := clienttest.NewServer(t)
	leader := follower.Peer(t)
	follower.SetStatus(&dlockv1.StatusResponse{LeaderId: 2, Members: []*dlockv1.Member{
		{Id: 1, ClientAddress: follower.Addr()},
		{Id: 2, ClientAddress: leader.Addr(), Leader: true},
	}})
	c := newClient(t, []string{follower.Addr(), leader.Addr()})
	if _, err := c.Put(testCtx(t), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := len(callsBy(leader, c.ID(), dlockv1.KV_Put_FullMethodName)); got != 1 {
		t.Fatalf("puts through the leader's endpoint = %d, want 1 (and none through the follower's: %d)",
			got, len(callsBy(follower, c.ID(), dlockv1.KV_Put_FullMethodName)))
	}
}
