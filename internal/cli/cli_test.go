package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/client/clienttest"
	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/freeport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// dlock runs the client commands with args and returns standard output and the exit status.
func dlock(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	root := &cobra.Command{Use: "dlock", SilenceErrors: true}
	cli.AddClientCommands(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		t.Logf("dlock %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), cli.ExitCode(err)
}

// hold makes owner hold name on s for a minute, through a client of its own.
func hold(t *testing.T, s *clienttest.Server, name, owner string) {
	t.Helper()
	c, err := client.New([]string{s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryAcquire(t.Context(), name, client.WithOwner(owner), client.WithTTL(time.Minute),
		client.WithoutAutoRenew()); err != nil {
		t.Fatalf("TryAcquire(%s) as %s = %v", name, owner, err)
	}
}

func put(t *testing.T, s *clienttest.Server, key, value string) {
	t.Helper()
	if _, code := dlock(t, "", "kv", "put", key, value, "--endpoints", s.Addr()); code != 0 {
		t.Fatalf("kv put %s = exit %d, want 0", key, code)
	}
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t, "127.0.0.1") // never handed to a test cluster's node later
}

// docs/cli.md, "Exit status". Each row runs one command against a fresh node after setup.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *clienttest.Server)
		args  []string
		want  int
	}{
		// 0 success
		{"acquire a free lock", nil, []string{"lock", "acquire", "job"}, 0},
		{"release a held lock", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "me") },
			[]string{"lock", "release", "job", "--owner", "me"}, 0},
		{"renew a held lock", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "me") },
			[]string{"lock", "renew", "job", "--owner", "me", "--ttl", "1m"}, 0},
		{"list locks", nil, []string{"lock", "list"}, 0},
		{"kv get", func(t *testing.T, s *clienttest.Server) { put(t, s, "k", "v") }, []string{"kv", "get", "k"}, 0},
		{"cluster status", nil, []string{"cluster", "status"}, 0},
		{"bare group prints help", nil, []string{"lock"}, 0},
		// 2 usage
		{"unknown flag", nil, []string{"lock", "query", "job", "--bogus"}, 2},
		{"missing argument", nil, []string{"lock", "acquire"}, 2},
		{"extra argument", nil, []string{"kv", "get", "a", "b"}, 2},
		{"unknown subcommand", nil, []string{"lock", "grab", "job"}, 2},
		{"bad output format", nil, []string{"kv", "list", "-o", "yaml"}, 2},
		{"bad duration", nil, []string{"lock", "acquire", "job", "--ttl", "soon"}, 2},
		{"zero ttl", nil, []string{"lock", "acquire", "job", "--ttl", "0s"}, 2},
		// 3 not found
		{"query an unknown lock", nil, []string{"lock", "query", "job"}, 3},
		{"get a missing key", nil, []string{"kv", "get", "k"}, 3},
		{"delete a missing key", nil, []string{"kv", "del", "k"}, 3},
		// 4 lock not obtained or not held
		{"acquire a held lock without waiting", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "other") },
			[]string{"lock", "acquire", "job", "--wait", "0s"}, 4},
		{"acquire a held lock, wait times out", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "other") },
			[]string{"lock", "acquire", "job", "--wait", "100ms"}, 4},
		{"release a free lock", nil, []string{"lock", "release", "job"}, 4},
		{"release another owner's lock", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "other") },
			[]string{"lock", "release", "job", "--owner", "me"}, 4},
		{"release with a stale token", func(t *testing.T, s *clienttest.Server) { hold(t, s, "job", "me") },
			[]string{"lock", "release", "job", "--owner", "me", "--token", "99"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clienttest.NewServer(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			_, got := dlock(t, "", append(tt.args, "--endpoints", s.Addr())...)
			if got != tt.want {
				t.Errorf("dlock %s: exit %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

func TestExitStatusUnavailable(t *testing.T) {
	_, got := dlock(t, "", "kv", "get", "k", "--endpoints", deadAddr(t), "--timeout", "300ms")
	if got != cli.ExitUnavailable {
		t.Errorf("kv get with no node up: exit %d, want %d", got, cli.ExitUnavailable)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		give error
		want int
	}{
		{"success", nil, cli.ExitOK},
		{"other error", errors.New("boom"), cli.ExitError},
		{"limit", client.ErrLimit, cli.ExitError},
		{"stale request", client.ErrStaleRequest, cli.ExitError},
		{"usage", cli.UsageError(errors.New("bad flag")), cli.ExitUsage},
		{"invalid request", client.ErrInvalid, cli.ExitUsage},
		{"not found", client.ErrNotFound, cli.ExitNotFound},
		{"locked", client.ErrLocked, cli.ExitNotHeld},
		{"wait timeout", client.ErrWaitTimeout, cli.ExitNotHeld},
		{"not held", client.ErrNotHeld, cli.ExitNotHeld},
		{"held by other", client.ErrHeldByOther, cli.ExitNotHeld},
		{"token mismatch", client.ErrTokenMismatch, cli.ExitNotHeld},
		{"lock lost", client.ErrLockLost, cli.ExitNotHeld},
		{"unavailable", client.ErrUnavailable, cli.ExitUnavailable},
		{"no answer in time", context.DeadlineExceeded, cli.ExitUnavailable},
		{"wrapped", fmt.Errorf("acquire job: %w", client.ErrLocked), cli.ExitNotHeld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cli.ExitCode(tt.give); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}

func TestAcquireOutput(t *testing.T) {
	s := clienttest.NewServer(t)
	out, code := dlock(t, "", "lock", "acquire", "job", "--owner", "me", "--ttl", "30s", "--endpoints", s.Addr())
	want := "name:   job\nowner:  me\ntoken:  1\nnonce:  1\nttl:    30s\n"
	if code != 0 || out != want {
		t.Errorf("lock acquire: exit %d, output\n%s\nwant exit 0, output\n%s", code, out, want)
	}

	out, code = dlock(t, "", "lock", "acquire", "job2", "--owner", "me", "-o", "json", "--endpoints", s.Addr())
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("lock acquire -o json: exit %d, %q (%v), want exit 0 and JSON", code, out, err)
	}
	wantJSON := map[string]any{"name": "job2", "owner": "me", "token": 2.0, "nonce": 1.0, "ttl_ms": 30000.0}
	if !reflect.DeepEqual(got, wantJSON) {
		t.Errorf("lock acquire -o json = %v, want %v", got, wantJSON)
	}
}

func TestAcquireDefaultOwnerIsPerHost(t *testing.T) {
	s := clienttest.NewServer(t)
	out, code := dlock(t, "", "lock", "acquire", "job", "-o", "json", "--endpoints", s.Addr())
	var got struct{ Owner string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || !strings.HasPrefix(got.Owner, "cli-") {
		t.Fatalf("lock acquire: exit %d, %q, want exit 0 and owner cli-<hostname>", code, out)
	}
	if _, code := dlock(t, "", "lock", "release", "job", "--endpoints", s.Addr()); code != 0 {
		t.Errorf("lock release with the default owner: exit %d, want 0 (same default owner)", code)
	}
}

func TestQueryAndListOutput(t *testing.T) {
	s := clienttest.NewServer(t)
	hold(t, s, "a/1", "me")
	hold(t, s, "a/2", "you")
	out, code := dlock(t, "", "lock", "query", "a/1", "-o", "json", "--endpoints", s.Addr())
	var info struct {
		Name    string
		Held    bool
		Owner   string
		Token   uint64
		TTLMs   int64 `json:"ttl_ms"`
		Waiters int
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
		t.Fatalf("lock query -o json: exit %d, %q (%v)", code, out, err)
	}
	if info.Name != "a/1" || !info.Held || info.Owner != "me" || info.Token != 1 || info.TTLMs != 60000 {
		t.Errorf("lock query = %+v, want a/1 held by me, token 1, ttl 60000ms", info)
	}

	out, code = dlock(t, "", "lock", "list", "a/", "--endpoints", s.Addr())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "a/1") || !strings.HasPrefix(lines[2], "a/2") {
		t.Errorf("lock list a/: exit %d, output\n%s\nwant a header and rows a/1, a/2", code, out)
	}
}

func TestKVOutput(t *testing.T) {
	s := clienttest.NewServer(t)
	ep := []string{"--endpoints", s.Addr()}
	steps := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"kv", "put", "k", "v1"}, "created k\n"},
		{"from stdin", []string{"kv", "put", "k"}, "updated k\n"},
		{"", []string{"kv", "get", "k"}, "from stdin\n"},
		{"", []string{"kv", "get", "k", "-o", "json"},
			"{\n  \"key\": \"k\",\n  \"value\": \"from stdin\",\n  \"value_base64\": \"ZnJvbSBzdGRpbg==\"\n}\n"},
		{"", []string{"kv", "put", "j", "x"}, "created j\n"},
		{"", []string{"kv", "list"}, "j\nk\n"},
		{"", []string{"kv", "del", "k"}, "deleted k\n"},
		{"", []string{"kv", "list", "-o", "json"}, "[\n  \"j\"\n]\n"},
	}
	for _, st := range steps {
		out, code := dlock(t, st.stdin, append(st.args, ep...)...)
		if code != 0 || out != st.want {
			t.Errorf("dlock %s: exit %d, output %q; want exit 0, %q", strings.Join(st.args, " "), code, out, st.want)
		}
	}
}

func TestClusterStatusOutput(t *testing.T) {
	s := clienttest.NewServer(t)
	out, code := dlock(t, "", "cluster", "status", "--endpoints", s.Addr())
	for _, want := range []string{"endpoint:       " + s.Addr(), "state:          Leader", "ready:          true",
		"ID  SUFFRAGE  LEADER  PEER ADDRESS     CLIENT ADDRESS", "1   voter     true    127.0.0.1:14005  127.0.0.1:24005"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("cluster status: exit %d, output\n%s\nwant it to contain %q", code, out, want)
		}
	}
}

func TestEndpointsFromEnvironment(t *testing.T) {
	s := clienttest.NewServer(t)
	t.Setenv(cli.EnvEndpoints, s.Addr())
	if _, code := dlock(t, "", "cluster", "status"); code != 0 {
		t.Errorf("cluster status with $%s set: exit %d, want 0", cli.EnvEndpoints, code)
	}
}
