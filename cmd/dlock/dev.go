package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/config"
)

// devReadyTimeout bounds how long dev waits for its cluster to elect a leader.
const devReadyTimeout = 60 * time.Second

type devOptions struct {
	nodes      int
	dir        string
	host       string
	peerPort   int
	clientPort int
	// metricsPort is the first node's observability port; 0 turns it off.
	metricsPort int
	fresh       bool
	tls         bool
}

func devCommand() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local N-node cluster in the foreground",
		Long: `Run a local cluster of N dlock nodes, each its own process, on 127.0.0.1:
peer ports from 14005, client ports from 24005, metrics, health and pprof
on HTTP ports from 9405 (observability.metrics_address), data under one
directory.
It prints the client endpoints once the cluster has a leader, and stops every
node cleanly on Ctrl-C. Data is kept between runs; --fresh starts empty.
With --tls both planes run mutual TLS on certificates made under --dir/tls,
and it prints the DLOCK_CACERT, DLOCK_CERT and DLOCK_KEY a client needs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.nodes < 1 || o.nodes > 9 {
				return cli.UsageError(fmt.Errorf("dlock: --nodes %d: want 1 to 9", o.nodes))
			}
			if o.metricsPort < 0 || o.metricsPort+o.nodes-1 > 65535 {
				return cli.UsageError(fmt.Errorf("dlock: --metrics-port %d: want 0 (none) or a port with room for %d nodes", o.metricsPort, o.nodes))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 3, "number of nodes (1 to 9)")
	f.StringVar(&o.dir, "dir", "dlock-dev", "directory for the nodes' configs, data and logs")
	f.StringVar(&o.host, "host", "127.0.0.1", "address the nodes listen on")
	f.IntVar(&o.peerPort, "peer-port", 14005, "first node's Raft peer port; node i uses peer-port+i-1")
	f.IntVar(&o.clientPort, "client-port", 24005, "first node's client port; node i uses client-port+i-1")
	f.IntVar(&o.metricsPort, "metrics-port", 9405, "first node's metrics/health/pprof HTTP port; node i uses metrics-port+i-1; 0: none")
	f.BoolVar(&o.fresh, "fresh", false, "delete the directory's data before starting")
	f.BoolVar(&o.tls, "tls", false, "mutual TLS on both planes, with certificates made under --dir/tls (see dlock certs init)")
	return cmd
}

func runDev(ctx context.Context, o devOptions, out io.Writer) error {
	if o.fresh {
		if err := os.RemoveAll(o.dir); err != nil {
			return fmt.Errorf("dlock: --fresh: %w", err)
		}
	}
	if o.tls {
		if err := devCerts(o); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("dlock: find own binary: %w", err)
	}
	var procs []*exec.Cmd
	exited := make(chan error, o.nodes)
	defer func() { stopNodes(procs, exited) }()
	for i := 1; i <= o.nodes; i++ {
		path, err := writeDevConfig(o, i)
		if err != nil {
			return err
		}
		c := exec.Command(self, "serve", "--config", path)
		c.Dir = o.dir
		if err := c.Start(); err != nil {
			return fmt.Errorf("dlock: start node %d: %w", i, err)
		}
		procs = append(procs, c)
		go func(i int, c *exec.Cmd) { exited <- nodeExit(i, c.Wait()) }(i, c)
	}
	leader, err := waitDevReady(ctx, o, exited)
	if err != nil {
		return err
	}
	printDevBanner(out, o, leader)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping...")
		return nil
	case err := <-exited:
		exited <- err // stopNodes counts it
		return fmt.Errorf("dlock: a node stopped on its own: %w (see its dlock.log under %s)", err, o.dir)
	}
}

func nodeExit(i int, err error) error {
	if err == nil {
		return fmt.Errorf("node %d exited", i)
	}
	return fmt.Errorf("node %d: %w", i, err)
}

// stopNodes asks every running node to stop (SIGTERM) and waits for all.
func stopNodes(procs []*exec.Cmd, exited chan error) {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	kill := time.After(15 * time.Second)
	for range procs {
		select {
		case <-exited:
		case <-kill:
			for _, p := range procs {
				_ = p.Process.Kill()
			}
			<-exited
		}
	}
}

func devAddr(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }

// writeDevConfig writes node i's config and returns its path, relative to
// the dev directory (the nodes run there).
func writeDevConfig(o devOptions, i int) (string, error) {
	nodeDir := filepath.Join(o.dir, fmt.Sprintf("node%d", i))
	if err := os.MkdirAll(nodeDir, 0o750); err != nil {
		return "", fmt.Errorf("dlock: create %s: %w", nodeDir, err)
	}
	var members []config.Member
	for j := 1; j <= o.nodes; j++ {
		members = append(members, config.Member{ID: uint32(j),
			PeerAddress: devAddr(o.host, o.peerPort+j-1), ClientAddress: devAddr(o.host, o.clientPort+j-1)})
	}
	base := config.Default()
	base.Storage.LogPath = fmt.Sprintf("node%d/", i)
	base.Storage.DataDir = fmt.Sprintf("node%d", i)
	if o.tls {
		devTLS(base, i)
	}
	if o.metricsPort > 0 {
		base.Observability = config.ObservabilityConfig{MetricsAddress: devAddr(o.host, o.metricsPort+i-1), PProf: true}
	}
	text, err := base.ForMember(uint32(i), members).Render()
	if err != nil {
		return "", fmt.Errorf("dlock: config for node %d: %w", i, err)
	}
	path := filepath.Join(nodeDir, "config.yaml")
	text = append([]byte(fmt.Sprintf("# Written by dlock dev for node %d.\n", i)), text...)
	if err := os.WriteFile(path, text, 0o640); err != nil {
		return "", fmt.Errorf("dlock: write %s: %w", path, err)
	}
	return filepath.Join(fmt.Sprintf("node%d", i), "config.yaml"), nil
}

// waitDevReady waits until every node reports a ready cluster and returns
// the leader's id.
func waitDevReady(ctx context.Context, o devOptions, exited chan error) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, devReadyTimeout)
	defer cancel()
	for {
		leader, err := devLeader(ctx, o)
		if err == nil {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("dlock: cluster not ready: %w (last: %v)", ctx.Err(), err)
		case e := <-exited:
			exited <- e
			return 0, fmt.Errorf("dlock: %w (see its dlock.log under %s)", e, o.dir)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func devLeader(ctx context.Context, o devOptions) (uint32, error) {
	var leader uint32
	creds, err := devDialOption(o)
	if err != nil {
		return 0, err
	}
	for i := 1; i <= o.nodes; i++ {
		st, err := statusOf(ctx, devAddr(o.host, o.clientPort+i-1), creds)
		if err != nil {
			return 0, err
		}
		if !st.Ready || st.LeaderId == 0 {
			return 0, fmt.Errorf("node %d: no leader yet", i)
		}
		leader = st.LeaderId
	}
	return leader, nil
}

func statusOf(ctx context.Context, addr string, creds grpc.DialOption) (*dlockv1.StatusResponse, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, creds)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := dlockv1.NewClusterClient(conn).Status(ctx, &dlockv1.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return st, nil
}

func printDevBanner(out io.Writer, o devOptions, leader uint32) {
	fmt.Fprintf(out, "dlock dev: %d node(s) ready, leader is node %d\n", o.nodes, leader)
	var eps []string
	for i := 1; i <= o.nodes; i++ {
		ep := devAddr(o.host, o.clientPort+i-1)
		eps = append(eps, ep)
		metrics := ""
		if o.metricsPort > 0 {
			metrics = fmt.Sprintf("  metrics http://%s/metrics", devAddr(o.host, o.metricsPort+i-1))
		}
		fmt.Fprintf(out, "  node %d  client %s  peer %s%s  log %s\n", i, ep, devAddr(o.host, o.peerPort+i-1), metrics,
			filepath.Join(o.dir, fmt.Sprintf("node%d", i), "dlock.log"))
	}
	fmt.Fprintf(out, "export DLOCK_ENDPOINTS=%s\n", strings.Join(eps, ","))
	printDevTLS(out, o)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}
