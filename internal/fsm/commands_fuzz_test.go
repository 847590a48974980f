package fsm

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// FuzzCommands: "An entry that cannot be decoded or is invalid gets the same
// error result on every replica and changes nothing; it never panics
// (fuzzed)." FuzzApplyBytes feeds raw bytes, which seldom decode into
// commands that reach deep states; here every fuzz byte steers a structured
// command instead: names, owners and client ids from small alphabets so they
// collide, now and then empty, at or over the limit or not UTF-8; TTLs and
// waits of 0, negative, huge; tokens current, stale or random; time standing
// still, stepping, jumping hours or to the end of time. After each command:
//   - every invariant holds (verify);
//   - a Clone taken before it still holds the state before it: Clone shares
//     nothing Apply modifies (the node writes Raft snapshots from a Clone,
//     outside its lock, while Apply goes on);
//   - a malformed command gets INVALID, one only over a size limit gets
//     LIMIT, a well-formed one never gets INVALID;
//   - an INVALID, LIMIT or STALE_REQUEST changes nothing and emits nothing,
//     except that a deduplicated command's answer is remembered for its seq;
//   - a second replica, fed each step as one batched entry and now and then
//     rebuilt by Restore or Clone, returns the same results and events and
//     writes the same snapshot.
//
// At the end, a snapshot restores to a State that writes the same snapshot.
func FuzzCommands(f *testing.F) {
	for _, seed := range commandSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &script{in: data, seqs: map[string]uint64{}}
		solo, batched := New(testLimits()), New(testLimits())
		for step := 0; step < scriptStepsMax && sc.more(); step++ {
			batched = sc.step(t, solo, batched)
		}
		again, err := Restore(bytes.NewReader(snap(t, solo)), testLimits())
		if err != nil {
			t.Fatalf("restore of the final snapshot: %v", err)
		}
		if !bytes.Equal(snap(t, again), snap(t, solo)) {
			t.Fatal("the final snapshot does not survive a restore unchanged")
		}
	})
}

// scriptStepsMax bounds one input's steps, so an input costs at most a few
// milliseconds.
const scriptStepsMax = 64

// script turns fuzz bytes into entries. Bytes past the end read as zero.
type script struct {
	in   []byte
	now  int64
	seqs map[string]uint64 // the highest seq each client id has sent
}

func (sc *script) more() bool { return len(sc.in) > 0 }

func (sc *script) next() byte {
	if len(sc.in) == 0 {
		return 0
	}
	b := sc.in[0]
	sc.in = sc.in[1:]
	return b
}

func pickOf[T any](b byte, options ...T) T { return options[int(b)%len(options)] }

// Alphabets for testLimits (8-byte names, owners and client ids; 4-byte
// values): mostly a few colliding ids, sometimes empty, exactly at the limit,
// over it, not UTF-8, or multi-byte.
var (
	fuzzNames   = []string{"L", "M", "N", "L", "M", "N", "L", "M", "", "L2345678", "L23456789", "L\xff", "é", "N"}
	fuzzOwners  = []string{"a", "b", "c", "a", "b", "c", "a", "b", "", "a2345678", "a23456789", "\xff", "ü"}
	fuzzClients = []string{"c0", "c1", "c2", "c0", "c1", "", "c2345678", "c23456789", "c\xfe"}
	fuzzKeys    = []string{"k", "j", "i", "k", "j", "", "k2345678", "k23456789", "k\xff"}
	fuzzDurs    = []int64{0, 1, 3, 5, 10, 30, 60, sec, minute, hour, -1, -sec, math.MinInt64, math.MaxInt64, math.MaxInt64 - 1, 1 << 62}
)

// step plays one step: a tick to the step's time, then one to three
// commands, one entry each, on solo; the same commands as one entry on
// batched. It returns batched, which it may have rebuilt.
func (sc *script) step(t *testing.T, solo, batched *State) *State {
	t.Helper()
	stamp := sc.advance()
	wall := stamp + wallAt
	switch sc.next() % 16 {
	case 0:
		var err error
		if batched, err = Restore(bytes.NewReader(snap(t, batched)), testLimits()); err != nil {
			t.Fatalf("restore mid-script: %v", err)
		}
	case 1:
		batched = batched.Clone()
	}
	tick := solo.Apply(&fsmpb.Entry{NowNanos: stamp, WallUnixNanos: wall})
	mustVerify(t, solo, "a tick")
	cmds := make([]*fsmpb.Command, 1+sc.next()%3)
	var want Output
	want.Events = tick.Events
	for i := range cmds {
		cmds[i] = sc.command(solo)
		out := applyOne(t, solo, stamp, wall, cmds[i])
		want.Results = append(want.Results, out.Results...)
		want.Events = append(want.Events, out.Events...)
	}
	got := batched.Apply(&fsmpb.Entry{NowNanos: stamp, WallUnixNanos: wall, Commands: cmds})
	mustVerify(t, batched, "a batched entry")
	if d := sameOutput(got, want); d != "" {
		t.Fatalf("one entry of %d commands vs one entry each: %s", len(cmds), d)
	}
	if !bytes.Equal(stateBytes(t, batched, true), stateBytes(t, solo, true)) {
		t.Fatalf("one entry of %d commands vs one entry each: snapshots differ", len(cmds))
	}
	return batched
}

// advance moves the script's clock and returns the step's stamp.
func (sc *script) advance() int64 {
	switch sc.next() % 10 {
	case 0, 1: // time stands still
	case 2:
		return sc.now - 7 // a stamp from behind: cluster time must not follow it
	case 3:
		sc.now = satAdd(sc.now, minute*int64(1+sc.next()%20))
	case 4:
		sc.now = satAdd(sc.now, hour*int64(1+sc.next()%3))
	case 5:
		if sc.next()%8 == 0 {
			sc.now = max(sc.now, math.MaxInt64-hour) // the end of time: deadlines saturate
		}
	default:
		sc.now = satAdd(sc.now, int64(1+sc.next()%40))
	}
	return sc.now
}

// command builds one command; s supplies live tokens worth naming.
func (sc *script) command(s *State) *fsmpb.Command {
	name, owner := pickOf(sc.next(), fuzzNames...), pickOf(sc.next(), fuzzOwners...)
	ttl, wait := pickOf(sc.next(), fuzzDurs...), pickOf(sc.next(), fuzzDurs...)
	var c *fsmpb.Command
	switch sc.next() % 12 {
	case 0, 1, 2:
		c = acqBy(name, owner, ttl, wait, uint64(sc.next()%4))
	case 3:
		c = renew(name, owner, sc.token(s, name), ttl)
	case 4:
		c = rel(name, owner, sc.token(s, name))
	case 5:
		c = withdrawBy(name, owner, uint64(sc.next()%4))
	case 6:
		c = expire(name, sc.token(s, name))
	case 7:
		c = leaderStart()
	case 8:
		c = put(pickOf(sc.next(), fuzzKeys...), "vvvvv"[:sc.next()%6])
	case 9:
		c = del(pickOf(sc.next(), fuzzKeys...))
	case 10:
		c = sc.aclCommand()
	default:
		return sc.oddity()
	}
	// Now and then the command acts for a principal: access control checks
	// it against the rules first.
	c.Principal = pickOf(sc.next(), fuzzPrincipals...)
	return sc.header(c)
}

// Access control alphabets: principals that collide (an empty one is a
// command whose node checked nothing), token hashes of the right size and
// not, token ids of them and not.
var (
	fuzzPrincipals = []string{"", "", "", "", "", "p", "q", "r", "", "p2345678", "p23456789", "\xff"}
	fuzzHashes     = [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32), nil, {1, 2}, bytes.Repeat([]byte{4}, 33)}
	fuzzTokenIDs   = []string{"0101010101010101", "0202020202020202", "0909090909090909", "", "01"}
	fuzzPrefixes   = []string{"", "L", "k", "", "L2345678", "L23456789", "\xfe"}
)

// aclCommand builds one access control command.
func (sc *script) aclCommand() *fsmpb.Command {
	who := pickOf(sc.next(), fuzzPrincipals...)
	if who == "" && sc.next()%2 == 0 {
		who = "p"
	}
	rule := &fsmpb.AclRule{Principal: who, Permission: fsmpb.Permission(sc.next() % 6), Prefix: pickOf(sc.next(), fuzzPrefixes...)}
	switch sc.next() % 7 {
	case 0:
		return &fsmpb.Command{Op: &fsmpb.Command_AclBootstrap{AclBootstrap: &fsmpb.AclBootstrap{Principal: who, TokenHash: pickOf(sc.next(), fuzzHashes...)}}}
	case 1:
		return &fsmpb.Command{Op: &fsmpb.Command_AclAddPrincipal{AclAddPrincipal: &fsmpb.AclPrincipal{Name: who}}}
	case 2:
		return &fsmpb.Command{Op: &fsmpb.Command_AclRemovePrincipal{AclRemovePrincipal: &fsmpb.AclPrincipal{Name: who}}}
	case 3:
		return &fsmpb.Command{Op: &fsmpb.Command_AclAddToken{AclAddToken: &fsmpb.AclToken{Principal: who, TokenHash: pickOf(sc.next(), fuzzHashes...)}}}
	case 4:
		return &fsmpb.Command{Op: &fsmpb.Command_AclRemoveToken{AclRemoveToken: &fsmpb.AclToken{TokenId: pickOf(sc.next(), fuzzTokenIDs...)}}}
	case 5:
		return &fsmpb.Command{Op: &fsmpb.Command_AclGrant{AclGrant: rule}}
	}
	return &fsmpb.Command{Op: &fsmpb.Command_AclRevoke{AclRevoke: rule}}
}

// token picks a token for name: 0, the lock's current or last one, a
// neighbour, or one never issued.
func (sc *script) token(s *State, name string) uint64 {
	v, _ := s.Lock(name)
	switch sc.next() % 8 {
	case 0:
		return 0
	case 1:
		return s.Fence()
	case 2:
		return v.Token - 1
	case 3:
		return s.Fence() + 1
	case 4:
		return math.MaxUint64
	}
	return v.Token
}

// oddity returns a command with no operation or an operation with no body.
func (sc *script) oddity() *fsmpb.Command {
	ops := []*fsmpb.Command{
		nil,
		{},
		{Op: &fsmpb.Command_Acquire{}},
		{Op: &fsmpb.Command_Renew{}},
		{Op: &fsmpb.Command_Release{}},
		{Op: &fsmpb.Command_Withdraw{}},
		{Op: &fsmpb.Command_Expire{}},
		{Op: &fsmpb.Command_LeaderStart{}},
		{Op: &fsmpb.Command_Put{}},
		{Op: &fsmpb.Command_Delete{}},
		{Op: &fsmpb.Command_AclBootstrap{}},
		{Op: &fsmpb.Command_AclAddPrincipal{}},
		{Op: &fsmpb.Command_AclRemovePrincipal{}},
		{Op: &fsmpb.Command_AclAddToken{}},
		{Op: &fsmpb.Command_AclRemoveToken{}},
		{Op: &fsmpb.Command_AclGrant{}},
		{Op: &fsmpb.Command_AclRevoke{}},
	}
	c := pickOf(sc.next(), ops...)
	if c == nil {
		return nil
	}
	return sc.header(c)
}

// header tags two commands in three with a client: its next seq, seq 0, a
// retry, or an old seq; acknowledging nothing, everything below, beyond the
// seq, or one less than the last.
func (sc *script) header(c *fsmpb.Command) *fsmpb.Command {
	b := sc.next()
	if b%3 == 0 {
		return c
	}
	id := pickOf(sc.next(), fuzzClients...)
	last := sc.seqs[id]
	seq := pickOf(b/3, last+1, 0, max(last, 1), max(1, last-uint64(sc.next()%6)))
	sc.seqs[id] = max(last, seq)
	return acked(id, seq, pickOf(sc.next(), 0, seq, seq+5, max(last, 1)-1), c)
}

// applyOne applies c alone at stamp (the tick already brought s there) and
// checks what one command must do.
func applyOne(t *testing.T, s *State, stamp, wall int64, c *fsmpb.Command) Output {
	t.Helper()
	before, clone := stateBytes(t, s, true), s.Clone()
	out := s.Apply(&fsmpb.Entry{NowNanos: stamp, WallUnixNanos: wall, Commands: []*fsmpb.Command{c}})
	mustVerify(t, s, fmtCommand(c))
	if !bytes.Equal(stateBytes(t, clone, true), before) {
		t.Fatalf("%s changed a Clone taken before it: Clone must share nothing that Apply modifies", fmtCommand(c))
	}
	if len(out.Results) != 1 {
		t.Fatalf("%s: %d results, want 1", fmtCommand(c), len(out.Results))
	}
	r := out.Results[0]
	if r.Replayed {
		return out // a remembered answer, whatever this command's fields
	}
	if r.Code == fsmpb.Code_DENIED && c.GetPrincipal() == "" {
		t.Fatalf("%s: DENIED without a principal", fmtCommand(c))
	}
	if want := fieldVerdict(c, s.Limits()); r.Code != fsmpb.Code_STALE_REQUEST && r.Code != fsmpb.Code_DENIED && !fits(r.Code, want) {
		t.Fatalf("%s: got %s (%s), want %s by its fields", fmtCommand(c), r.Code, r.Message, want)
	}
	switch r.Code {
	case fsmpb.Code_INVALID, fsmpb.Code_LIMIT, fsmpb.Code_STALE_REQUEST, fsmpb.Code_DENIED:
	default:
		return out
	}
	if len(out.Events) != 0 {
		t.Fatalf("%s: refused %s, yet events %s", fmtCommand(c), r.Code, fmtEvents(out.Events))
	}
	if !bytes.Equal(stateBytes(t, s, false), stateBytes(t, clone, false)) {
		t.Fatalf("%s: refused %s (%s), yet locks, keys or time changed", fmtCommand(c), r.Code, r.Message)
	}
	switch {
	case !deduplicated(c, s.Limits()) || r.Code == fsmpb.Code_DENIED:
		if !bytes.Equal(stateBytes(t, s, true), before) {
			t.Fatalf("%s: refused %s (%s) without a client, yet the idempotency table changed", fmtCommand(c), r.Code, r.Message)
		}
	case r.Code != fsmpb.Code_STALE_REQUEST && !remembered(s, c, r):
		t.Fatalf("%s: refused %s (%s), but a retry would neither get this answer nor be refused as stale",
			fmtCommand(c), r.Code, r.Message)
	}
	return out
}

func mustVerify(t *testing.T, s *State, after string) {
	t.Helper()
	if err := s.verify(); err != nil {
		t.Fatalf("after %s: invariant broken: %v", after, err)
	}
}

// stateBytes encodes every snapshot record of s back to back, without the
// idempotency table (client records and their count) unless clients is set:
// what WriteSnapshot writes, cheaply enough to run around every command.
func stateBytes(t *testing.T, s *State, clients bool) []byte {
	t.Helper()
	var out []byte
	opts := proto.MarshalOptions{Deterministic: true}
	err := s.records(func(rec *fsmpb.SnapshotRecord) error {
		if h := rec.GetHeader(); h != nil && !clients {
			h.Clients = 0
		}
		if rec.GetClient() != nil && !clients {
			return nil
		}
		var err error
		out, err = opts.MarshalAppend(protowire.AppendVarint(out, uint64(opts.Size(rec))), rec)
		return err
	})
	if err != nil {
		t.Fatalf("encode state: %v", err)
	}
	return out
}

// hasHeader reports whether c asks to be deduplicated: it has an operation,
// a client id and a seq, and is not one of the leaders' own commands.
func hasHeader(c *fsmpb.Command) bool {
	if c == nil || c.Op == nil || c.ClientId == "" || c.Seq == 0 {
		return false
	}
	switch c.Op.(type) {
	case *fsmpb.Command_Expire, *fsmpb.Command_LeaderStart:
		return false
	}
	return true
}

// deduplicated reports whether c goes through the idempotency table: it
// asks to, and its client id is acceptable.
func deduplicated(c *fsmpb.Command, l Limits) bool {
	return hasHeader(c) && idVerdict(c.ClientId, l.OwnerBytesMax) == fsmpb.Code_OK
}

// remembered reports whether s now remembers r as the answer to c's seq, or,
// if that answer was evicted at once for room (the others all QUEUED), marks
// the seq as possibly applied: either way a retry is never applied again.
func remembered(s *State, c *fsmpb.Command, r *fsmpb.Result) bool {
	cl := s.clients[c.ClientId]
	got := cl.lookup(c.Seq)
	return got != nil && proto.Equal(got, r) || cl.forgot(c.Seq)
}

// fieldVerdict judges c by its fields alone, as DESIGN.md states the rules
// rather than as apply.go checks them: INVALID when malformed (no operation
// or body, an empty or non-UTF-8 id, TTL <= 0 on acquire, a negative wait or
// renewal TTL, attempt or token 0 where one is required), else LIMIT when
// over a size limit, else OK (fields acceptable; state may still refuse).
// A deduplicating client id is judged before the operation.
func fieldVerdict(c *fsmpb.Command, l Limits) fsmpb.Code {
	if c == nil || c.Op == nil {
		return fsmpb.Code_INVALID
	}
	if hasHeader(c) {
		if v := idVerdict(c.ClientId, l.OwnerBytesMax); v != fsmpb.Code_OK {
			return v
		}
	}
	var vs []fsmpb.Code
	malformedIf := func(bad bool) {
		if bad {
			vs = append(vs, fsmpb.Code_INVALID)
		}
	}
	switch op := c.Op.(type) {
	case *fsmpb.Command_Acquire:
		a := op.Acquire
		malformedIf(a == nil || a.TtlNanos <= 0 || a.WaitNanos < 0)
		vs = append(vs, idVerdict(a.GetName(), l.NameBytesMax), idVerdict(a.GetOwner(), l.OwnerBytesMax))
	case *fsmpb.Command_Renew:
		malformedIf(op.Renew.GetTtlNanos() < 0)
		vs = append(vs, idVerdict(op.Renew.GetName(), l.NameBytesMax), idVerdict(op.Renew.GetOwner(), l.OwnerBytesMax))
	case *fsmpb.Command_Release:
		vs = append(vs, idVerdict(op.Release.GetName(), l.NameBytesMax), idVerdict(op.Release.GetOwner(), l.OwnerBytesMax))
	case *fsmpb.Command_Withdraw:
		malformedIf(op.Withdraw.GetAttempt() == 0)
		vs = append(vs, idVerdict(op.Withdraw.GetName(), l.NameBytesMax), idVerdict(op.Withdraw.GetOwner(), l.OwnerBytesMax))
	case *fsmpb.Command_Expire:
		malformedIf(op.Expire.GetToken() == 0)
		vs = append(vs, idVerdict(op.Expire.GetName(), l.NameBytesMax))
	case *fsmpb.Command_Put:
		if len(op.Put.GetValue()) > l.ValueBytesMax {
			vs = append(vs, fsmpb.Code_LIMIT)
		}
		vs = append(vs, idVerdict(op.Put.GetKey(), l.NameBytesMax))
	case *fsmpb.Command_Delete:
		vs = append(vs, idVerdict(op.Delete.GetKey(), l.NameBytesMax))
	case *fsmpb.Command_AclBootstrap:
		malformedIf(len(op.AclBootstrap.GetTokenHash()) != TokenHashBytes)
		vs = append(vs, idVerdict(op.AclBootstrap.GetPrincipal(), l.OwnerBytesMax))
	case *fsmpb.Command_AclAddPrincipal:
		vs = append(vs, idVerdict(op.AclAddPrincipal.GetName(), l.OwnerBytesMax))
	case *fsmpb.Command_AclRemovePrincipal:
		vs = append(vs, idVerdict(op.AclRemovePrincipal.GetName(), l.OwnerBytesMax))
	case *fsmpb.Command_AclAddToken:
		malformedIf(len(op.AclAddToken.GetTokenHash()) != TokenHashBytes)
		vs = append(vs, idVerdict(op.AclAddToken.GetPrincipal(), l.OwnerBytesMax))
	case *fsmpb.Command_AclRemoveToken:
		malformedIf(len(op.AclRemoveToken.GetTokenId()) != 16)
	case *fsmpb.Command_AclGrant:
		vs = append(vs, ruleVerdict(op.AclGrant, l)...)
	case *fsmpb.Command_AclRevoke:
		vs = append(vs, ruleVerdict(op.AclRevoke, l)...)
	}
	switch {
	case slices.Contains(vs, fsmpb.Code_INVALID):
		return fsmpb.Code_INVALID
	case slices.Contains(vs, fsmpb.Code_LIMIT):
		return fsmpb.Code_LIMIT
	}
	return fsmpb.Code_OK
}

// ruleVerdict judges a grant or revoke: a permission of read, lock, write
// or admin, admin only without a prefix, a prefix that is empty or a valid
// name, and a principal.
func ruleVerdict(r *fsmpb.AclRule, l Limits) []fsmpb.Code {
	vs := []fsmpb.Code{idVerdict(r.GetPrincipal(), l.OwnerBytesMax)}
	p := r.GetPermission()
	if p < fsmpb.Permission_READ || p > fsmpb.Permission_ADMIN || (p == fsmpb.Permission_ADMIN && r.GetPrefix() != "") {
		vs = append(vs, fsmpb.Code_INVALID)
	}
	if r.GetPrefix() != "" {
		vs = append(vs, idVerdict(r.GetPrefix(), l.NameBytesMax))
	}
	return vs
}

// fits reports whether a fresh (not replayed) result agrees with the fields'
// verdict: INVALID exactly when malformed, LIMIT whenever over a size limit.
func fits(got, verdict fsmpb.Code) bool {
	switch verdict {
	case fsmpb.Code_INVALID, fsmpb.Code_LIMIT:
		return got == verdict
	}
	return got != fsmpb.Code_INVALID
}

func idVerdict(v string, max int) fsmpb.Code {
	switch {
	case v == "" || !utf8.ValidString(v):
		return fsmpb.Code_INVALID
	case len(v) > max:
		return fsmpb.Code_LIMIT
	}
	return fsmpb.Code_OK
}

// fmtCommand renders a command for failure messages.
func fmtCommand(c *fsmpb.Command) string {
	if c == nil {
		return "a nil command"
	}
	return "command {" + c.String() + "}"
}

// commandSeeds are scripts that reach each kind of step, plus random ones.
func commandSeeds() [][]byte {
	seeds := [][]byte{
		{},
		// acquire L by a, queue b, release by a: the hand-on.
		{6, 2, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 1, 4, 4, 0, 0, 0, 0, 2, 0, 0, 0, 4, 4},
		// time jumps an hour, then to the end of time.
		{4, 2, 2, 0, 0, 0, 4, 5, 0, 1, 5, 0, 0, 0, 0, 0, 0, 1, 0},
		// malformed and oversize fields, each with a client header.
		{7, 0, 2, 8, 9, 10, 12, 0, 1, 1, 0, 7, 0, 0, 10, 11, 0, 0, 0, 1, 2, 3},
	}
	r := rand.New(rand.NewPCG(7, 11))
	for range 12 {
		b := make([]byte, 64+r.IntN(512))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		seeds = append(seeds, b)
	}
	return seeds
}
