package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The exact wording users see for the three kinds of mistake the package is most often asked about.
func TestParseErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "reserved peer id",
			give: "id: {self_id: 1, peer_id: [2, 0]}\nnetwork: {peer_address: [a:1, b:1], peer_cli_address: [a:2, b:2]}",
			want: "id.peer_id[1]: 0 is reserved; use 1..4294967295",
		},
		{
			name: "duration that is not one",
			give: "parameters:\n  heart_beat_interval: abc\n",
			want: `parameters.heart_beat_interval: "abc" is not a duration (want milliseconds or e.g. "50ms")`,
		},
		{
			name: "peer lists of different lengths",
			give: "id: {peer_id: [2, 3]}\nnetwork: {peer_address: [a:1], peer_cli_address: [a:2, b:2]}",
			want: "network.peer_address: 1 entries, but id.peer_id has 2",
		},
		{
			name: "misspelt key",
			give: "parameters:\n  heart_beat_intervl: 50\n",
			want: "parameters.heart_beat_intervl: unknown key",
		},
		{
			name: "duration below its bound",
			give: "parameters:\n  heart_beat_interval: 0\n",
			want: "parameters.heart_beat_interval: 0s below 1ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.give))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse() error = %v, want %q", err, tt.want)
			}
		})
	}
}

// Strict decoding: every mistake in the file is an error naming the full key path.
func TestParseNamesTheBadKey(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantKey string
	}{
		{"unknown section", "ids:\n  self_id: 1\n", "ids"},
		{"unknown parameter", "parameters:\n  heart_beat_intervl: 50\n", "parameters.heart_beat_intervl"},
		{"unknown limit", "limits:\n  locks: 5\n", "limits.locks"},
		{"seed key in the wrong section", "network:\n  self_id: 1\n", "network.self_id"},
		{"repeated key", "parameters:\n  polling_interval: 20\n  polling_interval: 30\n", "parameters.polling_interval"},
		{"duration word", "parameters:\n  heart_beat_interval: abc\n", "parameters.heart_beat_interval"},
		{"negative milliseconds", "parameters:\n  polling_interval: -5\n", "parameters.polling_interval"},
		{"negative duration string", "parameters:\n  acquirement_expire: -5ms\n", "parameters.acquirement_expire"},
		{"float milliseconds", "parameters:\n  append_entries_timeout: 1.5\n", "parameters.append_entries_timeout"},
		{"float string", "parameters:\n  state_change_timeout: \"1.5\"\n", "parameters.state_change_timeout"},
		{"quoted milliseconds", "parameters:\n  min_wait_time_candidate: \"150\"\n", "parameters.min_wait_time_candidate"},
		{"milliseconds out of range", "parameters:\n  snapshot_interval: 9223372036855\n", "parameters.snapshot_interval"},
		{"list for a duration", "parameters:\n  heart_beat_interval: [50]\n", "parameters.heart_beat_interval"},
		{"duration in limits", "limits:\n  lease_max: forever\n", "limits.lease_max"},
		{"word for an id", "id:\n  self_id: one\n", "id.self_id"},
		{"negative id", "id:\n  self_id: -1\n", "id.self_id"},
		{"id beyond uint32", "id:\n  self_id: 4294967296\n", "id.self_id"},
		{"word in the peer list", "id:\n  peer_id: [2, x]\n", "id.peer_id[1]"},
		{"single peer id not in a list", "id:\n  peer_id: 2\n", "id.peer_id"},
		{"mapping for an address", "network:\n  self_address: {host: a}\n", "network.self_address"},
		{"value for a section", "id: 5\n", "id"},
		{"word for a count", "parameters:\n  max_log_units_recover: many\n", "parameters.max_log_units_recover"},
		{"word for a limit", "limits:\n  keys_max: lots\n", "limits.keys_max"},
		{"unknown log level", "storage:\n  log_level: Verbose\n", "storage.log_level"},
		{"file is a list", "- id\n", ""},
		{"two documents", "id:\n  self_id: 1\n---\nid:\n  self_id: 2\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.give))
			if got := errorKeys(err); !slices.Contains(got, tt.wantKey) {
				t.Errorf("Parse() = %v; keys %q, want one to be %q", err, got, tt.wantKey)
			}
		})
	}
}

func TestParseReportsEveryDecodingProblem(t *testing.T) {
	give := "id:\n  self_id: one\nparameters:\n  heart_beat_intervl: 50\n  polling_interval: abc\nextra: 1\n"
	want := []string{"id.self_id", "parameters.heart_beat_intervl", "parameters.polling_interval", "extra"}
	_, err := Parse([]byte(give))
	if got := errorKeys(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() = %v; keys %q, want %q", err, got, want)
	}
}

func TestParseSyntaxErrorIsReported(t *testing.T) {
	if _, err := Parse([]byte("id:\n  self_id: [1\n")); err == nil {
		t.Errorf("Parse(unclosed list) error = nil, want a YAML syntax error")
	}
}

// Durations are milliseconds as the seed writes them, or Go duration strings.
func TestParseDurationForms(t *testing.T) {
	tests := []struct {
		give string
		want time.Duration
	}{
		{"50", 50 * time.Millisecond},
		{"0", 0},
		{"1_000", time.Second},
		{"0x10", 16 * time.Millisecond},
		{`"150ms"`, 150 * time.Millisecond},
		{"150ms", 150 * time.Millisecond},
		{"2s", 2 * time.Second},
		{"1.5s", 1500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{`" 2s "`, 2 * time.Second},
		{"500us", 500 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c, err := Parse([]byte("parameters:\n  polling_interval: " + tt.give + "\n"))
			if err != nil {
				t.Fatalf("Parse() error = %v, want none", err)
			}
			if got := c.Parameters.PollingInterval.Duration(); got != tt.want {
				t.Errorf("polling_interval %s = %s, want %s", tt.give, got, tt.want)
			}
		})
	}
}

func TestParseEmptyFileIsDefault(t *testing.T) {
	for _, give := range []string{"", "# only a comment\n", "---\n"} {
		c, err := Parse([]byte(give))
		if err != nil {
			t.Fatalf("Parse(%q) error = %v, want none", give, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default()", give, c)
		}
	}
}

// A key present with no value keeps its default, as yaml.v3 does; an empty list key is an empty list.
func TestParseNullKeepsDefault(t *testing.T) {
	c, err := Parse([]byte("id:\n  peer_id:\nparameters:\n  polling_interval:\n  heart_beat_interval: ~\nlimits:\n"))
	if err != nil {
		t.Fatalf("Parse() error = %v, want none", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Parse(nulls) = %+v, want Default()", c)
	}
}

func TestParseFollowsAliases(t *testing.T) {
	c, err := Parse([]byte("parameters:\n  min_wait_time_candidate: &wait 200\n  max_wait_time_candidate: *wait\n"))
	if err != nil {
		t.Fatalf("Parse() error = %v, want none", err)
	}
	if got, want := c.Parameters.MaxWaitTimeCandidate, millis(200); got != want {
		t.Errorf("max_wait_time_candidate = %s, want %s", got, want)
	}
}

// What Marshal writes, Parse reads back unchanged, so a tool can print the effective configuration.
func TestMarshalThenParseRoundTrips(t *testing.T) {
	tests := []struct {
		name string
		give *Config
	}{
		{"default", Default()},
		{"three nodes with sub-millisecond duration", func() *Config {
			c := threeNodes()
			c.Network.AdvertiseAddress = "node1:14005"
			c.Parameters.PollingInterval = Millis(1500 * time.Microsecond)
			c.Storage.DataDir = "/var/lib/dlock"
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := yaml.Marshal(tt.give)
			if err != nil {
				t.Fatalf("yaml.Marshal: %v", err)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse(marshalled) error = %v, want none; YAML:\n%s", err, data)
			}
			if !reflect.DeepEqual(got, tt.give) {
				t.Errorf("round trip = %+v, want %+v", got, tt.give)
			}
		})
	}
}

func TestLoadMissingFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(missing) error = %v, want it to name %q", err, path)
	}
}

func TestLoadInvalidFileNamesPathAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("id:\n  self_id: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(bad) error = %v, want it to name %q", err, path)
	}
	if got := errorKeys(err); !slices.Contains(got, "id.self_id") {
		t.Errorf("Load(bad) keys = %q, want id.self_id", got)
	}
}

// The example in docs/config.md must stay a valid file.
func TestDocsExampleParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("read docs/config.md: %v", err)
	}
	_, rest, found := strings.Cut(string(doc), "<!-- example-3-node")
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, closed := strings.Cut(rest, "```")
	if !found || !closed {
		t.Fatalf("docs/config.md: no example-3-node yaml block")
	}
	c, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("Parse(docs example) error = %v, want none", err)
	}
	want := []Member{
		{ID: 1, PeerAddress: "node1.dlock.internal:14005", ClientAddress: "0.0.0.0:24005"},
		{ID: 2, PeerAddress: "node2.dlock.internal:14005", ClientAddress: "node2.dlock.internal:24005"},
		{ID: 3, PeerAddress: "node3.dlock.internal:14005", ClientAddress: "node3.dlock.internal:24005"},
	}
	if got := c.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("docs example Members() = %+v, want %+v", got, want)
	}
}
