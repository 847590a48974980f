package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// Access control against a real cluster: three in-process nodes on
// loopback sockets with auth.enabled, clients with bearer tokens over
// plaintext (auth.allow_insecure_tokens).

func withAuth(cfg *config.Config) {
	cfg.Auth = config.AuthConfig{Enabled: true, AllowInsecureTokens: true}
}

// aclClient is a client of eps that sends token ("" sends none).
func aclClient(t *testing.T, eps []string, token string) *client.Client {
	t.Helper()
	opts := []client.Option{client.WithCallTimeout(5 * time.Second)}
	if token != "" {
		opts = append(opts, client.WithToken(token), client.AllowInsecureToken())
	}
	c, err := client.New(eps, opts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Outcomes of a call.
const (
	allowed = "allowed"
	denied  = "denied"
	unauth  = "unauthenticated"
)

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return allowed
	case errors.Is(err, client.ErrPermissionDenied):
		return denied
	case errors.Is(err, client.ErrUnauthenticated):
		return unauth
	}
	return "error: " + err.Error()
}

// aclWorld is a bootstrapped cluster with one principal per kind of rule.
type aclWorld struct {
	cluster *testcluster.InProcess
	root    *client.Client
	tokens  map[string]string // principal to token secret
}

// newACLWorld bootstraps root and adds reader (read on app/), locker (lock
// on app/), writer (write on app/) and nobody (no rules), each with a token.
// Root holds app/held and other/held, and put app/k and other/k.
func newACLWorld(t *testing.T) *aclWorld {
	t.Helper()
	c := testcluster.StartInProcessWith(t, 3, withAuth)
	ctx := ctxFor(t)
	anon := aclClient(t, c.Endpoints(), "")
	rootTok, err := anon.Bootstrap(ctx, "root")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	w := &aclWorld{cluster: c, root: aclClient(t, c.Endpoints(), rootTok.Secret), tokens: map[string]string{"root": rootTok.Secret}}
	rules := map[string]string{"reader": client.PermRead, "locker": client.PermLock, "writer": client.PermWrite, "nobody": ""}
	for _, who := range []string{"reader", "locker", "writer", "nobody"} {
		if err := w.root.AddPrincipal(ctx, who); err != nil {
			t.Fatalf("add %s: %v", who, err)
		}
		if p := rules[who]; p != "" {
			if err := w.root.Grant(ctx, who, client.Rule{Permission: p, Prefix: "app/"}); err != nil {
				t.Fatalf("grant %s: %v", who, err)
			}
		}
		tok, err := w.root.CreateToken(ctx, who)
		if err != nil {
			t.Fatalf("token for %s: %v", who, err)
		}
		w.tokens[who] = tok.Secret
	}
	for _, name := range []string{"app/held", "other/held"} {
		if _, err := w.root.TryAcquire(ctx, name, client.WithOwner("root-owner"), client.WithTTL(time.Hour), client.WithoutAutoRenew()); err != nil {
			t.Fatalf("acquire %s: %v", name, err)
		}
	}
	for _, k := range []string{"app/k", "other/k"} {
		if _, err := w.root.Put(ctx, k, []byte("v0")); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	return w
}

// fingerprint is everything a client request could change, read by root:
// every lock's holder and token, every key and value, every principal.
func (w *aclWorld) fingerprint(t *testing.T) string {
	t.Helper()
	ctx := ctxFor(t)
	var b strings.Builder
	locks, err := w.root.Locks(ctx, "")
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	for _, l := range locks {
		fmt.Fprintf(&b, "lock %s %s %d %d\n", l.Name, l.Owner, l.Token, l.Nonce)
	}
	keys, err := w.root.Keys(ctx, "")
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	for _, k := range keys {
		v, err := w.root.Get(ctx, k)
		if err != nil {
			t.Fatalf("fingerprint: %v", err)
		}
		fmt.Fprintf(&b, "key %s %q\n", k, v)
	}
	ps, err := w.root.Principals(ctx)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	fmt.Fprintf(&b, "principals %+v\n", ps)
	return b.String()
}

// An operation a principal tries; who names the caller, so that allowed
// writes touch names of their own.
type operation struct {
	name string
	do   func(ctx context.Context, c *client.Client, who string) error
}

func lockAndRelease(name string) func(context.Context, *client.Client, string) error {
	return func(ctx context.Context, c *client.Client, who string) error {
		l, err := c.TryAcquire(ctx, name+who, client.WithTTL(time.Minute), client.WithoutAutoRenew())
		if err != nil {
			return err
		}
		return l.Release(ctx)
	}
}

func putAndDelete(key string) func(context.Context, *client.Client, string) error {
	return func(ctx context.Context, c *client.Client, who string) error {
		if _, err := c.Put(ctx, key+who, []byte("v")); err != nil {
			return err
		}
		return c.Delete(ctx, key+who)
	}
}

var operations = []operation{
	{"query app/", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.Query(ctx, "app/held")
		return err
	}},
	{"query other/", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.Query(ctx, "other/held")
		return err
	}},
	{"list locks app/", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.Locks(ctx, "app/")
		return err
	}},
	{"list all locks", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.Locks(ctx, ""); return err }},
	{"get app/", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.Get(ctx, "app/k"); return err }},
	{"get other/", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.Get(ctx, "other/k")
		return err
	}},
	{"list keys app/", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.Keys(ctx, "app/"); return err }},
	{"lock app/", lockAndRelease("app/t-")},
	{"lock other/", lockAndRelease("other/t-")},
	{"release root's other/ hold", func(ctx context.Context, c *client.Client, _ string) error {
		return c.ReleaseOwned(ctx, "other/held", "someone-else", 0)
	}},
	{"put app/", putAndDelete("app/w-")},
	{"put other/", putAndDelete("other/w-")},
	{"delete other/k", func(ctx context.Context, c *client.Client, _ string) error { return c.Delete(ctx, "other/k-missing") }},
	{"status", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.Status(ctx); return err }},
	{"whoami", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.WhoAmI(ctx); return err }},
	{"add principal", func(ctx context.Context, c *client.Client, who string) error {
		if err := c.AddPrincipal(ctx, "tmp-"+who); err != nil {
			return err
		}
		return c.RemovePrincipal(ctx, "tmp-"+who)
	}},
	{"grant", func(ctx context.Context, c *client.Client, _ string) error {
		// A rule reader has: granted again, it changes nothing.
		return c.Grant(ctx, "reader", client.Rule{Permission: client.PermRead, Prefix: "app/"})
	}},
	{"list principals", func(ctx context.Context, c *client.Client, _ string) error { _, err := c.Principals(ctx); return err }},
	{"snapshot save", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.SaveSnapshot(ctx, io.Discard)
		return err
	}},
	{"remove member 9", func(ctx context.Context, c *client.Client, _ string) error {
		_, err := c.RemoveMember(ctx, 9)
		return err
	}},
}

// want lists, per principal, the operations it is allowed; the others are
// denied. Callers without valid credentials are unauthenticated on all.
var want = map[string][]string{
	"root":   {"*"},
	"reader": {"query app/", "list locks app/", "get app/", "list keys app/", "status", "whoami"},
	"locker": {"lock app/", "status", "whoami"},
	"writer": {"put app/", "status", "whoami"},
	"nobody": {"status", "whoami"},
}

// TestAccessMatrix: each principal tries each operation; the outcome is
// allowed exactly where a rule permits it, PermissionDenied elsewhere, and
// Unauthenticated without valid credentials (status is open to all); a
// refused call changes
// nothing. Root's rows differ only where the operation itself fails (a
// missing key, an unknown member, a hold of another owner).
func TestAccessMatrix(t *testing.T) {
	w := newACLWorld(t)
	eps := w.cluster.Endpoints()
	callers := []struct{ who, token string }{
		{"root", w.tokens["root"]}, {"reader", w.tokens["reader"]}, {"locker", w.tokens["locker"]},
		{"writer", w.tokens["writer"]}, {"nobody", w.tokens["nobody"]},
		{"anonymous", ""}, {"forged", client.NewTokenSecret()},
	}
	rootFails := map[string]error{
		"release root's other/ hold": client.ErrHeldByOther, "delete other/k": client.ErrNotFound, "remove member 9": client.ErrInvalid,
	}
	for _, caller := range callers {
		c := aclClient(t, eps, caller.token)
		for _, op := range operations {
			t.Run(caller.who+"/"+op.name, func(t *testing.T) {
				wantOutcome := unauth
				if op.name == "status" {
					wantOutcome = allowed // open: probes and health checks use it
				} else if allowedOps, known := want[caller.who]; known {
					wantOutcome = denied
					if slices.Contains(allowedOps, op.name) || slices.Contains(allowedOps, "*") {
						wantOutcome = allowed
					}
				}
				before := w.fingerprint(t)
				err := op.do(ctxFor(t), c, caller.who)
				got := outcomeOf(err)
				if caller.who == "root" && rootFails[op.name] != nil {
					if !errors.Is(err, rootFails[op.name]) {
						t.Fatalf("got %v, want %v (permitted, then refused by the operation itself)", err, rootFails[op.name])
					}
					return
				}
				if got != wantOutcome {
					t.Fatalf("got %s, want %s", got, wantOutcome)
				}
				if got != allowed {
					if after := w.fingerprint(t); after != before {
						t.Fatalf("a refused call changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				}
			})
		}
	}
}

// TestAccessRevocationIsImmediate: once a revoke is acknowledged, the
// principal's next write and read are refused on every node.
func TestAccessRevocationIsImmediate(t *testing.T) {
	w := newACLWorld(t)
	ctx := ctxFor(t)
	for i, ep := range w.cluster.Endpoints() {
		writer := aclClient(t, []string{ep}, w.tokens["writer"])
		key := fmt.Sprintf("app/r%d", i)
		if _, err := writer.Put(ctx, key, []byte("v")); err != nil {
			t.Fatalf("node %d: put before the revoke: %v", i+1, err)
		}
		if err := w.root.Revoke(ctx, "writer", client.Rule{Permission: client.PermWrite, Prefix: "app/"}); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if _, err := writer.Put(ctx, key, []byte("v2")); !errors.Is(err, client.ErrPermissionDenied) {
			t.Fatalf("node %d: put after the revoke: got %v, want ErrPermissionDenied", i+1, err)
		}
		if err := w.root.Grant(ctx, "writer", client.Rule{Permission: client.PermWrite, Prefix: "app/"}); err != nil {
			t.Fatalf("grant again: %v", err)
		}
	}
	reader := aclClient(t, w.cluster.Endpoints(), w.tokens["reader"])
	ps, err := w.root.Principals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == "reader" {
			if err := w.root.RevokeToken(ctx, p.TokenIDs[0]); err != nil {
				t.Fatalf("revoke token: %v", err)
			}
		}
	}
	if _, err := reader.Query(ctx, "app/held"); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("query with a revoked token: got %v, want ErrUnauthenticated", err)
	}
}

// TestAccessSurvivesLeaderChange: principals, rules and tokens are
// replicated state; a new leader enforces them as the old one did.
func TestAccessSurvivesLeaderChange(t *testing.T) {
	w := newACLWorld(t)
	ctx := ctxFor(t)
	locker := aclClient(t, w.cluster.Endpoints(), w.tokens["locker"])
	before := w.cluster.Leader()
	if _, err := w.root.TransferLeader(ctx, 0); err != nil {
		t.Fatalf("transfer leader: %v", err)
	}
	after := w.cluster.WaitLeader(30 * time.Second)
	if after == before {
		t.Fatalf("leader still node %d", before+1)
	}
	if err := lockAndRelease("app/t-")(ctx, locker, "locker"); err != nil {
		t.Fatalf("locker on app/ after the leader change: %v", err)
	}
	if err := lockAndRelease("other/t-")(ctx, locker, "locker"); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("locker on other/ after the leader change: got %v, want ErrPermissionDenied", err)
	}
	if _, err := locker.TransferLeader(ctx, 0); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("transfer leader by locker: got %v, want ErrPermissionDenied", err)
	}
}

// TestAccessSurvivesSnapshotRestore: a backup carries the principals,
// rules and token hashes; a cluster restored from it enforces them.
func TestAccessSurvivesSnapshotRestore(t *testing.T) {
	w := newACLWorld(t)
	ctx := ctxFor(t)
	var backup bytes.Buffer
	if _, err := w.root.SaveSnapshot(ctx, &backup); err != nil {
		t.Fatalf("save: %v", err)
	}
	wantPrincipals, err := w.root.Principals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restored := testcluster.StartInProcessWith(t, 3, func(cfg *config.Config) {
		withAuth(cfg)
		if _, err := node.RestoreSnapshot(cfg, bytes.NewReader(backup.Bytes())); err != nil {
			t.Errorf("restore node %d: %v", cfg.ID.SelfID, err)
		}
	})
	eps := restored.Endpoints()
	root := aclClient(t, eps, w.tokens["root"])
	got, err := root.Principals(ctx)
	if err != nil {
		t.Fatalf("principals after restore: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantPrincipals) {
		t.Fatalf("principals after restore:\n got  %+v\n want %+v", got, wantPrincipals)
	}
	reader := aclClient(t, eps, w.tokens["reader"])
	if _, err := reader.Get(ctx, "app/k"); err != nil {
		t.Fatalf("reader on app/ after restore: %v", err)
	}
	if _, err := reader.Get(ctx, "other/k"); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("reader on other/ after restore: got %v, want ErrPermissionDenied", err)
	}
	if _, err := aclClient(t, eps, "").Bootstrap(ctx, "again"); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("bootstrap of a restored cluster: got %v, want ErrAlreadyExists", err)
	}
}

// TestAccessOffByDefault: without auth.enabled nothing is checked, even
// after a bootstrap, and WhoAmI says so.
func TestAccessOffByDefault(t *testing.T) {
	c := testcluster.StartInProcess(t, 1)
	ctx := ctxFor(t)
	anon := aclClient(t, c.Endpoints(), "")
	if _, err := anon.Bootstrap(ctx, "root"); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, err := anon.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put without credentials, access control off: %v", err)
	}
	id, err := anon.WhoAmI(ctx)
	if err != nil || id.AuthEnabled {
		t.Fatalf("whoami: %+v, %v; want auth off", id, err)
	}
}
