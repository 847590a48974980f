package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/loadgen"
)

// benchCommand is `dlock bench`: the load generator, against any cluster the common flags reach.
func benchCommand() *cobra.Command {
	f := &common{}
	cfg := loadgen.Config{}
	var workload, cpuProfile string
	cmd := group("bench", "Load a cluster with lock or KV operations and report ops/s and latencies", f)
	cmd.Long = `Load a cluster and report what a user of locks would see.

Workloads (--workload):
  uncontended  each client acquires and releases a lock of its own: acquire+release cycles/s
  contended    every client acquires and releases one lock: FIFO handoffs/s
  mixed        each client cycles its own lock, then writes and reads a key of its own
  query        linearizable reads of a lock's holder
  fill         each client acquires new locks and keeps them: fills the cluster with held locks
               (they stay held until --ttl runs out, after the run too)

Each client is its own connection to all --endpoints. The run stops at --duration or after --ops
headline operations, whichever comes first, then waits for the operations in flight. A live progress
line goes to standard error; the result (ops/s and p50/p90/p99/p99.9/max per operation, every error
counted) goes to standard output as a table, or as JSON with -o json.`
	cmd.Example = `  dlock bench --workload uncontended --clients 64 --duration 30s
  dlock bench --workload contended --clients 16 --ops 10000 -o json
  dlock bench --workload fill --clients 64 --ops 1000000 --duration 0 --ttl 1h`
	cmd.Args = args(0, 0)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Workload = loadgen.Workload(workload)
		if err := checkBench(f, cfg); err != nil {
			return err
		}
		tlsOpts, err := f.tls.options()
		if err != nil {
			return err
		}
		opts := append(append(tlsOpts, client.WithCallTimeout(f.timeout)), f.auth.options()...)
		if f.output == "text" {
			cfg.Progress = cmd.ErrOrStderr()
		}
		cmd.SilenceUsage = true
		if cpuProfile != "" {
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		res, err := loadgen.Run(cmd.Context(), loadgen.NewDlock(f.endpoints, opts...), cfg)
		if err != nil {
			return err
		}
		if f.output == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		return res.WriteTable(cmd.OutOrStdout())
	}
	fl := cmd.Flags()
	fl.StringVar(&workload, "workload", string(loadgen.Uncontended), "uncontended, contended, mixed, query or fill")
	fl.IntVar(&cfg.Clients, "clients", 16, "concurrent clients, each with its own connection")
	fl.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run (0: until --ops are done)")
	fl.IntVar(&cfg.Ops, "ops", 0, "stop after this many cycles, handoffs or operations (0: at --duration)")
	fl.DurationVar(&cfg.TTL, "ttl", 10*time.Second, "lease of each hold; also each operation's timeout")
	fl.DurationVar(&cfg.Hold, "hold", 0, "how long each client keeps a lock before releasing it")
	fl.IntVar(&cfg.PayloadSize, "payload", 128, "bytes of each value the mixed workload writes")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this client process to the file "+
		"(for the servers' side, see the nodes' /debug/pprof/)")
	return cmd
}

// startCPUProfile profiles this process into path until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// checkBench turns a bad flag into a usage error that names the flag.
func checkBench(f *common, cfg loadgen.Config) error {
	if f.output != "text" && f.output != "json" {
		return UsageError(fmt.Errorf("--output %q: want text or json", f.output))
	}
	if len(f.endpoints) == 0 {
		return UsageError(fmt.Errorf("--endpoints is empty"))
	}
	if f.timeout <= 0 {
		return UsageError(fmt.Errorf("--timeout %s: want above 0", f.timeout))
	}
	if err := cfg.Validate(); err != nil {
		return UsageError(fmt.Errorf("bench flags: %w", err))
	}
	return nil
}
