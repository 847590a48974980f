package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// docs/cli.md, "acl": an operator bootstraps access control, adds a
// principal with a rule and a token, and the principal's commands succeed
// or exit 6 as the rule says.
func TestACLCommands(t *testing.T) {
	c := testcluster.StartInProcessWith(t, 1, func(cfg *config.Config) {
		cfg.Auth = config.AuthConfig{Enabled: true, AllowInsecureTokens: true}
	})
	ep := "--endpoints=" + c.Endpoints()[0]
	t.Setenv(cli.EnvInsecureToken, "true")

	out, code := dlock(t, "", "acl", "bootstrap", ep, "-o", "json")
	var root struct{ Principal, Token string }
	if code != 0 || json.Unmarshal([]byte(out), &root) != nil || root.Principal != "root" || root.Token == "" {
		t.Fatalf("acl bootstrap = exit %d, %q; want root's token as JSON", code, out)
	}
	if _, code := dlock(t, "", "acl", "bootstrap", ep); code != cli.ExitError {
		t.Fatalf("second acl bootstrap = exit %d, want %d", code, cli.ExitError)
	}
	asRoot := "--token=" + root.Token
	steps := [][]string{
		{"acl", "principal", "add", "app", ep, asRoot},
		{"acl", "grant", "app", "lock", "app/", ep, asRoot},
		{"acl", "grant", "app", "read", "app/", ep, asRoot},
	}
	for _, s := range steps {
		if out, code := dlock(t, "", s...); code != 0 {
			t.Fatalf("dlock %s = exit %d, %q", strings.Join(s, " "), code, out)
		}
	}
	out, code = dlock(t, "", "acl", "token", "create", "app", ep, asRoot, "-o", "json")
	var app struct {
		Token   string
		TokenID string `json:"token_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &app) != nil || app.Token == "" {
		t.Fatalf("acl token create = exit %d, %q", code, out)
	}

	t.Setenv(cli.EnvToken, app.Token)
	rows := []struct {
		give []string
		want int
	}{
		{[]string{"lock", "acquire", "app/job", "--ttl", "1m"}, cli.ExitOK},
		{[]string{"lock", "query", "app/job"}, cli.ExitOK},
		{[]string{"lock", "acquire", "other/job"}, cli.ExitDenied},
		{[]string{"kv", "put", "app/k", "v"}, cli.ExitDenied},
		{[]string{"acl", "principal", "add", "x"}, cli.ExitDenied},
		{[]string{"acl", "whoami"}, cli.ExitOK},
		{[]string{"lock", "query", "app/job", "--token", client0()}, cli.ExitDenied},
		{[]string{"acl", "grant", "app", "fly", ""}, cli.ExitUsage},
		{[]string{"lock", "query", "app/job", "--insecure-token=false"}, cli.ExitUsage}, // no TLS: never sent
	}
	for _, r := range rows {
		if out, code := dlock(t, "", append(r.give, ep)...); code != r.want {
			t.Errorf("dlock %s = exit %d, %q; want %d", strings.Join(r.give, " "), code, out, r.want)
		}
	}

	out, code = dlock(t, "", "acl", "whoami", ep, "-o", "json")
	var who struct {
		Principal string
		Rules     []struct{ Permission, Prefix string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &who) != nil || who.Principal != "app" || len(who.Rules) != 2 {
		t.Fatalf("acl whoami = exit %d, %q; want app with 2 rules", code, out)
	}
	out, code = dlock(t, "", "acl", "rules", "app", ep, asRoot)
	if code != 0 || !strings.Contains(out, `app        lock        "app/"`) {
		t.Fatalf("acl rules app = exit %d:\n%s", code, out)
	}
	if out, code := dlock(t, "", "acl", "token", "revoke", app.TokenID, ep, asRoot); code != 0 {
		t.Fatalf("acl token revoke = exit %d, %q", code, out)
	}
	if _, code := dlock(t, "", "lock", "query", "app/job", ep); code != cli.ExitDenied {
		t.Fatalf("lock query with a revoked token = exit %d, want %d", code, cli.ExitDenied)
	}
}

// client0 is a well-formed token no principal has.
func client0() string { return "dlk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }
