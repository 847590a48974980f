package dlockapi_test

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/client/clienttest"
	"github.com/dlock-raft/dlock/dlockapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newAPI(t *testing.T, preset ...string) *dlockapi.DLockRaftClientAPI {
	t.Helper()
	api := dlockapi.NewDLockRaftClientAPI(preset...)
	t.Cleanup(api.Close)
	return api
}

func TestClientID(t *testing.T) {
	if got := newAPI(t, "preset-id").ClientId; got != "preset-id" {
		t.Errorf("ClientId with a preset = %q, want %q (the preset is honoured)", got, "preset-id")
	}
	a, b := newAPI(t), newAPI(t, "")
	for _, id := range []string{a.ClientId, b.ClientId} {
		if len(id) != 27 {
			t.Errorf("generated ClientId %q has %d characters, want 27 (KSUID format)", id, len(id))
		}
	}
	if a.ClientId == b.ClientId {
		t.Errorf("two handlers share the generated ClientId %q", a.ClientId)
	}
}

// The seed's return conventions, row by row, each against a fresh node. setup runs through a second
// handler ("other") where a row needs another owner.
func TestReturnConventions(t *testing.T) {
	tests := []struct {
		name  string
		setup func(addr string, me, other *dlockapi.DLockRaftClientAPI)
		run   func(addr string, me *dlockapi.DLockRaftClientAPI) bool
		want  bool
	}{
		// "ok == true iff the dlock is acquired successfully."
		{"acquire a free lock", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 10000) }, true},
		{"acquire again as the owner (reentrant)",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) { me.AcquireDLock(a, "l", 10000) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 10000) }, true},
		{"acquire a held lock without waiting",
			func(a string, _, other *dlockapi.DLockRaftClientAPI) { other.AcquireDLock(a, "l", 10000) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 10000, 0) }, false},
		{"acquire a held lock, wait times out",
			func(a string, _, other *dlockapi.DLockRaftClientAPI) { other.AcquireDLock(a, "l", 10000) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 10000, 100) }, false},
		{"acquire a lock whose holder's lease ends during the wait",
			func(a string, _, other *dlockapi.DLockRaftClientAPI) { other.AcquireDLock(a, "l", 100) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 10000, 2000) }, true},
		{"acquire with no lease", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.AcquireDLock(a, "l", 0) }, false},
		// "ok == true iff the lock is released in this release request."
		{"release a held lock",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) { me.AcquireDLock(a, "l", 10000) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.ReleaseDLock(a, "l") }, true},
		{"release twice",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) {
				me.AcquireDLock(a, "l", 10000)
				me.ReleaseDLock(a, "l")
			},
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.ReleaseDLock(a, "l") }, false},
		{"release another's lock",
			func(a string, _, other *dlockapi.DLockRaftClientAPI) { other.AcquireDLock(a, "l", 10000) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.ReleaseDLock(a, "l") }, false},
		{"release an unknown lock", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.ReleaseDLock(a, "l") }, false},
		// "ok == true iff the dlock exists (either locking or released)."
		{"query an unknown lock", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { _, ok := me.QueryDLock(a, "l"); return ok }, false},
		{"query a released lock",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) {
				me.AcquireDLock(a, "l", 10000)
				me.ReleaseDLock(a, "l")
			},
			func(a string, me *dlockapi.DLockRaftClientAPI) bool {
				info, ok := me.QueryDLock(a, "l")
				return ok && info.Owner == ""
			}, true},
		// Key-value store.
		{"put", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.PutState(a, "k", []byte("v")) }, true},
		{"put an empty value", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.PutState(a, "k", nil) }, true},
		{"get an empty value is non-nil and empty",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) { me.PutState(a, "k", []byte{}) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool {
				v := me.GetState(a, "k")
				return v != nil && len(v) == 0
			}, true},
		{"get a missing key is nil", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.GetState(a, "k") == nil }, true},
		{"delete a key",
			func(a string, me, _ *dlockapi.DLockRaftClientAPI) { me.PutState(a, "k", []byte("v")) },
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.DelState(a, "k") }, true},
		{"delete a missing key", nil,
			func(a string, me *dlockapi.DLockRaftClientAPI) bool { return me.DelState(a, "k") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := clienttest.NewServer(t).Addr()
			me, other := newAPI(t), newAPI(t)
			if tt.setup != nil {
				tt.setup(addr, me, other)
			}
			if got := tt.run(addr, me); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestQueryReportsTheHold(t *testing.T) {
	addr := clienttest.NewServer(t).Addr()
	api := newAPI(t)
	if !api.AcquireDLock(addr, "l", 10000) {
		t.Fatalf("AcquireDLock = false, want true")
	}
	info, ok := api.QueryDLock(addr, "l")
	if !ok {
		t.Fatalf("QueryDLock = false, want true")
	}
	if info.Owner != api.ClientId || info.Nonce != 1 || info.Token == 0 || info.PendingNum != 0 ||
		info.Expire != (10*time.Second).Nanoseconds() || info.Remaining <= 0 || info.Remaining > info.Expire ||
		info.Timestamp <= 0 {
		t.Errorf("QueryDLock = %+v, want owner %q, nonce 1, a token, expire 10s in ns, remaining in (0, expire]",
			info, api.ClientId)
	}
}

// DESIGN.md: "Any node serves any request" and the brief: the owner is the same whichever node is used.
func TestOwnerIsTheSameThroughEveryNode(t *testing.T) {
	a := clienttest.NewServer(t)
	b := a.Peer(t)
	api := newAPI(t)
	if !api.AcquireDLock(a.Addr(), "l", 10000) {
		t.Fatalf("AcquireDLock through a = false")
	}
	if !api.ReleaseDLock(b.Addr(), "l") {
		t.Errorf("ReleaseDLock through b = false, want true (same owner on every node)")
	}
}

func TestUnreachableNodeFailsWithinTheTimeout(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()
	api := newAPI(t)
	start := time.Now()
	if api.AcquireDLock(dead, "l", 1000, 200) {
		t.Errorf("AcquireDLock on a dead address = true, want false")
	}
	if _, ok := api.QueryDLock(dead, "l", 200); ok {
		t.Errorf("QueryDLock on a dead address = true, want false")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("two calls with 200ms timeouts took %s, want about 1.4s at most", elapsed)
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	addr := clienttest.NewServer(t).Addr()
	api := dlockapi.NewDLockRaftClientAPI()
	if !api.PutState(addr, "k", []byte("v")) {
		t.Fatalf("PutState = false")
	}
	api.Close()
	api.Close() // idempotent
	if api.GetState(addr, "k") != nil || api.AcquireDLock(addr, "l", 1000) {
		t.Errorf("calls after Close succeeded, want them to fail")
	}
}

func TestConcurrentUse(t *testing.T) {
	addr := clienttest.NewServer(t).Addr()
	api := newAPI(t)
	const n = 8
	results := make(chan bool, n)
	for range n {
		go func() { results <- api.PutState(addr, "k", []byte("v")) }()
	}
	for range n {
		if !<-results {
			t.Errorf("concurrent PutState = false, want true")
		}
	}
}

// A timeout of 0 means "do not wait" to AcquireDLock, and the default to
// every other call, which could not reach the cluster in no time at all.
func TestZeroTimeout(t *testing.T) {
	addr := clienttest.NewServer(t).Addr()
	api := newAPI(t)
	if !api.AcquireDLock(addr, "z", 60000, 0) {
		t.Fatal("AcquireDLock of a free lock with timeout 0 = false, want true")
	}
	if info, ok := api.QueryDLock(addr, "z", 0); !ok || info.Owner != api.ClientId {
		t.Fatalf("QueryDLock with timeout 0 = %+v, %v; want the hold", info, ok)
	}
	if !api.ReleaseDLock(addr, "z", 0) {
		t.Fatal("ReleaseDLock with timeout 0 = false, want true")
	}
	if !api.PutState(addr, "k", []byte("v"), 0) || string(api.GetState(addr, "k", 0)) != "v" || !api.DelState(addr, "k", 0) {
		t.Fatal("PutState, GetState, DelState with timeout 0 did not reach the node")
	}
}
