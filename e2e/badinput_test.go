package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// The API edge's contract for bad and hostile input, over the raw gRPC API
// of an in-process 3-node cluster on real sockets. Each refusal is checked
// for its exact gRPC code, its ErrorInfo reason, a message that names the
// offending field or limit, and an unchanged cluster: every lock (List),
// every key and value (List) and a Query of each name the row touches read
// the same before and after.
//
// Cases already pinned in internal/server/server_test.go are not repeated:
// acquire with an empty name or owner, TTL 0 or -5, TTL 1<<40 ms, wait -1,
// a 1025-byte name; put with an empty key or a 1 MiB+1 value; release with
// an empty owner (TestBadRequestsChangeNothing); release by another owner,
// with the next token, of an unknown lock; renew by another owner; acquire
// of a held lock without waiting (TestWrongPartyIsRefused); a third waiter
// on a queue of two (TestWaitersPastTheLimitAreRefused).

// edgeValueMax lowers limits.value_bytes_max so values over it are cheap.
const edgeValueMax = 4096

// edgeNameMax is the default limits.name_bytes_max, the 1 KiB of DESIGN.md.
const edgeNameMax = 1024

type edgeNode struct {
	cc   *grpc.ClientConn
	lock dlockv1.LockClient
	kv   dlockv1.KVClient
}

// dialEdge opens one raw gRPC connection per node; they close when the test ends.
func dialEdge(t *testing.T, c *testcluster.InProcess) []edgeNode {
	t.Helper()
	var out []edgeNode
	for _, ep := range c.Endpoints() {
		cc, err := grpc.NewClient("passthrough:///"+ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("dial %s: %v", ep, err)
		}
		t.Cleanup(func() { cc.Close() })
		out = append(out, edgeNode{cc: cc, lock: dlockv1.NewLockClient(cc), kv: dlockv1.NewKVClient(cc)})
	}
	return out
}

func edgeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// edgeOutcome renders a call's result as "OK" or "Code REASON".
func edgeOutcome(err error) string {
	if err == nil {
		return "OK"
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == dlockv1.ErrorDomain {
			return st.Code().String() + " " + info.Reason
		}
	}
	return st.Code().String()
}

// observeEdge renders everything a client can see of the cluster: every
// lock record (remaining lease left out: it runs down), every key with the
// length and hash of its value, and a Query of each of names.
func observeEdge(t *testing.T, ctx context.Context, n edgeNode, names []string) string {
	t.Helper()
	var b strings.Builder
	for after, more := "", true; more; {
		resp, err := n.lock.List(ctx, &dlockv1.ListLocksRequest{StartAfter: after, Limit: 100})
		if err != nil {
			t.Fatalf("list locks: %v", err)
		}
		for _, l := range resp.Locks {
			fmt.Fprintf(&b, "lock %q owner=%q token=%d nonce=%d ttl=%d acquired=%d waiters=%d\n",
				l.Name, l.Owner, l.Token, l.Nonce, l.TtlMs, l.AcquiredUnixNano, l.Waiters)
			after = l.Name
		}
		more = resp.More
	}
	for after, more := "", true; more; {
		resp, err := n.kv.List(ctx, &dlockv1.ListKeysRequest{StartAfter: after, Limit: 100})
		if err != nil {
			t.Fatalf("list keys: %v", err)
		}
		for _, kv := range resp.Kvs {
			fmt.Fprintf(&b, "key %q len=%d sha256=%x\n", kv.Key, len(kv.Value), sha256.Sum256(kv.Value))
			after = kv.Key
		}
		more = resp.More
	}
	for _, name := range names {
		q, err := n.lock.Query(ctx, &dlockv1.QueryRequest{Name: name})
		l := q.GetLock()
		fmt.Fprintf(&b, "query %q: %s owner=%q token=%d nonce=%d waiters=%d\n",
			name, edgeOutcome(err), l.GetOwner(), l.GetToken(), l.GetNonce(), l.GetWaiters())
	}
	return b.String()
}

// rawCodec sends a request already encoded by hand, so that it can carry
// bytes proto.Marshal refuses (invalid UTF-8); it decodes answers as usual.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

// rawAcquire encodes an AcquireRequest{name, owner "o", ttl_ms 1000} with
// name as raw bytes.
func rawAcquire(name string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, "o")
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	return protowire.AppendVarint(b, 1000)
}

// edgeRow is one request at the edge. call runs on node (row index mod 3),
// so followers forward half of the rows. setup, if set, makes the state the
// row needs before the "before" observation.
type edgeRow struct {
	name  string
	setup func(t *testing.T, ctx context.Context, n edgeNode)
	call  func(ctx context.Context, n edgeNode) error
	touch []string // lock names to Query before and after
	want  edgeWant
}

type edgeWant struct {
	outcome string // "OK" or "Code REASON"
	msg     string // part of the message naming the offending field or limit
	changes bool   // the call may change the state (a success)
}

func acquireCall(req *dlockv1.AcquireRequest) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error { _, err := n.lock.Acquire(ctx, req); return err }
}

func renewCall(req *dlockv1.RenewRequest) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error { _, err := n.lock.Renew(ctx, req); return err }
}

func releaseCall(req *dlockv1.ReleaseRequest) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error { _, err := n.lock.Release(ctx, req); return err }
}

func queryCall(name string) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error {
		_, err := n.lock.Query(ctx, &dlockv1.QueryRequest{Name: name})
		return err
	}
}

func putCall(req *dlockv1.PutRequest) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error { _, err := n.kv.Put(ctx, req); return err }
}

func getCall(key string) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error {
		_, err := n.kv.Get(ctx, &dlockv1.GetRequest{Key: key})
		return err
	}
}

func deleteCall(key string) func(context.Context, edgeNode) error {
	return func(ctx context.Context, n edgeNode) error {
		_, err := n.kv.Delete(ctx, &dlockv1.DeleteRequest{Key: key})
		return err
	}
}

// regrant acquires name for owner, releases it and acquires it again, and
// returns the first (now stale) token.
func regrant(t *testing.T, ctx context.Context, n edgeNode, name, owner string) uint64 {
	t.Helper()
	first, err := n.lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: name, Owner: owner, TtlMs: 60000})
	if err != nil {
		t.Fatalf("acquire %s: %v", name, err)
	}
	if _, err := n.lock.Release(ctx, &dlockv1.ReleaseRequest{Name: name, Owner: owner, Token: first.Token}); err != nil {
		t.Fatalf("release %s: %v", name, err)
	}
	if _, err := n.lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: name, Owner: owner, TtlMs: 60000}); err != nil {
		t.Fatalf("acquire %s again: %v", name, err)
	}
	return first.Token
}

func edgeRows() []edgeRow {
	over, at := strings.Repeat("n", edgeNameMax+1), strings.Repeat("a", edgeNameMax)
	const msMax = math.MaxInt64 / int64(time.Millisecond) // the largest ttl_ms or wait_ms whose nanoseconds fit
	var staleRelease, staleRenew uint64
	return []edgeRow{
		// "A bad request (empty name, TTL <= 0, sizes over the limits) gets
		// InvalidArgument and changes nothing."
		{name: "renew with an empty name", call: renewCall(&dlockv1.RenewRequest{Owner: "a"}),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "name is empty"}},
		{name: "renew with an empty owner", call: renewCall(&dlockv1.RenewRequest{Name: "held"}), touch: []string{"held"},
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "owner is empty"}},
		{name: "release with an empty name", call: releaseCall(&dlockv1.ReleaseRequest{Owner: "a"}),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "name is empty"}},
		{name: "query with an empty name", call: queryCall(""),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "name is empty"}},
		{name: "get with an empty key", call: getCall(""),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "key is empty"}},
		{name: "delete with an empty key", call: deleteCall(""),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "key is empty"}},
		{name: "acquire with an owner over 1 KiB", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: over, TtlMs: 1000}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "owner is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "renew with a name over 1 KiB", call: renewCall(&dlockv1.RenewRequest{Name: over, Owner: "a"}),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "name is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "release with an owner over 1 KiB", call: releaseCall(&dlockv1.ReleaseRequest{Name: "held", Owner: over}), touch: []string{"held"},
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "owner is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "query with a name over 1 KiB", call: queryCall(over),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "name is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "put with a key over 1 KiB", call: putCall(&dlockv1.PutRequest{Key: over, Value: []byte("v")}),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "key is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "get with a key over 1 KiB", call: getCall(over),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "key is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "delete with a key over 1 KiB", call: deleteCall(over),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "key is 1025 bytes, over limits.name_bytes_max 1024"}},
		{name: "put with a value one byte over a lowered value_bytes_max",
			call: putCall(&dlockv1.PutRequest{Key: "k", Value: make([]byte, edgeValueMax+1)}),
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "value is 4097 bytes, over limits.value_bytes_max 4096"}},
		{name: "acquire with the most negative ttl", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: math.MinInt64}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "ttl_ms -9223372036854775808 must be > 0"}},
		{name: "acquire with a ttl one ms over lease_max", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 86_400_001}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "ttl_ms 86400001 is over limits.lease_max 24h0m0s"}},
		{name: "acquire with the largest ttl whose nanoseconds fit", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: msMax}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.lease_max"}},
		{name: "acquire with the most negative wait", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1000, WaitMs: math.MinInt64}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "wait_ms -9223372036854775808 must be >= 0"}},
		{name: "acquire with a wait one ms over acquire_timeout_max",
			call:  acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1000, WaitMs: 3_600_001}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "wait_ms 3600001 is over limits.acquire_timeout_max 1h0m0s"}},
		{name: "acquire with the largest wait whose nanoseconds fit",
			call:  acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1000, WaitMs: msMax}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.acquire_timeout_max"}},
		{name: "acquire with the largest ttl_ms", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: math.MaxInt64}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.lease_max"}},
		// Its nanoseconds wrap around to a lease of 448µs.
		{name: "acquire with a ttl_ms whose nanoseconds wrap", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 18446744073710}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.lease_max"}},
		{name: "acquire with the largest wait_ms", call: acquireCall(&dlockv1.AcquireRequest{Name: "l", Owner: "o", TtlMs: 1000, WaitMs: math.MaxInt64}),
			touch: []string{"l"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.acquire_timeout_max"}},
		{name: "renew with the largest ttl_ms", call: renewCall(&dlockv1.RenewRequest{Name: "held", Owner: "a", TtlMs: math.MaxInt64}),
			touch: []string{"held"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.lease_max"}},
		// A name cut for a message keeps whole runes, so the error keeps its
		// details on the wire.
		{name: "query of an unknown name whose 64th byte is inside a rune", call: queryCall(strings.Repeat("a", 63) + "é"),
			want: edgeWant{outcome: "NotFound NOT_FOUND"}},
		{name: "get of an unknown key whose 64th byte is inside a rune", call: getCall(strings.Repeat("a", 63) + "é"),
			want: edgeWant{outcome: "NotFound NOT_FOUND"}},
		{name: "renew with a negative ttl", call: renewCall(&dlockv1.RenewRequest{Name: "held", Owner: "a", TtlMs: -1}), touch: []string{"held"},
			want: edgeWant{outcome: "InvalidArgument INVALID", msg: "ttl_ms -1"}},
		{name: "renew with a ttl over lease_max", call: renewCall(&dlockv1.RenewRequest{Name: "held", Owner: "a", TtlMs: msMax}),
			touch: []string{"held"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "is over limits.lease_max"}},
		// gRPC's codec refuses a proto3 string that is not UTF-8 before any
		// dlock code runs: Internal, without a dlock reason.
		{name: "acquire with a name that is not UTF-8",
			call: func(ctx context.Context, n edgeNode) error {
				return n.cc.Invoke(ctx, "/dlock.v1.Lock/Acquire", rawAcquire("l\xff"), new(dlockv1.AcquireResponse), grpc.ForceCodec(rawCodec{}))
			},
			touch: []string{"l"}, want: edgeWant{outcome: "Internal", msg: "invalid UTF-8"}},

		// "Limits (configurable, enforced, documented): lock name and key <=
		// 1 KiB, value <= 1 MiB": exactly at a limit is within it.
		{name: "acquire with a name and an owner of exactly 1 KiB", call: acquireCall(&dlockv1.AcquireRequest{Name: at, Owner: at, TtlMs: 60000}),
			touch: []string{at}, want: edgeWant{outcome: "OK", changes: true}},
		{name: "put with a key of exactly 1 KiB and a value of exactly value_bytes_max",
			call: putCall(&dlockv1.PutRequest{Key: at, Value: make([]byte, edgeValueMax)}), want: edgeWant{outcome: "OK", changes: true}},
		{name: "acquire with ttl exactly lease_max and wait exactly acquire_timeout_max",
			call:  acquireCall(&dlockv1.AcquireRequest{Name: "max", Owner: "o", TtlMs: 86_400_000, WaitMs: 3_600_000}),
			touch: []string{"max"}, want: edgeWant{outcome: "OK", changes: true}},
		// Bounds are limits, not "the lock is free": a held lock refuses them too.
		{name: "an owner of 1 KiB + 1 on a held lock", call: acquireCall(&dlockv1.AcquireRequest{Name: "held", Owner: over, TtlMs: 1000, WaitMs: 1000}),
			touch: []string{"held"}, want: edgeWant{outcome: "InvalidArgument INVALID", msg: "owner is 1025 bytes"}},
		// The idempotency header is the client's, yet bounded like an owner.
		{name: "a client id over 1 KiB", call: putCall(&dlockv1.PutRequest{Header: &dlockv1.RequestHeader{ClientId: over, Seq: 1}, Key: "k"}),
			want: edgeWant{outcome: "ResourceExhausted LIMIT", msg: "client id is 1025 bytes, over the limit of 1024"}},

		// "Release. Only the owner (and, if given, the matching token) may
		// release; otherwise a typed error says why (not held, held by
		// someone else, already expired)."
		{name: "release with a stale token after a re-grant",
			setup: func(t *testing.T, ctx context.Context, n edgeNode) {
				staleRelease = regrant(t, ctx, n, "regrant1", "a")
			},
			call: func(ctx context.Context, n edgeNode) error {
				return releaseCall(&dlockv1.ReleaseRequest{Name: "regrant1", Owner: "a", Token: staleRelease})(ctx, n)
			},
			touch: []string{"regrant1"}, want: edgeWant{outcome: "FailedPrecondition TOKEN_MISMATCH", msg: "is not the current hold's"}},
		{name: "renew with a stale token after a re-grant",
			setup: func(t *testing.T, ctx context.Context, n edgeNode) { staleRenew = regrant(t, ctx, n, "regrant2", "a") },
			call: func(ctx context.Context, n edgeNode) error {
				return renewCall(&dlockv1.RenewRequest{Name: "regrant2", Owner: "a", Token: staleRenew, TtlMs: 60000})(ctx, n)
			},
			touch: []string{"regrant2"}, want: edgeWant{outcome: "FailedPrecondition TOKEN_MISMATCH", msg: "is not the current hold's"}},
		{name: "renew of a lock never acquired", call: renewCall(&dlockv1.RenewRequest{Name: "never", Owner: "a", TtlMs: 1000}),
			touch: []string{"never"}, want: edgeWant{outcome: "FailedPrecondition NOT_HELD", msg: `lock "never" is not held`}},
		{name: "release of a lock already released",
			setup: func(t *testing.T, ctx context.Context, n edgeNode) {
				if _, err := n.lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: "freed", Owner: "a", TtlMs: 60000}); err != nil {
					t.Fatal(err)
				}
				if _, err := n.lock.Release(ctx, &dlockv1.ReleaseRequest{Name: "freed", Owner: "a"}); err != nil {
					t.Fatal(err)
				}
			},
			call:  releaseCall(&dlockv1.ReleaseRequest{Name: "freed", Owner: "a"}),
			touch: []string{"freed"}, want: edgeWant{outcome: "FailedPrecondition NOT_HELD", msg: `lock "freed" is not held`}},
	}
}

// TestBadInputAtTheEdge runs the table against one cluster with
// limits.value_bytes_max lowered to 4 KiB; lock "held" is held by owner "a"
// throughout.
func TestBadInputAtTheEdge(t *testing.T) {
	c := testcluster.StartInProcessWith(t, 3, func(cfg *config.Config) { cfg.Limits.ValueBytesMax = edgeValueMax })
	nodes := dialEdge(t, c)
	ctx := edgeCtx(t)
	if _, err := nodes[0].lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: "held", Owner: "a", TtlMs: 600_000}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range edgeRows() {
		t.Run(tt.name, func(t *testing.T) {
			n := nodes[i%len(nodes)]
			if tt.setup != nil {
				tt.setup(t, ctx, n)
			}
			before := observeEdge(t, ctx, n, tt.touch)
			err := tt.call(ctx, n)
			after := observeEdge(t, ctx, nodes[(i+1)%len(nodes)], tt.touch)
			if got := edgeOutcome(err); got != tt.want.outcome {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want.outcome)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.want.msg) {
				t.Errorf("message %q does not say %q", msg, tt.want.msg)
			}
			if !tt.want.changes && after != before {
				t.Errorf("state changed:\n before\n%s after\n%s", before, after)
			}
		})
	}
}

// putOutcome renders a put's answer: "created", "overwritten" or "Code REASON".
func putOutcome(resp *dlockv1.PutResponse, err error) string {
	switch {
	case err != nil:
		return edgeOutcome(err)
	case resp.Created:
		return "created"
	}
	return "overwritten"
}

// "Idempotency. Every mutating request carries (client id, request
// sequence); the state machine remembers recent results per client, so a
// retry ... is applied once." A header missing either half is not one
// request to deduplicate, and an acknowledgement never reaches past the
// request that carries it. Each row puts its own key with each header in turn.
func TestBadInputHeaders(t *testing.T) {
	c := testcluster.StartInProcess(t, 3)
	nodes := dialEdge(t, c)
	ctx := edgeCtx(t)
	rows := []struct {
		name string
		give []*dlockv1.RequestHeader
		want []string
	}{
		{
			name: "a seq without a client id is applied every time",
			give: []*dlockv1.RequestHeader{{Seq: 5}, {Seq: 5}},
			want: []string{"created", "overwritten"},
		},
		{
			name: "a client id with seq 0 is applied every time",
			give: []*dlockv1.RequestHeader{{ClientId: "h0"}, {ClientId: "h0"}},
			want: []string{"created", "overwritten"},
		},
		{
			name: "acked_below above seq acknowledges only what is below seq",
			give: []*dlockv1.RequestHeader{{ClientId: "h1", Seq: 1}, {ClientId: "h1", Seq: 3, AckedBelow: 10}, {ClientId: "h1", Seq: 3}, {ClientId: "h1", Seq: 2}},
			want: []string{"created", "overwritten", "overwritten", "FailedPrecondition STALE_REQUEST"},
		},
		{
			name: "a retry after a newer request still gets its first answer",
			give: []*dlockv1.RequestHeader{{ClientId: "h2", Seq: 1}, {ClientId: "h2", Seq: 2}, {ClientId: "h2", Seq: 1}},
			want: []string{"created", "overwritten", "created"},
		},
	}
	for i, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("header-%d", i)
			var got []string
			for j, h := range tt.give {
				resp, err := nodes[j%len(nodes)].kv.Put(ctx, &dlockv1.PutRequest{Header: h, Key: key, Value: []byte{byte(j)}})
				got = append(got, putOutcome(resp, err))
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("answers:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// "Limits ... waiters per lock and holds per cluster bounded; over a limit
// the request is refused with ResourceExhausted, nothing else is affected."
// A flood of waiters past limits.waiters_per_lock_max: the next one is
// refused and changes nothing, and the queued ones are still granted the
// lock in their order. Then the same for lock records and keys.
func TestBadInputCountLimits(t *testing.T) {
	c := testcluster.StartInProcessWith(t, 3, func(cfg *config.Config) {
		cfg.Limits.WaitersPerLockMax, cfg.Limits.LocksMax, cfg.Limits.KeysMax = 3, 4, 2
	})
	nodes := dialEdge(t, c)
	ctx := edgeCtx(t)
	t.Run("a waiter past waiters_per_lock_max", func(t *testing.T) { floodWaiters(t, ctx, nodes) })

	// Lock "flood" is the first record; three more fill locks_max.
	for _, name := range []string{"r2", "r3", "r4"} {
		if _, err := nodes[1].lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: name, Owner: "a", TtlMs: 60000}); err != nil {
			t.Fatalf("acquire %s: %v", name, err)
		}
	}
	if _, err := nodes[2].kv.Put(ctx, &dlockv1.PutRequest{Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].kv.Put(ctx, &dlockv1.PutRequest{Key: "k2"}); err != nil {
		t.Fatal(err)
	}
	rows := []edgeRow{
		{name: "a new lock past locks_max", call: acquireCall(&dlockv1.AcquireRequest{Name: "r5", Owner: "a", TtlMs: 1000}),
			touch: []string{"r5"}, want: edgeWant{outcome: "ResourceExhausted LIMIT", msg: "4 lock records, the limit"}},
		{name: "a known lock at locks_max is still served", call: acquireCall(&dlockv1.AcquireRequest{Name: "r2", Owner: "b", TtlMs: 1000}),
			touch: []string{"r2"}, want: edgeWant{outcome: "FailedPrecondition LOCKED", msg: "held by another owner"}},
		{name: "a new key past keys_max", call: putCall(&dlockv1.PutRequest{Key: "k3", Value: []byte("v")}),
			want: edgeWant{outcome: "ResourceExhausted LIMIT", msg: "2 keys, the limit"}},
		{name: "a known key at keys_max is still written", call: putCall(&dlockv1.PutRequest{Key: "k1", Value: []byte("v")}),
			want: edgeWant{outcome: "OK", changes: true}},
	}
	for i, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			n := nodes[i%len(nodes)]
			before := observeEdge(t, ctx, n, tt.touch)
			err := tt.call(ctx, n)
			after := observeEdge(t, ctx, nodes[(i+1)%len(nodes)], tt.touch)
			if got := edgeOutcome(err); got != tt.want.outcome {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want.outcome)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.want.msg) {
				t.Errorf("message %q does not say %q", msg, tt.want.msg)
			}
			if !tt.want.changes && after != before {
				t.Errorf("state changed:\n before\n%s after\n%s", before, after)
			}
		})
	}
}

type edgeGrant struct {
	owner string
	token uint64
	err   error
}

// floodWaiters queues w1, w2, w3 behind the holder of "flood", each from
// another node, refuses w4, then releases down the queue: each release
// must grant the next waiter in order.
func floodWaiters(t *testing.T, ctx context.Context, nodes []edgeNode) {
	first, err := nodes[0].lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: "flood", Owner: "holder", TtlMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	grants := make(chan edgeGrant, 3)
	for i, owner := range []string{"w1", "w2", "w3"} {
		go func() {
			resp, err := nodes[i%len(nodes)].lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: "flood", Owner: owner, TtlMs: 60000, WaitMs: 20000})
			grants <- edgeGrant{owner: owner, token: resp.GetToken(), err: err}
		}()
		waitEdgeWaiters(t, ctx, nodes[2], "flood", uint32(i+1))
	}
	before := observeEdge(t, ctx, nodes[1], []string{"flood"})
	_, err = nodes[2].lock.Acquire(ctx, &dlockv1.AcquireRequest{Name: "flood", Owner: "w4", TtlMs: 60000, WaitMs: 20000})
	if got := edgeOutcome(err); got != "ResourceExhausted LIMIT" || !strings.Contains(err.Error(), "3 waiters, the limit") {
		t.Fatalf("w4: got %s (%v), want ResourceExhausted LIMIT naming 3 waiters, the limit", got, err)
	}
	if after := observeEdge(t, ctx, nodes[0], []string{"flood"}); after != before {
		t.Errorf("the refused waiter changed the state:\n before\n%s after\n%s", before, after)
	}
	owner, token := "holder", first.Token
	for _, want := range []string{"w1", "w2", "w3"} {
		if _, err := nodes[1].lock.Release(ctx, &dlockv1.ReleaseRequest{Name: "flood", Owner: owner, Token: token}); err != nil {
			t.Fatalf("release by %s: %v", owner, err)
		}
		g := <-grants
		if g.err != nil || g.owner != want || g.token <= token {
			t.Fatalf("after %s released: %s granted token %d (%v); want %s with a token above %d", owner, g.owner, g.token, g.err, want, token)
		}
		owner, token = g.owner, g.token
	}
}

func waitEdgeWaiters(t *testing.T, ctx context.Context, n edgeNode, name string, want uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := n.lock.Query(ctx, &dlockv1.QueryRequest{Name: name})
		if err == nil && q.Lock.Waiters == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s: %v, %v after 10s; want %d waiters", name, q, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
