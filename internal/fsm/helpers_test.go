package fsm

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Test vocabulary: small limits so every ceiling is reachable, command
// builders, and terse text renderings of results, events and state, so that a
// row reads like the scenario and a failure prints got and want side by side.

const (
	sec    = int64(time.Second)
	minute = int64(time.Minute)
	hour   = int64(time.Hour)
	wallAt = 1_000_000 // a step's wall clock is its cluster time plus this
)

func testLimits() Limits {
	return Limits{
		NameBytesMax:        8,
		ValueBytesMax:       4,
		OwnerBytesMax:       8,
		WaitersPerLockMax:   2,
		LocksMax:            3,
		KeysMax:             2,
		ClientsMax:          2,
		ResultsPerClientMax: 2,
	}
}

// callAttempt is the attempt acq and withdraw use: rows that do not care
// about attempts read as one call per owner that acquires and withdraws.
const callAttempt = 7

func acq(name, owner string, ttl, wait int64) *fsmpb.Command {
	return acqBy(name, owner, ttl, wait, callAttempt)
}

// acqBy is acq made by the call with the given attempt.
func acqBy(name, owner string, ttl, wait int64, attempt uint64) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Acquire{Acquire: &fsmpb.Acquire{
		Name: name, Owner: owner, TtlNanos: ttl, WaitNanos: wait, Attempt: attempt}}}
}

func renew(name, owner string, token uint64, ttl int64) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Renew{Renew: &fsmpb.Renew{
		Name: name, Owner: owner, Token: token, TtlNanos: ttl}}}
}

func rel(name, owner string, token uint64) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Release{Release: &fsmpb.Release{Name: name, Owner: owner, Token: token}}}
}

func wd(name, owner string) *fsmpb.Command {
	return withdrawBy(name, owner, callAttempt)
}

// withdrawBy is withdraw sent by the call with the given attempt.
func withdrawBy(name, owner string, attempt uint64) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Withdraw{Withdraw: &fsmpb.Withdraw{Name: name, Owner: owner, Attempt: attempt}}}
}

func expire(name string, token uint64) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Expire{Expire: &fsmpb.Expire{Name: name, Token: token}}}
}

func leaderStart() *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_LeaderStart{LeaderStart: &fsmpb.LeaderStart{LeaderId: 1}}}
}

func put(key, value string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Put{Put: &fsmpb.Put{Key: key, Value: []byte(value)}}}
}

func del(key string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_Delete{Delete: &fsmpb.Delete{Key: key}}}
}

// as marks c as request seq of client id.
func as(id string, seq uint64, c *fsmpb.Command) *fsmpb.Command {
	c.ClientId, c.Seq = id, seq
	return c
}

// try sets an Acquire's client send number.
func try(n uint32, c *fsmpb.Command) *fsmpb.Command {
	c.GetAcquire().Try = n
	return c
}

// acked is as with the client's acknowledgement mark.
func acked(id string, seq, ackedBelow uint64, c *fsmpb.Command) *fsmpb.Command {
	c.ClientId, c.Seq, c.AckedBelow = id, seq, ackedBelow
	return c
}

// step is one log entry.
type step struct {
	at, wall int64
	cmds     []*fsmpb.Command
}

func at(t int64, cmds ...*fsmpb.Command) step { return step{at: t, wall: t + wallAt, cmds: cmds} }

func atWall(t, wall int64, cmds ...*fsmpb.Command) step { return step{at: t, wall: wall, cmds: cmds} }

func (st step) entry() *fsmpb.Entry {
	return &fsmpb.Entry{NowNanos: st.at, WallUnixNanos: st.wall, Commands: st.cmds}
}

// row is one table-test case: give is applied in order; want describes the
// last step's output and the state after it.
type row struct {
	name string
	give []step
	want want
}

// want: an empty string means "none": no results, no events, no record of
// lock "L", no keys, no clients.
type want struct {
	res, events      string
	lock, kv, client string
	same             bool // the last step left the snapshot byte-identical
}

func runRows(t *testing.T, l Limits, rows []row) {
	t.Helper()
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			s, out, same := play(t, l, tt.give)
			check(t, "results", fmtResults(out.Results), tt.want.res)
			check(t, "events", fmtEvents(out.Events), tt.want.events)
			check(t, "lock L", dumpLock(s, "L"), tt.want.lock)
			check(t, "kv", dumpKV(s), tt.want.kv)
			check(t, "clients", dumpClients(s), tt.want.client)
			check(t, "unchanged by the last step", same, tt.want.same)
		})
	}
}

// play applies steps to a new State, verifying every invariant after each.
func play(t *testing.T, l Limits, steps []step) (*State, Output, bool) {
	t.Helper()
	s := New(l)
	var out Output
	var before []byte
	for _, st := range steps {
		before = snap(t, s)
		out = s.Apply(st.entry())
		if err := s.verify(); err != nil {
			t.Fatalf("after step at %d: invariant broken: %v", st.at, err)
		}
	}
	return s, out, bytes.Equal(before, snap(t, s))
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// snap returns s's snapshot, and checks on the way that WriteSnapshot's
// hand-encoded records are byte for byte proto's encoding of the same
// records (snapenc.go): every state a test snaps checks it.
func snap(t testing.TB, s *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	if ref := protoSnapshot(t, s); !bytes.Equal(b.Bytes(), ref) {
		t.Fatalf("WriteSnapshot wrote %d bytes that differ from proto's encoding of the same records (%d bytes), first at byte %d",
			b.Len(), len(ref), firstDiff(b.Bytes(), ref))
	}
	return b.Bytes()
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func fmtResults(rs []*fsmpb.Result) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmtResult(r)
	}
	return strings.Join(parts, "; ")
}

// fmtResult renders a result's code and non-zero fields; the message is for
// humans and left out.
func fmtResult(r *fsmpb.Result) string {
	var b strings.Builder
	b.WriteString(r.Code.String())
	field := func(name string, v any, set bool) {
		if set {
			fmt.Fprintf(&b, " %s=%v", name, v)
		}
	}
	field("token", r.Token, r.Token != 0)
	field("nonce", r.Nonce, r.Nonce != 0)
	field("ttl", r.TtlNanos, r.TtlNanos != 0)
	field("acq", r.AcquiredUnixNanos-wallAt, r.AcquiredUnixNanos != 0)
	field("pos", r.Position, r.Position != 0)
	field("next", r.NextOwner, r.NextOwner != "")
	field("created", r.Created, r.Created)
	field("released", r.Released, r.Released)
	field("replayed", r.Replayed, r.Replayed)
	return b.String()
}

func fmtEvents(es []Event) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("%s %s %s token=%d nonce=%d ttl=%d acq=%d",
			e.Kind, e.Name, e.Owner, e.Token, e.Nonce, e.TTL, e.AcquiredUnixNanos-wallAt)
	}
	return strings.Join(parts, "; ")
}

// dumpLock renders a record: "free nonce=N released=T" or
// "OWNER token=T nonce=N ttl=D at=G exp=E[ q=W(ttl=D,dl=X)...]".
func dumpLock(s *State, name string) string {
	l := s.locks[name]
	if l == nil {
		return ""
	}
	if !l.held {
		return fmt.Sprintf("free nonce=%d released=%d", l.nonce, l.released)
	}
	h := l.hold
	out := fmt.Sprintf("%s token=%d nonce=%d ttl=%d at=%d exp=%d", h.owner, h.token, l.nonce, h.ttl, h.granted, h.expires)
	for i, w := range l.waiting() {
		sep := ","
		if i == 0 {
			sep = " q="
		}
		out += fmt.Sprintf("%s%s(ttl=%d,dl=%d)", sep, w.owner, w.ttl, w.deadline)
	}
	return out
}

func dumpKV(s *State) string {
	var parts []string
	for k := range s.keyNames.from("") {
		parts = append(parts, fmt.Sprintf("%s=%s", k, s.kv[k]))
	}
	return strings.Join(parts, " ")
}

// dumpClients renders "ID@LASTSEEN:SEQ=CODE,..." per client, by id.
func dumpClients(s *State) string {
	var parts []string
	for _, c := range s.lru.items {
		seqs := make([]string, len(c.results))
		for i, e := range c.results {
			seqs[i] = fmt.Sprintf("%d=%s", e.seq, e.res.Code)
		}
		parts = append(parts, fmt.Sprintf("%s@%d:%s", c.id, c.lastSeen, strings.Join(seqs, ",")))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// panicText runs f and returns what it panicked with, or "".
func panicText(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}
