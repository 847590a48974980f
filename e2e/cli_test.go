package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/testcluster"
)

// The dlock command line against a real cluster: what it prints and the
// exit codes docs/cli.md promises.
func TestCLIAgainstACluster(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.WaitLeader(30 * time.Second)
	eps := strings.Join(c.Endpoints(), ",")
	run := dlockAgainst(t, eps)
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"lock", "acquire", "job", "--owner", "alice", "--ttl", "1m"}, 0, "token:  1"},
		{[]string{"lock", "acquire", "job", "--owner", "bob", "--wait", "200ms"}, 4, "timed out"},
		{[]string{"lock", "acquire", "job", "--owner", "bob", "--wait", "0s"}, 4, "held"},
		{[]string{"lock", "release", "job", "--owner", "bob"}, 4, "held by another"},
		{[]string{"lock", "query", "job"}, 0, "owner:      alice"},
		{[]string{"lock", "query", "never-acquired"}, 3, "not found"},
		{[]string{"lock", "release", "job", "--owner", "alice"}, 0, "released job"},
		{[]string{"kv", "put", "k", "v1"}, 0, "created k"},
		{[]string{"kv", "get", "k"}, 0, "v1"},
		{[]string{"kv", "del", "k"}, 0, ""},
		{[]string{"kv", "get", "k"}, 3, "not found"},
		{[]string{"lock", "acquire", "job", "--ttl", "-1s"}, 2, "ttl"},
	}
	for _, s := range steps {
		out, code := run(s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) {
			t.Fatalf("dlock %s: exit %d, output %q; want exit %d and output containing %q",
				strings.Join(s.args, " "), code, out, s.wantCode, s.wantOut)
		}
	}
	out, code := run("cluster", "status", "-o", "json")
	var st struct {
		LeaderID int `json:"leader_id"`
		Members  []struct {
			ID int `json:"id"`
		} `json:"members"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.LeaderID == 0 || len(st.Members) != 3 {
		t.Fatalf("dlock cluster status -o json: exit %d, %q; want a leader and 3 members", code, out)
	}
	to := st.LeaderID%3 + 1
	out, code = run("cluster", "transfer-leader", "--to", strconv.Itoa(to))
	if want := fmt.Sprintf("leader is now node %d", to); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("dlock cluster transfer-leader --to %d: exit %d, %q; want %q", to, code, out, want)
	}
	if leader := c.WaitLeader(30 * time.Second); leader != to {
		t.Fatalf("leader is node %d after transfer-leader --to %d", leader, to)
	}
	out, code = run("cluster", "transfer-leader", "--to", "7")
	if code != 2 || !strings.Contains(out, "to_id") {
		t.Fatalf("dlock cluster transfer-leader --to 7: exit %d, %q; want exit 2 naming to_id", code, out)
	}
}
