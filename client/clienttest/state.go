package clienttest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// state is what the stand-in's nodes share. Every change closes changed, waking waiters.
type state struct {
	mu       sync.Mutex
	changed  chan struct{}
	token    uint64 // the cluster-wide grant counter
	locks    map[string]*lockRec
	kv       map[string][]byte
	done     map[dedupKey]result
	pageSize int
	status   *dlockv1.StatusResponse
}

type lockRec struct {
	owner    string
	token    uint64
	nonce    uint64
	ttl      time.Duration
	leaseEnd time.Time
	acquired time.Time
	queue    []*waiter // FIFO
}

type waiter struct {
	owner    string
	ttl      time.Duration
	deadline time.Time
}

type dedupKey struct {
	client string
	seq    uint64
}

type result struct {
	resp proto.Message
	err  error
}

func newState() *state {
	return &state{
		changed:  make(chan struct{}),
		locks:    make(map[string]*lockRec),
		kv:       make(map[string][]byte),
		done:     make(map[dedupKey]result),
		pageSize: 100,
		status: &dlockv1.StatusResponse{NodeId: 1, State: "Leader", LeaderId: 1, Term: 1, Ready: true,
			Members: []*dlockv1.Member{{Id: 1, PeerAddress: "127.0.0.1:14005", ClientAddress: "127.0.0.1:24005",
				Suffrage: "voter", Leader: true}}},
	}
}

func errorf(code codes.Code, reason, format string, args ...any) error {
	return Error(code, reason, fmt.Sprintf(format, args...))
}

// broadcastLocked wakes every waiter; st.mu must be held.
func (st *state) broadcastLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// dedup runs apply once per request header: a repeated header gets the remembered result.
func (st *state) dedup(h *dlockv1.RequestHeader, apply func() (proto.Message, error)) (proto.Message, error) {
	if h.GetClientId() == "" {
		return apply()
	}
	k := dedupKey{h.GetClientId(), h.GetSeq()}
	st.mu.Lock()
	r, ok := st.done[k]
	st.mu.Unlock()
	if ok {
		return r.resp, r.err
	}
	resp, err := apply()
	if status.Code(err) != codes.Canceled && status.Code(err) != codes.Unavailable {
		st.mu.Lock()
		st.done[k] = result{resp, err}
		st.mu.Unlock()
	}
	return resp, err
}

// settleLocked frees rec if its lease has passed and hands it to the first live waiter.
func (st *state) settleLocked(rec *lockRec, now time.Time) {
	if rec.owner != "" && !now.Before(rec.leaseEnd) {
		rec.owner = ""
		st.handOffLocked(rec, now)
	}
}

// handOffLocked grants a free rec to the first waiter whose deadline has not passed.
func (st *state) handOffLocked(rec *lockRec, now time.Time) {
	for len(rec.queue) > 0 && rec.owner == "" {
		w := rec.queue[0]
		rec.queue = rec.queue[1:]
		if now.Before(w.deadline) {
			st.grantLocked(rec, w.owner, w.ttl, now)
		}
	}
	st.broadcastLocked()
}

func (st *state) grantLocked(rec *lockRec, owner string, ttl time.Duration, now time.Time) {
	st.token++
	rec.owner, rec.token, rec.ttl = owner, st.token, ttl
	rec.nonce++
	rec.leaseEnd, rec.acquired = now.Add(ttl), now
}

func (rec *lockRec) dequeue(owner string) {
	rec.queue = slices.DeleteFunc(rec.queue, func(w *waiter) bool { return w.owner == owner })
}

func (rec *lockRec) queued(owner string) bool {
	return slices.ContainsFunc(rec.queue, func(w *waiter) bool { return w.owner == owner })
}

type lockService struct {
	dlockv1.UnimplementedLockServer
	st *state
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func (s *lockService) Acquire(ctx context.Context, req *dlockv1.AcquireRequest) (*dlockv1.AcquireResponse, error) {
	if req.GetName() == "" || req.GetOwner() == "" || req.GetTtlMs() <= 0 || req.GetWaitMs() < 0 {
		return nil, errorf(codes.InvalidArgument, dlockv1.ReasonInvalid, "bad acquire %v", req)
	}
	resp, err := s.st.dedup(req.GetHeader(), func() (proto.Message, error) { return s.acquire(ctx, req) })
	if err != nil {
		return nil, err
	}
	return resp.(*dlockv1.AcquireResponse), nil
}

func grantResponse(rec *lockRec) *dlockv1.AcquireResponse {
	return &dlockv1.AcquireResponse{Token: rec.token, Nonce: rec.nonce, TtlMs: rec.ttl.Milliseconds(),
		AcquiredUnixNano: rec.acquired.UnixNano()}
}

func (s *lockService) acquire(ctx context.Context, req *dlockv1.AcquireRequest) (proto.Message, error) {
	st, owner, ttl := s.st, req.GetOwner(), ms(req.GetTtlMs())
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now()
	rec := st.locks[req.GetName()]
	if rec == nil {
		rec = &lockRec{}
		st.locks[req.GetName()] = rec
	}
	st.settleLocked(rec, now)
	switch {
	case rec.owner == owner: // reentrant: same token, fresh lease
		rec.ttl, rec.leaseEnd = ttl, now.Add(ttl)
		return grantResponse(rec), nil
	case rec.owner == "" && len(rec.queue) == 0:
		st.grantLocked(rec, owner, ttl, now)
		st.broadcastLocked()
		return grantResponse(rec), nil
	case req.GetWaitMs() == 0:
		return nil, errorf(codes.FailedPrecondition, dlockv1.ReasonLocked, "lock %q is held by %q",
			req.GetName(), rec.owner)
	}
	deadline := now.Add(ms(req.GetWaitMs()))
	if !rec.queued(owner) {
		rec.queue = append(rec.queue, &waiter{owner: owner, ttl: ttl, deadline: deadline})
	}
	for {
		if rec.owner == owner {
			return grantResponse(rec), nil
		}
		if !now.Before(deadline) {
			rec.dequeue(owner)
			return nil, errorf(codes.DeadlineExceeded, dlockv1.ReasonWaitTimeout, "wait for lock %q ended",
				req.GetName())
		}
		wake := deadline
		if rec.owner != "" && rec.leaseEnd.Before(wake) {
			wake = rec.leaseEnd
		}
		changed := st.changed
		st.mu.Unlock()
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		st.mu.Lock()
		now = time.Now()
		if ctx.Err() != nil { // the caller gave up: withdraw, releasing a grant that raced with it
			rec.dequeue(owner)
			if rec.owner == owner {
				rec.owner = ""
				st.handOffLocked(rec, now)
			}
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		st.settleLocked(rec, now)
	}
}

// holdLocked checks that owner holds name with token (0: any) and returns the record.
func (st *state) holdLocked(name, owner string, token uint64) (*lockRec, error) {
	rec := st.locks[name]
	if rec != nil {
		st.settleLocked(rec, time.Now())
	}
	switch {
	case rec == nil || rec.owner == "":
		return nil, errorf(codes.FailedPrecondition, dlockv1.ReasonNotHeld, "lock %q is not held", name)
	case rec.owner != owner:
		return nil, errorf(codes.FailedPrecondition, dlockv1.ReasonHeldByOther, "lock %q is held by %q",
			name, rec.owner)
	case token != 0 && token != rec.token:
		return nil, errorf(codes.FailedPrecondition, dlockv1.ReasonTokenMismatch,
			"lock %q: token %d, current hold has %d", name, token, rec.token)
	}
	return rec, nil
}

func (s *lockService) Renew(_ context.Context, req *dlockv1.RenewRequest) (*dlockv1.RenewResponse, error) {
	if req.GetName() == "" || req.GetOwner() == "" || req.GetTtlMs() < 0 {
		return nil, errorf(codes.InvalidArgument, dlockv1.ReasonInvalid, "bad renew %v", req)
	}
	resp, err := s.st.dedup(req.GetHeader(), func() (proto.Message, error) {
		st := s.st
		st.mu.Lock()
		defer st.mu.Unlock()
		rec, err := st.holdLocked(req.GetName(), req.GetOwner(), req.GetToken())
		if err != nil {
			return nil, err
		}
		if req.GetTtlMs() > 0 {
			rec.ttl = ms(req.GetTtlMs())
		}
		rec.leaseEnd = time.Now().Add(rec.ttl)
		return &dlockv1.RenewResponse{Token: rec.token, TtlMs: rec.ttl.Milliseconds()}, nil
	})
	if err != nil {
		return nil, err
	}
	return resp.(*dlockv1.RenewResponse), nil
}

func (s *lockService) Release(_ context.Context, req *dlockv1.ReleaseRequest) (*dlockv1.ReleaseResponse, error) {
	if req.GetName() == "" || req.GetOwner() == "" {
		return nil, errorf(codes.InvalidArgument, dlockv1.ReasonInvalid, "bad release %v", req)
	}
	resp, err := s.st.dedup(req.GetHeader(), func() (proto.Message, error) {
		st := s.st
		st.mu.Lock()
		defer st.mu.Unlock()
		rec, err := st.holdLocked(req.GetName(), req.GetOwner(), req.GetToken())
		if err != nil {
			return nil, err
		}
		rec.owner = ""
		st.handOffLocked(rec, time.Now())
		return &dlockv1.ReleaseResponse{NextOwner: rec.owner}, nil
	})
	if err != nil {
		return nil, err
	}
	return resp.(*dlockv1.ReleaseResponse), nil
}

func (st *state) infoLocked(name string, rec *lockRec, now time.Time) *dlockv1.LockInfo {
	st.settleLocked(rec, now)
	info := &dlockv1.LockInfo{Name: name, Owner: rec.owner, Token: rec.token, Nonce: rec.nonce,
		TtlMs: rec.ttl.Milliseconds(), AcquiredUnixNano: rec.acquired.UnixNano(), Waiters: uint32(len(rec.queue))}
	if rec.owner != "" {
		info.RemainingMs = rec.leaseEnd.Sub(now).Milliseconds()
	}
	return info
}

func (s *lockService) Query(_ context.Context, req *dlockv1.QueryRequest) (*dlockv1.QueryResponse, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	rec := st.locks[req.GetName()]
	if rec == nil || rec.nonce == 0 {
		return nil, errorf(codes.NotFound, dlockv1.ReasonNotFound, "no lock %q", req.GetName())
	}
	return &dlockv1.QueryResponse{Lock: st.infoLocked(req.GetName(), rec, time.Now())}, nil
}

// page returns the sorted names of m that start with prefix and sort after after, up to limit (0: the
// page size), and whether more were left out.
func page[V any](m map[string]V, prefix, after string, limit uint32, pageSize int) ([]string, bool) {
	var names []string
	for name := range m {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	n := pageSize
	if limit > 0 {
		n = int(limit)
	}
	if len(names) > n {
		return names[:n], true
	}
	return names, false
}

func (s *lockService) List(_ context.Context, req *dlockv1.ListLocksRequest) (*dlockv1.ListLocksResponse, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	live := make(map[string]*lockRec)
	for name, rec := range st.locks {
		if rec.nonce > 0 {
			live[name] = rec
		}
	}
	names, more := page(live, req.GetPrefix(), req.GetStartAfter(), req.GetLimit(), st.pageSize)
	resp := &dlockv1.ListLocksResponse{More: more}
	now := time.Now()
	for _, name := range names {
		resp.Locks = append(resp.Locks, st.infoLocked(name, live[name], now))
	}
	return resp, nil
}

type kvService struct {
	dlockv1.UnimplementedKVServer
	st *state
}

func (s *kvService) Put(_ context.Context, req *dlockv1.PutRequest) (*dlockv1.PutResponse, error) {
	if req.GetKey() == "" {
		return nil, errorf(codes.InvalidArgument, dlockv1.ReasonInvalid, "empty key")
	}
	resp, err := s.st.dedup(req.GetHeader(), func() (proto.Message, error) {
		st := s.st
		st.mu.Lock()
		defer st.mu.Unlock()
		_, existed := st.kv[req.GetKey()]
		st.kv[req.GetKey()] = slices.Clone(req.GetValue())
		return &dlockv1.PutResponse{Created: !existed}, nil
	})
	if err != nil {
		return nil, err
	}
	return resp.(*dlockv1.PutResponse), nil
}

func (s *kvService) Get(_ context.Context, req *dlockv1.GetRequest) (*dlockv1.GetResponse, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	v, ok := s.st.kv[req.GetKey()]
	if !ok {
		return nil, errorf(codes.NotFound, dlockv1.ReasonNotFound, "no key %q", req.GetKey())
	}
	return &dlockv1.GetResponse{Value: v}, nil
}

func (s *kvService) Delete(_ context.Context, req *dlockv1.DeleteRequest) (*dlockv1.DeleteResponse, error) {
	resp, err := s.st.dedup(req.GetHeader(), func() (proto.Message, error) {
		st := s.st
		st.mu.Lock()
		defer st.mu.Unlock()
		if _, ok := st.kv[req.GetKey()]; !ok {
			return nil, errorf(codes.NotFound, dlockv1.ReasonNotFound, "no key %q", req.GetKey())
		}
		delete(st.kv, req.GetKey())
		return &dlockv1.DeleteResponse{}, nil
	})
	if err != nil {
		return nil, err
	}
	return resp.(*dlockv1.DeleteResponse), nil
}

func (s *kvService) List(_ context.Context, req *dlockv1.ListKeysRequest) (*dlockv1.ListKeysResponse, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	names, more := page(st.kv, req.GetPrefix(), req.GetStartAfter(), req.GetLimit(), st.pageSize)
	resp := &dlockv1.ListKeysResponse{More: more}
	for _, k := range names {
		kv := &dlockv1.KeyValue{Key: k}
		if !req.GetKeysOnly() {
			kv.Value = st.kv[k]
		}
		resp.Kvs = append(resp.Kvs, kv)
	}
	return resp, nil
}

type clusterService struct {
	dlockv1.UnimplementedClusterServer
	st *state
}

func (s *clusterService) Status(context.Context, *dlockv1.StatusRequest) (*dlockv1.StatusResponse, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return proto.Clone(s.st.status).(*dlockv1.StatusResponse), nil
}
