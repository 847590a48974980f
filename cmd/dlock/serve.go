package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/server"
)

// drainTimeout bounds how long a stopping node lets calls in flight finish
// (waiting acquires included) before it closes their connections.
const drainTimeout = 3 * time.Second

func serveCommand() *cobra.Command {
	var configPath, logFormat string
	var join bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one dlock node",
		Long: `Run one dlock node. With --config it reads a seed-compatible config.yaml;
without it, it starts a single node: Raft on 127.0.0.1:14005, clients on
127.0.0.1:24005, data in ./dlock-data. SIGINT or SIGTERM stop it gracefully:
calls in flight finish (for up to 3 s), acquires waiting in a queue are handed
back to their clients to continue on another node, and a leader hands over
leadership first.

With --join (or id.join: true in the config) a node that has no data yet
waits to be added to a running cluster, whose members its config names,
instead of bootstrapping a cluster of its own: start it, then run
'dlock cluster member add' against the cluster. A node removed from its
cluster ('dlock cluster member remove') stops by itself.

With observability.metrics_address in the config the node also serves
/metrics (Prometheus), /healthz, /readyz, PUT /loglevel and, with
observability.pprof, /debug/pprof/ there (docs/observability.md). Every node
serves the gRPC health service on its client port ('dlock health').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if configPath != "" {
				var err error
				if cfg, err = config.Load(configPath); err != nil {
					return err
				}
			}
			if join {
				cfg.ID.Join = true
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("--join: %w", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, logFormat)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (seed-compatible YAML); default: a single local node")
	cmd.Flags().StringVar(&logFormat, "log-format", "", "log format: text or json (default: observability.log_format, else text)")
	cmd.Flags().BoolVar(&join, "join", false, "with no data yet, wait to be added to a running cluster instead of bootstrapping one (id.join)")
	return cmd
}

// serve runs a node until ctx ends, then stops it gracefully. A logFormat
// other than "" overrides observability.log_format.
func serve(ctx context.Context, cfg *config.Config, logFormat string) error {
	if logFormat != "" {
		c := *cfg
		c.Observability.LogFormat = logFormat
		cfg = &c
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	logger, logOut, closeLog, err := newLogger(cfg, logFormat, level)
	if err != nil {
		return err
	}
	defer closeLog()
	obs := newObservability(cfg)
	peerTLS, clientTLS, err := loadTLS(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Network.SelfCliAddress)
	if err != nil {
		return fmt.Errorf("dlock: listen on network.self_cli_address %q: %w", cfg.Network.SelfCliAddress, err)
	}
	waiters := server.NewWaiters()
	n, err := node.New(node.Options{Config: cfg, Logger: logger, RaftLogOutput: logOut, Sink: waiters.Publish,
		PeerTLS: peerTLS, Observer: obs.nodeObserver()})
	if err != nil {
		ln.Close()
		return err
	}
	timing := cfg.RaftTiming()
	srv := server.New(n, waiters, server.Options{
		Limits:       cfg.Limits,
		WriteTimeout: timing.ApplyTimeout + 4*timing.ElectionTimeout,
		Logger:       logger,
		TLS:          clientTLS,
		Auth:         cfg.Auth,
		Observer:     obs.serverObserver(),
	})
	if err := obs.start(n, logger, level); err != nil {
		srv.Stop()
		ln.Close()
		n.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("serving", "id", cfg.ID.SelfID, "clients", ln.Addr().String(), "peers", cfg.Network.SelfAddress, "data", cfg.DataDir())
	select {
	case <-ctx.Done():
	case err = <-served:
		logger.Error("client server stopped", "err", err)
	case <-n.Removed():
		logger.Warn("removed from the cluster; stopping")
	}
	logger.Info("stopping")
	drain, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	srv.GracefulStop(drain)
	if serr := n.Shutdown(drain); serr != nil && err == nil {
		err = serr
	}
	if oerr := obs.shutdown(drain); oerr != nil && err == nil {
		err = oerr
	}
	logger.Info("stopped")
	return err
}

// newLogger logs to standard error and, if storage.log_path is set, to that
// file too, at level (which may change at run time), in format (empty:
// observability.log_format, else text).
func newLogger(cfg *config.Config, format string, level *slog.LevelVar) (*slog.Logger, io.Writer, func(), error) {
	if format == "" {
		format = cmp.Or(cfg.Observability.LogFormat, config.LogFormatText)
	}
	var out io.Writer = os.Stderr
	closeFn := func() {}
	if p := cfg.LogFile(); p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return nil, nil, nil, fmt.Errorf("dlock: storage.log_path: %w", err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("dlock: storage.log_path: %w", err)
		}
		out = io.MultiWriter(os.Stderr, f)
		closeFn = func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(out, opts)
	case "json":
		h = slog.NewJSONHandler(out, opts)
	default:
		closeFn()
		return nil, nil, nil, fmt.Errorf("dlock: --log-format %q: want text or json", format)
	}
	return slog.New(h).With("node", cfg.ID.SelfID), out, closeFn, nil
}
