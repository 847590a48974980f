package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Access control vocabulary.

func hashOf(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func bootstrap(who, token string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclBootstrap{AclBootstrap: &fsmpb.AclBootstrap{Principal: who, TokenHash: hashOf(token)}}}
}

func addPrincipal(name string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclAddPrincipal{AclAddPrincipal: &fsmpb.AclPrincipal{Name: name}}}
}

func removePrincipal(name string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclRemovePrincipal{AclRemovePrincipal: &fsmpb.AclPrincipal{Name: name}}}
}

func addToken(who, token string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclAddToken{AclAddToken: &fsmpb.AclToken{Principal: who, TokenHash: hashOf(token)}}}
}

func removeToken(id string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclRemoveToken{AclRemoveToken: &fsmpb.AclToken{TokenId: id}}}
}

func grant(who string, p fsmpb.Permission, prefix string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclGrant{AclGrant: &fsmpb.AclRule{Principal: who, Permission: p, Prefix: prefix}}}
}

func revoke(who string, p fsmpb.Permission, prefix string) *fsmpb.Command {
	return &fsmpb.Command{Op: &fsmpb.Command_AclRevoke{AclRevoke: &fsmpb.AclRule{Principal: who, Permission: p, Prefix: prefix}}}
}

// by makes c act for principal who.
func by(who string, c *fsmpb.Command) *fsmpb.Command {
	c.Principal = who
	return c
}

func tokenIDOf(token string) string {
	return TokenID(sha256.Sum256([]byte(token)))
}

// aclState is a State with root (admin, token "t-root"), and "app" with
// read on "L", lock on "L" and write on "k" (token "t-app").
func aclState(t *testing.T) *State {
	t.Helper()
	s, out, _ := play(t, testLimits(), []step{at(100,
		bootstrap("root", "t-root"),
		by("root", addPrincipal("app")),
		by("root", addToken("app", "t-app")),
		by("root", grant("app", fsmpb.Permission_READ, "L")),
		by("root", grant("app", fsmpb.Permission_LOCK, "L")),
		by("root", grant("app", fsmpb.Permission_WRITE, "k")),
	)})
	check(t, "setup", fmtResults(out.Results), "OK; OK; OK; OK; OK; OK")
	return s
}

func TestACLBootstrapOnce(t *testing.T) {
	s := aclState(t)
	out := s.Apply(at(200, bootstrap("evil", "t-evil")).entry())
	check(t, "second bootstrap", out.Results[0].Code, fsmpb.Code_EXISTS)
	_, ok := s.TokenPrincipal(sha256.Sum256([]byte("t-evil")))
	check(t, "second bootstrap's token known", ok, false)
	who, ok := s.TokenPrincipal(sha256.Sum256([]byte("t-root")))
	check(t, "root token", who+"/"+boolText(ok), "root/true")
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// DESIGN of access control: a command acting for a principal applies only
// if a rule permits it; DENIED changes nothing, not even the idempotency
// table.
func TestACLCommandsAreChecked(t *testing.T) {
	rows := []struct {
		name string
		give *fsmpb.Command
		want fsmpb.Code
	}{
		{"lock under the prefix", by("app", acq("L1", "a", 10, 0)), fsmpb.Code_OK},
		{"lock outside the prefix", by("app", acq("M", "a", 10, 0)), fsmpb.Code_DENIED},
		{"release outside the prefix", by("app", rel("M", "a", 0)), fsmpb.Code_DENIED},
		{"put under the prefix", by("app", put("k1", "v")), fsmpb.Code_OK},
		{"put outside the prefix", by("app", put("j", "v")), fsmpb.Code_DENIED},
		{"delete outside the prefix", by("app", del("j")), fsmpb.Code_DENIED},
		{"read does not grant write", by("app", put("L", "v")), fsmpb.Code_DENIED},
		{"admin command without admin", by("app", addPrincipal("x")), fsmpb.Code_DENIED},
		{"unknown principal", by("ghost", acq("L", "a", 10, 0)), fsmpb.Code_DENIED},
		{"admin may lock anything", by("root", acq("M", "a", 10, 0)), fsmpb.Code_OK},
		{"admin may put anything", by("root", put("j", "v")), fsmpb.Code_OK},
		{"no principal: not checked", acq("M2", "a", 10, 0), fsmpb.Code_OK},
		{"denied before it is judged malformed", by("app", acq("M", "", 0, 0)), fsmpb.Code_DENIED},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			s := aclState(t)
			before := snap(t, s)
			out := s.Apply(at(100, as("c", 1, tt.give)).entry())
			check(t, "code", out.Results[0].Code, tt.want)
			if tt.want == fsmpb.Code_DENIED {
				check(t, "a denied command changed nothing", bytes.Equal(snap(t, s), before), true)
			}
		})
	}
}

// A retry of a write applied before a revocation gets its first answer
// back: it was permitted when it applied. A new write is denied.
func TestACLRetryAfterRevoke(t *testing.T) {
	s := aclState(t)
	first := s.Apply(at(100, as("c", 1, by("app", put("k1", "v")))).entry()).Results[0]
	s.Apply(at(100, by("root", revoke("app", fsmpb.Permission_WRITE, "k"))).entry())
	before := snap(t, s)
	retry := s.Apply(at(100, as("c", 1, by("app", put("k1", "v")))).entry()).Results[0]
	check(t, "retry", fmtResult(retry), fmtResult(first)+" replayed=true")
	fresh := s.Apply(at(100, as("c", 2, by("app", put("k2", "v")))).entry()).Results[0]
	check(t, "new write", fresh.Code, fsmpb.Code_DENIED)
	check(t, "nothing changed", bytes.Equal(snap(t, s), before), true)
}

// A retried acquire whose principal has since lost the lock permission gets
// its remembered answer, and, like any retry of an acquire, takes over its
// request's claim: the call the client now listens to is the one whose
// withdrawal counts, and the call it replaced can no longer end the wait or
// the hold granted from it.
func TestACLRetryAfterRevokeAdoptsTheClaim(t *testing.T) {
	apply := func(s *State, c *fsmpb.Command) *fsmpb.Result { return s.Apply(at(200, c).entry()).Results[0] }
	setup := func() *State {
		s := aclState(t)
		apply(s, by("app", acqBy("L", "holder", hour, 0, 100)))
		apply(s, by("app", as("c", 1, try(1, acqBy("L", "o", hour, minute, 1)))))
		return s
	}
	// Still queued: the retry's withdrawal takes the owner out of the queue.
	s := setup()
	apply(s, by("root", revoke("app", fsmpb.Permission_LOCK, "L")))
	retry := apply(s, by("app", as("c", 1, try(2, acqBy("L", "o", hour, 0, 2)))))
	check(t, "retry while queued", fmtResult(retry), "QUEUED ttl=3600000000000 pos=1 replayed=true")
	check(t, "the retry's withdrawal", apply(s, withdrawBy("L", "o", 2)).Code, fsmpb.Code_OK)
	check(t, "queued after the retry's withdrawal", s.Queued("L", "o"), false)
	// Granted from the wait: the replaced call's withdrawal leaves the hold.
	s = setup()
	apply(s, by("app", rel("L", "holder", 0)))
	apply(s, by("root", revoke("app", fsmpb.Permission_LOCK, "L")))
	apply(s, by("app", as("c", 1, try(2, acqBy("L", "o", hour, minute, 2)))))
	check(t, "the replaced call's withdrawal", apply(s, withdrawBy("L", "o", 1)).Code, fsmpb.Code_IGNORED)
	v, _ := s.Lock("L")
	check(t, "holder after the replaced call's withdrawal", v.Owner, "o")
}

func TestACLAllowed(t *testing.T) {
	s := aclState(t)
	rows := []struct {
		who    string
		perm   fsmpb.Permission
		name   string
		prefix bool
		want   bool
	}{
		{"app", fsmpb.Permission_READ, "L", false, true},
		{"app", fsmpb.Permission_READ, "Lx", false, true},
		{"app", fsmpb.Permission_READ, "M", false, false},
		{"app", fsmpb.Permission_READ, "L", true, true},
		{"app", fsmpb.Permission_READ, "", true, false}, // listing everything needs a rule on ""
		{"app", fsmpb.Permission_WRITE, "L", false, false},
		{"root", fsmpb.Permission_WRITE, "anything", false, true},
		{"root", fsmpb.Permission_ADMIN, "", false, true},
		{"app", fsmpb.Permission_ADMIN, "", false, false},
		{"ghost", fsmpb.Permission_READ, "L", false, false},
	}
	for _, tt := range rows {
		got := s.Allowed(tt.who, tt.perm, tt.name)
		if tt.prefix {
			got = s.AllowedPrefix(tt.who, tt.perm, tt.name)
		}
		check(t, tt.who+" "+tt.perm.String()+" "+tt.name, got, tt.want)
	}
}

func TestACLManagement(t *testing.T) {
	s := aclState(t)
	steps := []struct {
		give *fsmpb.Command
		want fsmpb.Code
	}{
		{by("root", addPrincipal("app")), fsmpb.Code_EXISTS},
		{by("root", addToken("app", "t-app")), fsmpb.Code_EXISTS},
		{by("root", addToken("nobody", "t-x")), fsmpb.Code_NOT_FOUND},
		{by("root", grant("app", fsmpb.Permission_READ, "L")), fsmpb.Code_OK}, // again: no change
		{by("root", grant("app", fsmpb.Permission_ADMIN, "L")), fsmpb.Code_INVALID},
		{by("root", grant("app", fsmpb.Permission(9), "L")), fsmpb.Code_INVALID},
		{by("root", revoke("app", fsmpb.Permission_WRITE, "zz")), fsmpb.Code_NOT_FOUND},
		{by("root", revoke("root", fsmpb.Permission_ADMIN, "")), fsmpb.Code_LAST_ADMIN},
		{by("root", removePrincipal("root")), fsmpb.Code_LAST_ADMIN},
		{by("root", removeToken(tokenIDOf("t-app"))), fsmpb.Code_OK},
		{by("root", removeToken(tokenIDOf("t-app"))), fsmpb.Code_NOT_FOUND},
		{by("root", revoke("app", fsmpb.Permission_LOCK, "L")), fsmpb.Code_OK},
		{by("app", acq("L", "a", 10, 0)), fsmpb.Code_DENIED},
		{by("root", grant("app", fsmpb.Permission_ADMIN, "")), fsmpb.Code_OK},
		{by("app", removePrincipal("root")), fsmpb.Code_OK},
		{by("root", acq("L", "a", 10, 0)), fsmpb.Code_DENIED},
	}
	for i, st := range steps {
		out := s.Apply(at(100, st.give).entry())
		if err := s.verify(); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		if got := out.Results[0].Code; got != st.want {
			t.Fatalf("step %d (%s): got %s (%s), want %s", i+1, fmtCommand(st.give), got, out.Results[0].Message, st.want)
		}
	}
	_, ok := s.TokenPrincipal(sha256.Sum256([]byte("t-root")))
	check(t, "a removed principal's token", ok, false)
	v, _ := s.Principal("app")
	check(t, "app's rules", len(v.Rules), 3)
}

// Snapshots: a State without principals writes version 1, exactly as
// before access control existed; one with principals writes version 2 and
// restores to the same bytes; an older (version 1) snapshot restores.
func TestACLSnapshot(t *testing.T) {
	plain, _, _ := play(t, testLimits(), []step{at(100, acq("L", "a", 10, 0), put("k", "v"))})
	rec := firstRecord(t, snap(t, plain))
	check(t, "version without principals", rec.GetHeader().GetVersion(), uint32(1))
	restored, err := Restore(bytes.NewReader(snap(t, plain)), testLimits())
	if err != nil {
		t.Fatalf("restore a version 1 snapshot: %v", err)
	}
	check(t, "version 1 round trip", bytes.Equal(snap(t, restored), snap(t, plain)), true)

	s := aclState(t)
	data := snap(t, s)
	check(t, "version with principals", firstRecord(t, data).GetHeader().GetVersion(), uint32(2))
	again, err := Restore(bytes.NewReader(data), testLimits())
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	check(t, "round trip", bytes.Equal(snap(t, again), data), true)
	who, ok := again.TokenPrincipal(sha256.Sum256([]byte("t-app")))
	check(t, "token after restore", who+"/"+boolText(ok), "app/true")
	check(t, "rule after restore", again.Allowed("app", fsmpb.Permission_LOCK, "L9"), true)
	check(t, "clone keeps access control", bytes.Equal(snap(t, s.Clone()), data), true)
}

func firstRecord(t *testing.T, data []byte) *fsmpb.SnapshotRecord {
	t.Helper()
	var recs []*fsmpb.SnapshotRecord
	s, err := Restore(bytes.NewReader(data), testLimits())
	if err != nil {
		t.Fatal(err)
	}
	_ = s.records(func(r *fsmpb.SnapshotRecord) error {
		recs = append(recs, proto.Clone(r).(*fsmpb.SnapshotRecord))
		return nil
	})
	return recs[0]
}

func TestACLRestoreRejectsCorruptPrincipals(t *testing.T) {
	rows := []struct {
		name string
		edit func(recs []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord
		want string
	}{
		{"a principal in a version 1 snapshot", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			r[0].GetHeader().Version = 1
			return r
		}, "principal record in a version 1 snapshot"},
		{"a count that disagrees", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			r[0].GetHeader().Principals = 5
			return r
		}, "2 principal records, header says 5"},
		{"a token of two principals", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			last := r[len(r)-1].GetPrincipal()
			last.TokenHashes = append(last.TokenHashes, hashOf("t-app"))
			return r
		}, "also belongs to"},
		{"an admin rule with a prefix", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			r[len(r)-1].GetPrincipal().Rules[0].Prefix = "x"
			return r
		}, "admin with prefix"},
		{"a short token hash", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			r[len(r)-1].GetPrincipal().TokenHashes[0] = []byte{1}
			return r
		}, "token hash is 1 bytes"},
		{"principals out of order", func(r []*fsmpb.SnapshotRecord) []*fsmpb.SnapshotRecord {
			n := len(r)
			r[n-1], r[n-2] = r[n-2], r[n-1]
			return r
		}, "does not sort after"},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			var recs []*fsmpb.SnapshotRecord
			_ = aclState(t).records(func(r *fsmpb.SnapshotRecord) error {
				recs = append(recs, proto.Clone(r).(*fsmpb.SnapshotRecord))
				return nil
			})
			_, err := Restore(bytes.NewReader(encode(t, tt.edit(recs))), testLimits())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("got %v, want an ErrCorruptSnapshot naming %q", err, tt.want)
			}
		})
	}
}

// aclFuzzSeed is a version 2 snapshot, for FuzzRestore.
func aclFuzzSeed(t testing.TB) []byte {
	s := New(testLimits())
	s.Apply(at(100, bootstrap("root", "t-root"), by("root", addPrincipal("app")),
		by("root", grant("app", fsmpb.Permission_LOCK, "L")), by("root", addToken("app", "t-app")),
		acq("L", "a", 10, 0)).entry())
	return snap(t, s)
}
