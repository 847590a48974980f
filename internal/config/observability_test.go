package config

import (
	"slices"
	"strings"
	"testing"
)

// Without an observability section nothing is served: a seed file parses to an empty section and
// renders without one.
func TestObservabilityOffByDefault(t *testing.T) {
	c, err := Parse([]byte("id:\n  self_id: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Observability != (ObservabilityConfig{}) {
		t.Errorf("Observability = %+v, want the zero value", c.Observability)
	}
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(text); containsKey(got, "observability") {
		t.Errorf("Render wrote an observability section for a config without one:\n%s", got)
	}
}

func TestObservabilityParses(t *testing.T) {
	c, err := Parse([]byte(`
observability:
  metrics_address: "127.0.0.1:9105"
  pprof: true
  log_format: json
`))
	if err != nil {
		t.Fatal(err)
	}
	want := ObservabilityConfig{MetricsAddress: "127.0.0.1:9105", PProf: true, LogFormat: "json"}
	if c.Observability != want {
		t.Errorf("Observability = %+v, want %+v", c.Observability, want)
	}
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(Render()) = %v\n%s", err, text)
	}
	if back.Observability != want {
		t.Errorf("round trip Observability = %+v, want %+v", back.Observability, want)
	}
}

func TestObservabilityValidateNamesTheBadKey(t *testing.T) {
	tests := []struct {
		name    string
		give    ObservabilityConfig
		wantKey string
	}{
		{"metrics address without port", ObservabilityConfig{MetricsAddress: "10.0.0.1"}, "observability.metrics_address"},
		{"metrics port above 65535", ObservabilityConfig{MetricsAddress: "10.0.0.1:70000"}, "observability.metrics_address"},
		{"metrics on the client port", ObservabilityConfig{MetricsAddress: "10.0.0.1:24005"}, "observability.metrics_address"},
		{"metrics on every interface, raft port", ObservabilityConfig{MetricsAddress: ":14005"}, "observability.metrics_address"},
		{"pprof without metrics address", ObservabilityConfig{PProf: true}, "observability.pprof"},
		{"unknown log format", ObservabilityConfig{LogFormat: "xml"}, "observability.log_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := threeNodes()
			c.Observability = tt.give
			err := c.Validate()
			if got := errorKeys(err); !slices.Contains(got, tt.wantKey) {
				t.Errorf("Validate() = %v; keys %q, want one to be %q", err, got, tt.wantKey)
			}
		})
	}
}

func TestObservabilityValidAddresses(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:9105", ":9105", "0.0.0.0:9105", "127.0.0.1:0", "[::1]:9105"} {
		c := threeNodes()
		c.Observability = ObservabilityConfig{MetricsAddress: addr, PProf: true, LogFormat: "text"}
		if err := c.Validate(); err != nil {
			t.Errorf("metrics_address %q: Validate() = %v, want nil", addr, err)
		}
	}
}

func containsKey(yamlText, key string) bool {
	return strings.HasPrefix(yamlText, key+":") || strings.Contains(yamlText, "\n"+key+":")
}
