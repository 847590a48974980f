package client_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/client/clienttest"
)

func TestQuery(t *testing.T) {
	s := clienttest.NewServer(t)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	if _, err := c.Query(ctx, "job"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Query of a never-acquired lock = %v, want ErrNotFound", err)
	}
	l, err := c.Acquire(ctx, "job", client.WithTTL(time.Minute))
	if err != nil {
		t.Fatalf("Acquire = %v", err)
	}
	info, err := c.Query(ctx, "job")
	if err != nil {
		t.Fatalf("Query = %v", err)
	}
	if info.Name != "job" || info.Owner != l.Owner() || info.Token != l.Token() || info.Nonce != 1 ||
		info.TTL != time.Minute || info.Remaining <= 0 || info.Remaining > time.Minute || info.Acquired.IsZero() ||
		!info.Held() {
		t.Errorf("Query = %+v, want job held by %q, token %d, nonce 1, ttl 1m", info, l.Owner(), l.Token())
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release = %v", err)
	}
	info, err = c.Query(ctx, "job", client.Stale())
	if err != nil || info.Held() || info.Owner != "" {
		t.Errorf("Query after Release = %+v, %v; want found with no owner", info, err)
	}
	calls := s.Calls(dlockv1.Lock_Query_FullMethodName)
	if !calls[len(calls)-1].Request.(*dlockv1.QueryRequest).GetStale() {
		t.Errorf("Query with Stale() sent stale=false")
	}
}

func TestLocksPagesThroughTheListing(t *testing.T) {
	s := clienttest.NewServer(t)
	s.SetPageSize(2)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)
	want := []string{"a/1", "a/2", "a/3", "a/4", "a/5"}
	for _, name := range append(slices.Clone(want), "b/1") {
		if _, err := c.TryAcquire(ctx, name, client.WithoutAutoRenew(), client.WithTTL(time.Minute)); err != nil {
			t.Fatalf("TryAcquire(%s) = %v", name, err)
		}
	}
	locks, err := c.Locks(ctx, "a/")
	if err != nil {
		t.Fatalf("Locks(a/) = %v", err)
	}
	var got []string
	for _, l := range locks {
		got = append(got, l.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Locks(a/) = %v, want %v", got, want)
	}
	if n := len(s.Calls(dlockv1.Lock_List_FullMethodName)); n != 3 {
		t.Errorf("list calls = %d, want 3 pages of at most 2", n)
	}
}

func TestKeyValue(t *testing.T) {
	s := clienttest.NewServer(t)
	s.SetPageSize(2)
	c := newClient(t, []string{s.Addr()})
	ctx := testCtx(t)

	if created, err := c.Put(ctx, "k", []byte("v1")); err != nil || !created {
		t.Errorf("first Put = %v, %v; want created", created, err)
	}
	if created, err := c.Put(ctx, "k", []byte("v2")); err != nil || created {
		t.Errorf("second Put = %v, %v; want replaced", created, err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || !bytes.Equal(v, []byte("v2")) {
		t.Errorf("Get = %q, %v; want v2", v, err)
	}
	if _, err := c.Put(ctx, "empty", nil); err != nil {
		t.Fatalf("Put(empty) = %v", err)
	}
	if v, err := c.Get(ctx, "empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get of an empty value = %#v, %v; want a non-nil empty slice", v, err)
	}
	for _, k := range []string{"p/1", "p/2", "p/3"} {
		if _, err := c.Put(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Put(%s) = %v", k, err)
		}
	}
	if keys, err := c.Keys(ctx, "p/", client.Stale()); err != nil || !slices.Equal(keys, []string{"p/1", "p/2", "p/3"}) {
		t.Errorf("Keys(p/) = %v, %v; want p/1 p/2 p/3", keys, err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "k"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
}

func TestStatus(t *testing.T) {
	s := clienttest.NewServer(t)
	s.SetStatus(&dlockv1.StatusResponse{NodeId: 2, State: "Follower", LeaderId: 1, Term: 7, CommitIndex: 40,
		AppliedIndex: 39, Ready: true, Members: []*dlockv1.Member{
			{Id: 1, PeerAddress: "p1", ClientAddress: "c1", Suffrage: "voter", Leader: true},
			{Id: 4, PeerAddress: "p4", ClientAddress: "c4", Suffrage: "nonvoter"},
		}})
	c := newClient(t, []string{s.Addr()})
	got, err := c.Status(testCtx(t))
	if err != nil {
		t.Fatalf("Status = %v", err)
	}
	want := client.Status{Endpoint: s.Addr(), NodeID: 2, State: "Follower", LeaderID: 1, Term: 7, CommitIndex: 40,
		AppliedIndex: 39, Ready: true, Members: []client.Member{
			{ID: 1, PeerAddress: "p1", ClientAddress: "c1", Voter: true, Leader: true},
			{ID: 4, PeerAddress: "p4", ClientAddress: "c4"},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
}
