package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/node"
)

// fsmNode is a Node that applies proposals to a local fsm.State at once,
// one entry per proposal, and remembers every command and result. It ignores
// contexts, so a call made with a cancelled context still reaches the state
// and a queued Acquire returns at once instead of waiting. Methods the
// validation paths never call come from the nil embedded Node (and panic).
type fsmNode struct {
	Node
	st      *fsm.State
	now     int64
	cmds    []*fsmpb.Command
	results []*fsmpb.Result
}

func (n *fsmNode) Propose(_ context.Context, cmds []*fsmpb.Command) ([]*fsmpb.Result, uint64, error) {
	n.now += int64(time.Millisecond)
	out := n.st.Apply(&fsmpb.Entry{NowNanos: n.now, WallUnixNanos: n.now, Commands: cmds})
	n.cmds = append(n.cmds, cmds...)
	n.results = append(n.results, out.Results...)
	return out.Results, uint64(len(n.cmds)), nil
}

func (n *fsmNode) Read(_ context.Context, _ bool, fn func(s *fsm.State)) error {
	fn(n.st)
	return nil
}

func (n *fsmNode) WaitApplied(context.Context, uint64) error { return nil }
func (n *fsmNode) ClusterNow() int64                         { return n.now }
func (n *fsmNode) Status() (node.Status, error)              { return node.Status{}, nil }

// fuzzLimits are small so that sizes cross them, but names still reach past
// the 64 bytes at which messages cut a quoted name.
func fuzzLimits() config.Limits {
	l := config.Default().Limits
	l.NameBytesMax, l.ValueBytesMax = 80, 8
	l.LeaseMax, l.AcquireTimeoutMax = config.Millis(time.Hour), config.Millis(time.Minute)
	return l
}

// stateLimits mirrors node.stateLimits (unexported there): the state
// machine's limits for a configuration.
func stateLimits(l config.Limits) fsm.Limits {
	fl := fsm.DefaultLimits()
	fl.NameBytesMax, fl.OwnerBytesMax, fl.ValueBytesMax = l.NameBytesMax, l.NameBytesMax, l.ValueBytesMax
	fl.WaitersPerLockMax, fl.LocksMax, fl.KeysMax, fl.ClientsMax = l.WaitersPerLockMax, l.LocksMax, l.KeysMax, l.ClientsMax
	return fl
}

// edgeRequest is one fuzzed call: every field any request type has.
type edgeRequest struct {
	kind            uint8
	name, owner     string
	ttl, wait       int64
	token           uint64
	value           []byte
	clientID        string
	seq, ackedBelow uint64
	header          *dlockv1.RequestHeader
	limits          config.Limits
}

// FuzzRequests: "A bad request (empty name, TTL <= 0, sizes over the limits)
// gets InvalidArgument and changes nothing"; "over a limit the request is
// refused with ResourceExhausted". Each request type, with arbitrary field
// values, against a state where lock "held" is held by "holder" and key "k"
// exists:
//   - it never panics;
//   - a request with a bad field (judged here from the documented rules,
//     not by the server's code) is refused with InvalidArgument/INVALID or
//     ResourceExhausted/LIMIT, whose message starts with a bad field's name,
//     and if the edge refused it, nothing was proposed;
//   - a request with no bad field is never refused so, and nothing the edge
//     proposes is refused as INVALID by the state machine;
//   - every error can travel: it carries a dlock ErrorInfo and its status
//     marshals (a message that is not UTF-8 would lose its details).
func FuzzRequests(f *testing.F) {
	type seed struct {
		kind            uint8
		name, owner     string
		ttl, wait       int64
		token           uint64
		value           []byte
		client          string
		seq, ackedBelow uint64
	}
	long := strings.Repeat("n", 81)
	for _, s := range []seed{
		{0, "l", "o", 1000, 0, 0, nil, "", 0, 0},
		{0, "held", "o", 1000, 10, 0, nil, "c", 1, 0},
		{0, "", "", 0, -1, 0, nil, "", 0, 0},
		{0, long, "o", 1000, 0, 0, nil, "", 0, 0},
		{0, "l", "o", 3_600_001, 60_001, 0, nil, "", 0, 0},
		{0, "l", "o", math.MinInt64, 0, 0, nil, "c", 0, 5},
		{0, "l", "o", math.MaxInt64, 0, 0, nil, "", 0, 0},        // known bug: the TTL wraps to -1ms: INVALID, but naming ttl_nanos
		{0, "l", "o", 18446744073710, 0, 0, nil, "", 0, 0},       // known bug: the TTL wraps to 448µs: granted
		{0, "l", "o", 1000, math.MaxInt64 - 5, 0, nil, "", 0, 0}, // known bug: the wait wraps negative
		{1, "held", "holder", 0, 0, 1, nil, "c", 2, 9},
		{1, "held", "holder", -1, 0, 0, nil, "", 0, 0},
		{2, "held", "holder", 0, 0, 2, nil, "", 0, 0},
		{2, "held", "x", 0, 0, 0, nil, long, 1, 0},
		{3, "held", "", 0, 0, 0, nil, "", 0, 0},
		{3, strings.Repeat("a", 63) + "é", "", 0, 0, 0, nil, "", 0, 0},
		{4, "k", "", 0, 0, 0, []byte("12345678"), "c", 3, 3},
		{4, "k", "", 0, 0, 0, []byte("123456789"), "", 0, 0},
		{5, "missing", "", 0, 0, 0, nil, "", 0, 0},
		{6, "k", "", 0, 0, 0, nil, "c", 4, 0},
		{7, "h", "", 0, 0, 5, nil, "", 0, 0},
		{8, "", "k", 0, 0, math.MaxUint32, nil, "", 0, 0},
	} {
		f.Add(s.kind, s.name, s.owner, s.ttl, s.wait, s.token, s.value, s.client, s.seq, s.ackedBelow)
	}
	f.Fuzz(func(t *testing.T, kind uint8, name, owner string, ttl, wait int64, token uint64, value []byte,
		clientID string, seq, ackedBelow uint64) {
		r := &edgeRequest{kind: kind % 9, name: name, owner: owner, ttl: ttl, wait: wait, token: token,
			value: value, clientID: clientID, seq: seq, ackedBelow: ackedBelow, limits: fuzzLimits()}
		if clientID != "" || seq != 0 || ackedBelow != 0 {
			r.header = &dlockv1.RequestHeader{ClientId: clientID, Seq: seq, AckedBelow: ackedBelow}
		}
		r.check(t)
	})
}

func (r *edgeRequest) check(t *testing.T) {
	t.Helper()
	n := &fsmNode{st: fsm.New(stateLimits(r.limits))}
	n.Propose(context.Background(), []*fsmpb.Command{
		{Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{Name: "held", Owner: "holder", TtlNanos: int64(time.Hour)}}},
		{Op: &fsmpb.Command_Put{Put: &fsmpb.Put{Key: "k", Value: []byte("v")}}},
	})
	s := New(n, NewWaiters(), Options{Limits: r.limits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer s.Stop()
	req, call := r.build(s)
	if _, err := proto.Marshal(req); err != nil {
		return // not UTF-8: gRPC's codec refuses it before any handler runs
	}
	before := len(n.cmds)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a queued Acquire gives up at once (fsmNode ignores contexts otherwise)
	err := call(ctx)
	proposed, results := n.cmds[before:], n.results[before:]
	if err != nil {
		checkTravels(t, err)
	}
	bad := r.badFields()
	switch c := status.Code(err); {
	case len(bad) > 0:
		if c != codes.InvalidArgument && c != codes.ResourceExhausted {
			t.Fatalf("%s with bad %v: got %v, want InvalidArgument or ResourceExhausted", r, bad, err)
		}
		if !namesOneOf(status.Convert(err).Message(), bad) {
			t.Fatalf("%s: message %q does not start with one of the bad fields %v", r, status.Convert(err).Message(), bad)
		}
		for i, res := range results {
			if res.Code != fsmpb.Code_INVALID && res.Code != fsmpb.Code_LIMIT {
				t.Fatalf("%s: refused with %v, yet the state machine applied %v: %s", r, err, proposed[i], res.Code)
			}
		}
	case c == codes.InvalidArgument || c == codes.ResourceExhausted:
		t.Fatalf("%s has no bad field, yet got %v", r, err)
	}
	for i, res := range results {
		if res.Code == fsmpb.Code_INVALID && len(bad) == 0 {
			t.Fatalf("%s: the edge accepted it, the state machine refused %v as INVALID: %s", r, proposed[i], res.Message)
		}
	}
}

// build returns the request and a call of its handler.
func (r *edgeRequest) build(s *Server) (proto.Message, func(context.Context) error) {
	ls, kv := lockService{Server: s}, kvService{Server: s}
	h := r.header
	switch r.kind {
	case 0:
		q := &dlockv1.AcquireRequest{Header: h, Name: r.name, Owner: r.owner, TtlMs: r.ttl, WaitMs: r.wait}
		return q, func(ctx context.Context) error { _, err := ls.Acquire(ctx, q); return err }
	case 1:
		q := &dlockv1.RenewRequest{Header: h, Name: r.name, Owner: r.owner, Token: r.token, TtlMs: r.ttl}
		return q, func(ctx context.Context) error { _, err := ls.Renew(ctx, q); return err }
	case 2:
		q := &dlockv1.ReleaseRequest{Header: h, Name: r.name, Owner: r.owner, Token: r.token}
		return q, func(ctx context.Context) error { _, err := ls.Release(ctx, q); return err }
	case 3:
		q := &dlockv1.QueryRequest{Name: r.name}
		return q, func(ctx context.Context) error { _, err := ls.Query(ctx, q); return err }
	case 4:
		q := &dlockv1.PutRequest{Header: h, Key: r.name, Value: r.value}
		return q, func(ctx context.Context) error { _, err := kv.Put(ctx, q); return err }
	case 5:
		q := &dlockv1.GetRequest{Key: r.name}
		return q, func(ctx context.Context) error { _, err := kv.Get(ctx, q); return err }
	case 6:
		q := &dlockv1.DeleteRequest{Header: h, Key: r.name}
		return q, func(ctx context.Context) error { _, err := kv.Delete(ctx, q); return err }
	case 7:
		q := &dlockv1.ListLocksRequest{Prefix: r.name, StartAfter: r.owner, Limit: uint32(r.token)}
		return q, func(ctx context.Context) error { _, err := ls.List(ctx, q); return err }
	}
	q := &dlockv1.ListKeysRequest{Prefix: r.name, StartAfter: r.owner, Limit: uint32(r.token), KeysOnly: r.seq%2 == 0}
	return q, func(ctx context.Context) error { _, err := kv.List(ctx, q); return err }
}

// badFields judges the request by DESIGN.md's rules and the configured
// limits, and returns the names a refusal may give: a lock name or key that
// is empty or over name_bytes_max, an owner likewise, a TTL <= 0 (< 0 on
// renew, where 0 keeps the hold's TTL) or over lease_max, a wait < 0 or
// over acquire_timeout_max, a value over value_bytes_max, and a
// deduplicating client id over the owner limit (name_bytes_max).
func (r *edgeRequest) badFields() []string {
	var bad []string
	id := func(field, v string) {
		if v == "" || len(v) > r.limits.NameBytesMax {
			bad = append(bad, field)
		}
	}
	durs := func(field string, v, lo int64, hi time.Duration) {
		if v < lo || v > hi.Milliseconds() {
			bad = append(bad, field)
		}
	}
	header := func() {
		if r.clientID != "" && r.seq != 0 && len(r.clientID) > r.limits.NameBytesMax {
			bad = append(bad, "client id")
		}
	}
	switch r.kind {
	case 0:
		id("name", r.name)
		id("owner", r.owner)
		durs("ttl_ms", r.ttl, 1, r.limits.LeaseMax.Duration())
		durs("wait_ms", r.wait, 0, r.limits.AcquireTimeoutMax.Duration())
		header()
	case 1:
		id("name", r.name)
		id("owner", r.owner)
		durs("ttl_ms", r.ttl, 0, r.limits.LeaseMax.Duration())
		header()
	case 2:
		id("name", r.name)
		id("owner", r.owner)
		header()
	case 3:
		id("name", r.name)
	case 4:
		id("key", r.name)
		if len(r.value) > r.limits.ValueBytesMax {
			bad = append(bad, "value")
		}
		header()
	case 5:
		id("key", r.name)
	case 6:
		id("key", r.name)
		header()
	}
	return bad
}

func (r *edgeRequest) String() string {
	req, _ := r.build(&Server{})
	s := fmt.Sprintf("%T {%v}", req, req)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// namesOneOf reports whether msg, past an optional "dlock: ", starts with
// one of fields.
func namesOneOf(msg string, fields []string) bool {
	msg = strings.TrimPrefix(msg, "dlock: ")
	for _, f := range fields {
		if strings.HasPrefix(msg, f+" ") {
			return true
		}
	}
	return false
}

// checkTravels fails unless err is a gRPC status with a dlock ErrorInfo
// (cancellation aside) whose status proto marshals, as grpc-go must to send
// the details in the grpc-status-details-bin trailer.
func checkTravels(t *testing.T, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a gRPC status", err, err)
	}
	if st.Code() == codes.Canceled {
		return
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.Domain != dlockv1.ErrorDomain || info.Reason == "" {
		t.Fatalf("error %v carries no dlock ErrorInfo", err)
	}
	if _, merr := proto.Marshal(st.Proto()); merr != nil {
		t.Fatalf("error %q cannot be sent with its details: %v", st.Message(), merr)
	}
	want := map[codes.Code]string{codes.InvalidArgument: dlockv1.ReasonInvalid, codes.ResourceExhausted: dlockv1.ReasonLimit}[st.Code()]
	if want != "" && info.Reason != want {
		t.Fatalf("error %v: reason %q, want %q for %v", err, info.Reason, want, st.Code())
	}
}
