package config

import (
	"net"
	"strconv"
)

// ObservabilityConfig turns on what operators watch a node with: Prometheus metrics, health and
// readiness endpoints, a run-time log level and pprof, all on one HTTP address that is never the
// client port. The section is optional: without it a node serves none of them (the gRPC health
// service on the client port is always on), so a seed file behaves as before. docs/observability.md
// describes each feature.
type ObservabilityConfig struct {
	// MetricsAddress is where the node serves HTTP: /metrics (Prometheus text format), /healthz,
	// /readyz, /loglevel and, with PProf, /debug/pprof/. host:port like the other listen addresses;
	// the host may be empty or 0.0.0.0 to listen on every interface. Port 0 picks a free port (the
	// node logs the one it got). It must differ from every other address in the file. Optional;
	// default empty: no HTTP endpoint at all.
	MetricsAddress string `yaml:"metrics_address,omitempty"`
	// PProf serves Go's profiler (net/http/pprof) under /debug/pprof/ on MetricsAddress, never on
	// the client port. Profiles expose the process's internals and a CPU profile costs CPU while it
	// runs, so leave it off unless you are investigating; it needs MetricsAddress. Default false.
	PProf bool `yaml:"pprof,omitempty"`
	// LogFormat is the format of the node's log lines: "text" (key=value) or "json" (one object per
	// line). `dlock serve --log-format` overrides it. Optional; default empty, meaning text.
	LogFormat string `yaml:"log_format,omitempty"`
}

// Log formats of ObservabilityConfig.LogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

func (c *Config) validateObservability(p *problems) {
	o := &c.Observability
	if o.MetricsAddress != "" {
		checkMetricsAddress(p, o.MetricsAddress)
		for _, other := range []struct{ key, addr string }{
			{"network.self_address", c.Network.SelfAddress},
			{"network.self_cli_address", c.Network.SelfCliAddress},
		} {
			if samePort(o.MetricsAddress, other.addr) {
				p.add("observability.metrics_address", "%q repeats %s; every address must be distinct", o.MetricsAddress, other.key)
			}
		}
	}
	if o.PProf && o.MetricsAddress == "" {
		p.add("observability.pprof", "true, but observability.metrics_address is empty; pprof is served only there")
	}
	switch o.LogFormat {
	case "", LogFormatText, LogFormatJSON:
	default:
		p.add("observability.log_format", "%q is not a log format (want text or json)", o.LogFormat)
	}
}

// checkMetricsAddress is checkAddress for a listen address that may use port 0 (any free port).
func checkMetricsAddress(p *problems, addr string) {
	const key = "observability.metrics_address"
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		checkAddress(p, key, addr, false) // reports the form
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(key, "port %q of %q is not a number in 0..65535", port, addr)
	}
}

// samePort reports whether two listen addresses would collide: the same port on the same host, or
// on hosts one of which listens on every interface. Port 0 never collides.
func samePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || anyInterface(ha) || anyInterface(hb)
}

func anyInterface(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
