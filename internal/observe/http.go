package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dlock-raft/dlock/internal/config"
)

// HTTPOptions configure the observability endpoint of one node.
type HTTPOptions struct {
	// Metrics is served at /metrics. Required.
	Metrics *Metrics
	// Ready answers /readyz: ready, or not and why in one line. Required.
	Ready func() (ready bool, reason string)
	// Level is the node's log level, read and set at /loglevel. Required.
	Level *slog.LevelVar
	// OnLevel, if set, is called after /loglevel changed Level, so that
	// loggers outside slog (Raft's) follow.
	OnLevel func(slog.Level)
	// PProf serves net/http/pprof under /debug/pprof/; off, those paths
	// are 404.
	PProf bool
	// Logger receives a line for each level change and for serve errors.
	Logger *slog.Logger
}

// HTTP is a node's observability endpoint: /metrics, /healthz, /readyz,
// /loglevel and optionally /debug/pprof/, on an address of its own, never the
// client port. Start it with StartHTTP; Shutdown stops it and waits for its
// goroutine.
type HTTP struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// maxLevelBody bounds a PUT /loglevel body: a level name is a few bytes.
const maxLevelBody = 64

// StartHTTP serves opts on ln until Shutdown. It takes ownership of ln.
func StartHTTP(ln net.Listener, opts HTTPOptions) *HTTP {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry(), promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
		Registry: opts.Metrics.Registry(),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready, why := opts.Ready(); !ready {
			text(w, http.StatusServiceUnavailable, "not ready: "+why)
			return
		}
		text(w, http.StatusOK, "ready")
	})
	mux.HandleFunc("GET /loglevel", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, LevelName(opts.Level.Level()))
	})
	mux.HandleFunc("PUT /loglevel", func(w http.ResponseWriter, r *http.Request) {
		setLevel(w, r, opts)
	})
	if opts.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	h := &HTTP{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("observability endpoint stopped", "err", err)
		}
	}()
	return h
}

// Addr is the address the endpoint listens on (with the port it got, when
// asked for port 0).
func (h *HTTP) Addr() string { return h.ln.Addr().String() }

// Shutdown stops accepting requests, lets those in flight finish until ctx
// ends (then closes them), and waits for the serving goroutine. A CPU
// profile in progress is cut short. Idempotent.
func (h *HTTP) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, h.srv.Close())
	}
	<-h.done
	return err
}

func setLevel(w http.ResponseWriter, r *http.Request, opts HTTPOptions) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLevelBody+1))
	if err != nil || len(body) > maxLevelBody {
		text(w, http.StatusBadRequest, "want a level name: Critical, Error, Warning, Notice, Info or Debug")
		return
	}
	name := strings.TrimSpace(string(body))
	if name == "" {
		text(w, http.StatusBadRequest, "empty body; want a level name: Critical, Error, Warning, Notice, Info or Debug")
		return
	}
	l, err := config.ParseLogLevel(name)
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	before := opts.Level.Level()
	opts.Level.Set(l)
	if opts.OnLevel != nil {
		opts.OnLevel(l)
	}
	// Logged at the level that survives any setting, so the change is on record.
	opts.Logger.Log(r.Context(), config.LevelCritical, "log level changed", "from", LevelName(before), "to", LevelName(l),
		"remote", r.RemoteAddr)
	text(w, http.StatusOK, LevelName(l))
}

// LevelName is the seed's name of a slog level (see config.ParseLogLevel);
// a level between two names gets the less severe one's.
func LevelName(l slog.Level) string {
	switch {
	case l >= config.LevelCritical:
		return "Critical"
	case l >= slog.LevelError:
		return "Error"
	case l >= slog.LevelWarn:
		return "Warning"
	case l >= config.LevelNotice:
		return "Notice"
	case l >= slog.LevelInfo:
		return "Info"
	}
	return "Debug"
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
