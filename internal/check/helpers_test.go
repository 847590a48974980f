package check

import (
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

// Synthetic histories: times are in milliseconds, [inv, ret].

const (
	ok      = history.OK
	refused = history.Refused
	unknown = history.Unknown

	long = time.Hour // a TTL or wait that outlasts every test history
)

func msd(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func base(c int, kind history.Kind, name string, inv, ret int, out history.Outcome) history.Op {
	return history.Op{Client: c, Kind: kind, Name: name, Invoke: msd(inv), Return: msd(ret), Outcome: out}
}

// acquired is an OK acquire with a long TTL and wait.
func acquired(c int, lock, owner string, inv, ret int, token, nonce uint64) history.Op {
	op := base(c, history.Acquire, lock, inv, ret, ok)
	op.Owner, op.TTL, op.Wait, op.ResToken, op.ResNonce = owner, long, long, token, nonce
	return op
}

// acquire is an acquire that was refused or not answered, with a long TTL
// and the given wait.
func acquire(c int, lock, owner string, inv, ret int, out history.Outcome, wait time.Duration) history.Op {
	op := base(c, history.Acquire, lock, inv, ret, out)
	op.Owner, op.TTL, op.Wait = owner, long, wait
	return op
}

func release(c int, lock, owner string, token uint64, inv, ret int, out history.Outcome) history.Op {
	op := base(c, history.Release, lock, inv, ret, out)
	op.Owner, op.Token = owner, token
	return op
}

// renew has a long TTL; an OK one returns its token.
func renew(c int, lock, owner string, token uint64, inv, ret int, out history.Outcome) history.Op {
	op := base(c, history.Renew, lock, inv, ret, out)
	op.Owner, op.Token, op.TTL = owner, token, long
	if out == ok {
		op.ResToken = token
	}
	return op
}

// query is an OK query that found the lock's record.
func query(c int, lock string, inv, ret int, holder string, token, nonce uint64) history.Op {
	op := base(c, history.Query, lock, inv, ret, ok)
	op.ResFound, op.ResHolder, op.ResToken, op.ResNonce = true, holder, token, nonce
	return op
}

// noRecord is a query that found no record.
func noRecord(c int, lock string, inv, ret int) history.Op {
	return base(c, history.Query, lock, inv, ret, ok)
}

func put(c int, key, value string, inv, ret int, out history.Outcome) history.Op {
	op := base(c, history.Put, key, inv, ret, out)
	op.Value = value
	return op
}

// get is an OK get that found value.
func get(c int, key string, inv, ret int, value string) history.Op {
	op := base(c, history.Get, key, inv, ret, ok)
	op.ResFound, op.ResValue = true, value
	return op
}

// absent is an OK get that found no key.
func absent(c int, key string, inv, ret int) history.Op {
	return base(c, history.Get, key, inv, ret, ok)
}

func del(c int, key string, inv, ret int, out history.Outcome) history.Op {
	return base(c, history.Delete, key, inv, ret, out)
}

func ttl(op history.Op, d time.Duration) history.Op {
	op.TTL = d
	return op
}

func queued(op history.Op, at int) history.Op {
	op.Queued = msd(at)
	return op
}

func wait(op history.Op, d time.Duration) history.Op {
	op.Wait = d
	return op
}

// fast is the linearizability options for the small tests: a timeout is
// a failure there, and these histories take microseconds.
var fast = LinOptions{Timeout: 10 * time.Second}

// verdict is the test-friendly summary of a Result.
func verdict(r Result) string {
	switch {
	case r.TimedOut:
		return "timed out"
	case r.Count > 0:
		return "fail"
	}
	return "ok"
}

// checkVerdict fails t when r's verdict is not want, showing r.
func checkVerdict(t *testing.T, r Result, want string) {
	t.Helper()
	if got := verdict(r); got != want {
		t.Errorf("verdict = %s, want %s\n%s", got, want, r)
	}
}

// mustContain fails t if s lacks sub.
func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
