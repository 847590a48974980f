package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/testcluster"
)

// The seed-compatible API's answers to bad input, against a real cluster:
// false or nil, never a panic, and nothing changed.
func TestFacadeBadInputs(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	r := &rotor{addrs: c.Endpoints()}
	api := newAPI(t)
	long := strings.Repeat("n", 2000)
	falses := []struct {
		name string
		call func() bool
	}{
		{"AcquireDLock with an empty name", func() bool { return api.AcquireDLock(r.addr(), "", 1000) }},
		{"AcquireDLock with expire 0", func() bool { return api.AcquireDLock(r.addr(), "l", 0) }},
		{"AcquireDLock with a negative expire", func() bool { return api.AcquireDLock(r.addr(), "l", -5) }},
		{"AcquireDLock with an over-long name", func() bool { return api.AcquireDLock(r.addr(), long, 1000) }},
		{"ReleaseDLock of an unknown lock", func() bool { return api.ReleaseDLock(r.addr(), "never") }},
		{"PutState with an empty key", func() bool { return api.PutState(r.addr(), "", []byte("v")) }},
		{"PutState with a value over 1 MiB", func() bool { return api.PutState(r.addr(), "k", make([]byte, 1<<20+1)) }},
		{"DelState of a missing key", func() bool { return api.DelState(r.addr(), "missing") }},
		{"AcquireDLock on an address with no node", func() bool { return api.AcquireDLock("127.0.0.1:1", "l", 1000, 200) }},
	}
	for _, f := range falses {
		if f.call() {
			t.Errorf("%s = true, want false", f.name)
		}
	}
	if info, ok := api.QueryDLock(r.addr(), "never"); ok || info != nil {
		t.Errorf("QueryDLock of an unknown lock = %+v, %v; want nil, false", info, ok)
	}
	if v := api.GetState(r.addr(), "missing"); v != nil {
		t.Errorf("GetState of a missing key = %q, want nil", v)
	}
	if !api.PutState(r.addr(), "empty", nil) {
		t.Fatal("PutState with a nil value = false, want true (stores an empty value)")
	}
	if v := api.GetState(r.addr(), "empty"); v == nil || len(v) != 0 {
		t.Errorf("GetState of an empty value = %v, want an empty, non-nil slice", v)
	}
	if info, ok := api.QueryDLock(r.addr(), "l"); ok {
		t.Errorf("lock l exists after refused acquires: %+v", info)
	}
}
