package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/observe"
	"github.com/dlock-raft/dlock/internal/server"
)

// observability is what `dlock serve` adds for operators when the config's
// observability.metrics_address is set: the node's metrics, and the HTTP
// endpoint that serves them with health, readiness, the log level and,
// if observability.pprof, the profiler. Without the address it does nothing.
type observability struct {
	cfg     *config.Config
	metrics *observe.Metrics // nil when off
	http    *observe.HTTP
	node    *node.Node
}

// newObservability makes the metrics, before the node that feeds them exists.
func newObservability(cfg *config.Config) *observability {
	o := &observability{cfg: cfg}
	if cfg.Observability.MetricsAddress != "" {
		o.metrics = observe.NewMetrics(func() node.Gauges { return o.node.Gauges() })
	}
	return o
}

// nodeObserver is the node's Observer: nil (none) when metrics are off.
func (o *observability) nodeObserver() node.Observer {
	if o.metrics == nil {
		return nil
	}
	return o.metrics
}

// serverObserver is the server's Observer: nil (none) when metrics are off.
func (o *observability) serverObserver() server.Observer {
	if o.metrics == nil {
		return nil
	}
	return o.metrics
}

// start listens on observability.metrics_address and serves there until
// shutdown. level is the node's log level, which PUT /loglevel changes.
func (o *observability) start(n *node.Node, logger *slog.Logger, level *slog.LevelVar) error {
	o.node = n
	if o.metrics == nil {
		return nil
	}
	addr := o.cfg.Observability.MetricsAddress
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dlock: listen on observability.metrics_address %q: %w", addr, err)
	}
	o.http = observe.StartHTTP(ln, observe.HTTPOptions{
		Metrics: o.metrics,
		Ready:   n.Readiness,
		Level:   level,
		OnLevel: n.SetLogLevel,
		PProf:   o.cfg.Observability.PProf,
		Logger:  logger,
	})
	logger.Info("serving metrics", "address", o.http.Addr(), "pprof", o.cfg.Observability.PProf)
	return nil
}

// shutdown stops the HTTP endpoint, if it runs, and waits for it.
func (o *observability) shutdown(ctx context.Context) error {
	if o.http == nil {
		return nil
	}
	return o.http.Shutdown(ctx)
}
