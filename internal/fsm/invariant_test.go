package fsm

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// heldWithWaiter returns a State where a holds L (token 1) and b waits.
func heldWithWaiter() (*State, *lock) {
	s := New(testLimits())
	s.Apply(at(100, acq("L", "a", 10, 0), acq("L", "b", 10, 50)).entry())
	return s, s.locks["L"]
}

// STYLE: "Invariant breaks (token not increasing, duplicate waiter) panic,
// naming invariant and values; bad input and network faults are returned."
// Each row breaks an invariant the way only a bug could.
var invariantRows = []struct {
	name string
	give func()
	want string
}{
	{
		name: "a fencing token that would not increase",
		give: func() {
			s := New(testLimits())
			s.fence = math.MaxUint64
			s.Apply(at(100, acq("L", "a", 10, 0)).entry())
		},
		want: "dlock: fsm invariant broken: fencing token not increasing: fence 18446744073709551615 is the last",
	},
	{
		name: "a grant of a held lock",
		give: func() { s, l := heldWithWaiter(); s.grant(l, "c", 10, nil) },
		want: `dlock: fsm invariant broken: grant of lock "L" to "c" while "a" holds token 1`,
	},
	{
		name: "a grant to an owner still queued",
		give: func() { s, l := heldWithWaiter(); l.held = false; s.grant(l, "b", 10, nil) },
		want: `dlock: fsm invariant broken: holder also queued: lock "L" owner "b"`,
	},
	{
		name: "the holder queued behind itself",
		give: func() {
			s, l := heldWithWaiter()
			s.enqueue(l, &fsmpb.Acquire{Name: "L", Owner: "a", TtlNanos: 10, WaitNanos: 5})
		},
		want: `dlock: fsm invariant broken: holder also queued: lock "L" owner "a" token 1`,
	},
	{
		name: "a result remembered twice",
		give: func() {
			s := New(testLimits())
			s.remember("c", 1, &fsmpb.Result{}, waitRef{})
			s.remember("c", 1, &fsmpb.Result{}, waitRef{})
		},
		want: `dlock: fsm invariant broken: client "c" seq 1 remembered twice`,
	},
	{
		name: "pruning a held lock",
		give: func() { s, l := heldWithWaiter(); s.dropLock(l) },
		want: `dlock: fsm invariant broken: pruning lock "L" that is held (true) or has 1 waiters`,
	},
	{
		name: "New with invalid limits",
		give: func() { New(Limits{}) },
		want: "dlock: fsm.New: dlock: fsm limits: NameBytesMax: 0 below 1",
	},
}

func TestInvariantBreaksPanic(t *testing.T) {
	for _, tt := range invariantRows {
		t.Run(tt.name, func(t *testing.T) {
			check(t, "panic", panicText(tt.give), tt.want)
		})
	}
}

// "Limits (configurable, enforced, documented)"; STYLE: "Zero never means
// unlimited" and errors name the field, value and bound.
var validateRows = []struct {
	name string
	give func(*Limits)
	want string
}{
	{name: "the defaults", give: func(*Limits) {}, want: ""},
	{name: "zero is not unlimited", give: func(l *Limits) { l.LocksMax = 0 }, want: "dlock: fsm limits: LocksMax: 0 below 1"},
	{name: "negative", give: func(l *Limits) { l.KeysMax = -1 }, want: "dlock: fsm limits: KeysMax: -1 below 1"},
	{name: "a size above its ceiling", give: func(l *Limits) { l.ValueBytesMax = 1<<30 + 1 }, want: "dlock: fsm limits: ValueBytesMax: 1073741825 above 1073741824"},
	{name: "a queue above its ceiling", give: func(l *Limits) { l.WaitersPerLockMax = 1<<20 + 1 }, want: "dlock: fsm limits: WaitersPerLockMax: 1048577 above 1048576"},
	{name: "remembered results above the ceiling", give: func(l *Limits) { l.ResultsPerClientMax = 1<<16 + 1 }, want: "dlock: fsm limits: ResultsPerClientMax: 65537 above 65536"},
	{name: "clients", give: func(l *Limits) { l.ClientsMax = 0 }, want: "dlock: fsm limits: ClientsMax: 0 below 1"},
	{name: "owner", give: func(l *Limits) { l.OwnerBytesMax = 0 }, want: "dlock: fsm limits: OwnerBytesMax: 0 below 1"},
}

func TestLimitsValidate(t *testing.T) {
	for _, tt := range validateRows {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLimits()
			tt.give(&l)
			check(t, "error", errText(l.Validate()), tt.want)
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDefaultLimits(t *testing.T) {
	check(t, "defaults", DefaultLimits(), Limits{
		NameBytesMax: 1024, OwnerBytesMax: 1024, ValueBytesMax: 1 << 20, WaitersPerLockMax: 1024,
		LocksMax: 1_000_000, KeysMax: 1_000_000, ClientsMax: 100_000, ResultsPerClientMax: 256,
	})
}

func TestCloneResultCopiesEveryField(t *testing.T) {
	// Set every field of Result, so a field added to fsm.proto but not to
	// cloneResult fails here.
	r := &fsmpb.Result{}
	m := r.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.IsList() && f.Kind() == protoreflect.Uint64Kind {
			l := m.NewField(f).List()
			l.Append(protoreflect.ValueOfUint64(7))
			m.Set(f, protoreflect.ValueOfList(l))
			continue
		}
		var v protoreflect.Value
		switch f.Kind() {
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(true)
		case protoreflect.EnumKind:
			v = protoreflect.ValueOfEnum(1)
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString("x")
		case protoreflect.Uint32Kind:
			v = protoreflect.ValueOfUint32(7)
		case protoreflect.Uint64Kind:
			v = protoreflect.ValueOfUint64(7)
		case protoreflect.Int64Kind:
			v = protoreflect.ValueOfInt64(7)
		default:
			t.Fatalf("field %s has kind %s: teach this test and cloneResult", f.Name(), f.Kind())
		}
		m.Set(f, v)
	}
	if c := cloneResult(r); !proto.Equal(c, r) {
		t.Errorf("cloneResult:\n got  %v\n want %v", c, r)
	}
}

// rawEntry encodes an Entry with one Acquire by hand, so that it can carry
// bytes proto.Marshal would refuse (invalid UTF-8).
func rawEntry(now int64, name string) []byte {
	var acq []byte
	acq = protowire.AppendTag(acq, 1, protowire.BytesType)
	acq = protowire.AppendString(acq, name)
	acq = protowire.AppendTag(acq, 2, protowire.BytesType)
	acq = protowire.AppendString(acq, "a")
	acq = protowire.AppendTag(acq, 3, protowire.VarintType)
	acq = protowire.AppendVarint(acq, 10)
	var cmd []byte
	cmd = protowire.AppendTag(cmd, 10, protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, acq)
	var e []byte
	e = protowire.AppendTag(e, 1, protowire.VarintType)
	e = protowire.AppendVarint(e, uint64(now))
	e = protowire.AppendTag(e, 3, protowire.BytesType)
	return protowire.AppendBytes(e, cmd)
}

// "An entry that cannot be decoded or is invalid gets the same error result
// on every replica and changes nothing; it never panics (fuzzed)."
var applyBytesRows = []struct {
	name string
	give []byte
	want string
	same bool
}{
	{name: "garbage", give: []byte{0xff, 0xff, 0xff}, want: "INVALID", same: true},
	{name: "a truncated entry", give: rawEntry(200, "M")[:7], want: "INVALID", same: true},
	{name: "a name that is not UTF-8 does not decode", give: rawEntry(200, "M\xff"), want: "INVALID", same: true},
	{name: "no bytes is an empty entry", give: nil, want: "", same: true},
	{name: "a valid entry applies", give: rawEntry(200, "M"), want: "OK token=2 nonce=1 ttl=10"},
}

func TestApplyBytes(t *testing.T) {
	for _, tt := range applyBytesRows {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0))})
			before := snap(t, s)
			out := s.ApplyBytes(tt.give)
			check(t, "results", fmtResults(out.Results), tt.want)
			check(t, "unchanged", string(snap(t, s)) == string(before), tt.same)
		})
	}
}

func TestApplyNilEntry(t *testing.T) {
	s, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0))})
	before := snap(t, s)
	out := s.Apply(nil)
	check(t, "results", len(out.Results)+len(out.Events), 0)
	check(t, "unchanged", string(snap(t, s)), string(before))
}

func TestRefusalsSayWhy(t *testing.T) {
	// Every refusal carries a human message; OK results need none.
	for _, tt := range validationRows {
		_, out, _ := play(t, testLimits(), tt.give)
		for _, r := range out.Results {
			if strings.TrimSpace(r.Message) == "" {
				t.Errorf("%s: %s result without a message", tt.name, r.Code)
			}
		}
	}
}
