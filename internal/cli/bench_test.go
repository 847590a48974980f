package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dlock-raft/dlock/client/clienttest"
	"github.com/dlock-raft/dlock/internal/loadgen"
)

// TestBenchReportsEveryOperation runs `dlock bench -o json` against a server and checks the report a
// script would read: the headline rate, a row per operation with its count, and no errors.
func TestBenchReportsEveryOperation(t *testing.T) {
	s := clienttest.NewServer(t)
	out, code := dlock(t, "", "bench", "--endpoints", s.Addr(), "--workload", "contended", "--clients", "3",
		"--ops", "30", "--duration", "0", "-o", "json")
	if code != 0 {
		t.Fatalf("bench exit %d, want 0; output %q", code, out)
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench -o json printed %q: %v", out, err)
	}
	acq, _ := res.Op("acquire")
	rel, _ := res.Op("release")
	if res.System != "dlock" || res.Clients != 3 || res.Unit != "handoffs/s" || res.Errors != 0 ||
		acq.Count < 30 || rel.Count != acq.Count || res.Throughput <= 0 {
		t.Errorf("result = %+v, want 3 dlock clients, at least 30 handoffs released as acquired, no errors", res)
	}
}

func TestBenchRefusesBadFlagsNamingThem(t *testing.T) {
	s := clienttest.NewServer(t)
	tests := []struct {
		name string
		args []string
	}{
		{"unknown workload", []string{"--workload", "storm"}},
		{"no clients", []string{"--clients", "0"}},
		{"hold past ttl", []string{"--hold", "20s", "--ttl", "10s"}},
		{"no bound", []string{"--duration", "0", "--ops", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := dlock(t, "", append([]string{"bench", "--endpoints", s.Addr()}, tt.args...)...)
			if code != 2 {
				t.Errorf("bench %s = exit %d (%q), want 2", strings.Join(tt.args, " "), code, out)
			}
			if calls := s.Calls(); len(calls) != 0 {
				t.Errorf("bench %s reached the server (%d calls); a bad flag must change nothing", tt.args, len(calls))
			}
		})
	}
}
