package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/client"
)

const (
	// EnvEndpoints names the environment variable that sets the default of --endpoints.
	EnvEndpoints = "DLOCK_ENDPOINTS"
	// DefaultEndpoints is the default of --endpoints without EnvEndpoints: the local 3-node cluster of
	// the seed's docker-compose setup.
	DefaultEndpoints = "127.0.0.1:24005,127.0.0.1:24006,127.0.0.1:24007"
	// stdinValueMax bounds a value read from standard input by kv put, in bytes. The cluster enforces
	// its own (smaller, configurable) limit.
	stdinValueMax = 16 << 20
)

// AddClientCommands adds the lock, kv and cluster command groups to root. Each group has the persistent
// flags --endpoints, -o/--output and --timeout. Flag and argument errors of these commands are marked
// as usage errors (see ExitCode).
func AddClientCommands(root *cobra.Command) {
	root.AddCommand(lockCommand(), kvCommand(), clusterCommand(), snapshotCommand(), aclCommand(), benchCommand())
}

// common are the persistent flags of a command group.
type common struct {
	endpoints []string
	output    string
	timeout   time.Duration
	tls       tlsFlags
	auth      authFlags
}

func defaultEndpoints() []string {
	s := os.Getenv(EnvEndpoints)
	if strings.TrimSpace(s) == "" {
		s = DefaultEndpoints
	}
	var eps []string
	for _, ep := range strings.Split(s, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// group returns a command group with the common flags bound to f.
func group(use, short string, f *common) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageError(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError(err) })
	pf := cmd.PersistentFlags()
	pf.StringSliceVar(&f.endpoints, "endpoints", defaultEndpoints(),
		"comma-separated client addresses (host:port) of cluster nodes; default from $"+EnvEndpoints)
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	pf.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the cluster's answer")
	addTLSFlags(pf, &f.tls)
	f.auth.bind(pf)
	return cmd
}

// args returns a validator accepting min to max positional arguments, named in usage errors.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || len(a) > max {
			return UsageError(fmt.Errorf("%s: got %d arguments, want %s", cmd.CommandPath(), len(a), argRange(min, max)))
		}
		return nil
	}
}

func argRange(min, max int) string {
	if min == max {
		return fmt.Sprint(min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

// run checks the common flags, connects, and runs fn under a context bounded by --timeout plus extra.
// From here on, errors are the cluster's answers, not usage mistakes, so cobra's usage text is off.
func (f *common) run(cmd *cobra.Command, extra time.Duration,
	fn func(ctx context.Context, c *client.Client, out printer) error) error {
	if f.output != "text" && f.output != "json" {
		return UsageError(fmt.Errorf("--output %q: want text or json", f.output))
	}
	if f.timeout <= 0 {
		return UsageError(fmt.Errorf("--timeout %s: want above 0", f.timeout))
	}
	if len(f.endpoints) == 0 {
		return UsageError(fmt.Errorf("--endpoints is empty"))
	}
	tlsOpts, err := f.tls.options()
	if err != nil {
		return err
	}
	cmd.SilenceUsage = true
	c, err := client.New(f.endpoints, append(append(tlsOpts, client.WithCallTimeout(f.timeout)), f.auth.options()...)...)
	if err != nil {
		return UsageError(f.auth.explain(err))
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout+extra)
	defer cancel()
	return fn(ctx, c, printer{w: cmd.OutOrStdout(), json: f.output == "json"})
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "cli-" + host
}

func lockCommand() *cobra.Command {
	f := &common{}
	cmd := group("lock", "Acquire, release, renew and inspect locks", f)
	cmd.AddCommand(lockAcquire(f), lockRelease(f), lockRenew(f), lockQuery(f), lockList(f))
	return cmd
}

func lockAcquire(f *common) *cobra.Command {
	var ttl, wait time.Duration
	var owner string
	cmd := &cobra.Command{
		Use:   "acquire NAME",
		Short: "Acquire a lock, waiting in its queue up to --wait; the lease is not renewed",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if ttl < time.Millisecond || wait < 0 {
				return UsageError(fmt.Errorf("--ttl %s, --wait %s: want a TTL of at least 1ms and a wait of 0 or more", ttl, wait))
			}
			return f.run(cmd, wait, func(ctx context.Context, c *client.Client, out printer) error {
				l, err := c.Acquire(ctx, a[0], client.WithOwner(owner), client.WithTTL(ttl), client.WithWait(wait),
					client.WithoutAutoRenew())
				if err != nil {
					return err
				}
				return out.hold(holdJSON{Name: l.Name(), Owner: l.Owner(), Token: l.Token(), Nonce: l.Nonce(),
					TTLMs: l.TTL().Milliseconds()})
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 30*time.Second, "lease: the cluster releases the lock this long after the grant")
	cmd.Flags().DurationVar(&wait, "wait", 2500*time.Millisecond, "how long to wait in the lock's queue (0: fail at once if held)")
	cmd.Flags().StringVar(&owner, "owner", defaultOwner(), "owner id to hold the lock as")
	return cmd
}

func lockRelease(f *common) *cobra.Command {
	var owner string
	var token uint64
	cmd := &cobra.Command{
		Use:   "release NAME",
		Short: "Release a lock held by --owner, handing it to the next waiter",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				if err := c.ReleaseOwned(ctx, a[0], owner, token); err != nil {
					return err
				}
				return out.released(a[0], owner)
			})
		},
	}
	cmd.Flags().StringVar(&owner, "owner", defaultOwner(), "owner id the lock is held by")
	cmd.Flags().Uint64Var(&token, "token", 0, "fencing token the hold must have (0: any)")
	return cmd
}

func lockRenew(f *common) *cobra.Command {
	var owner string
	var token uint64
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "renew NAME",
		Short: "Refresh the lease of a lock held by --owner",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if ttl < 0 {
				return UsageError(fmt.Errorf("--ttl %s: want 0 (keep) or more", ttl))
			}
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				lease, err := c.RenewOwned(ctx, a[0], owner, token, ttl)
				if err != nil {
					return err
				}
				return out.renewed(a[0], owner, lease)
			})
		},
	}
	cmd.Flags().StringVar(&owner, "owner", defaultOwner(), "owner id the lock is held by")
	cmd.Flags().Uint64Var(&token, "token", 0, "fencing token the hold must have (0: any)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "new lease (0: keep the lease the hold was granted with)")
	return cmd
}

func lockQuery(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "query NAME",
		Short: "Show a lock's owner, token, nonce, lease and waiters",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				info, err := c.Query(ctx, a[0], readOpts(stale)...)
				if err != nil {
					return err
				}
				return out.lock(info)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica (faster, may be behind)")
	return cmd
}

func lockList(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List locks whose names start with PREFIX",
		Args:  args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				locks, err := c.Locks(ctx, first(a), readOpts(stale)...)
				if err != nil {
					return err
				}
				return out.locks(locks)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica (faster, may be behind)")
	return cmd
}

func kvCommand() *cobra.Command {
	f := &common{}
	cmd := group("kv", "Read and write the cluster's key-value store", f)
	cmd.AddCommand(kvPut(f), kvGet(f), kvDel(f), kvList(f))
	return cmd
}

func kvPut(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: "Store VALUE (or standard input) under KEY",
		Args:  args(1, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			value, err := valueArg(cmd.InOrStdin(), a)
			if err != nil {
				return err
			}
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				created, err := c.Put(ctx, a[0], value)
				if err != nil {
					return err
				}
				return out.put(a[0], created)
			})
		},
	}
}

// valueArg returns the value argument, or standard input when there is none.
func valueArg(stdin io.Reader, a []string) ([]byte, error) {
	if len(a) == 2 {
		return []byte(a[1]), nil
	}
	v, err := io.ReadAll(io.LimitReader(stdin, stdinValueMax+1))
	if err != nil {
		return nil, fmt.Errorf("dlock: read value from standard input: %w", err)
	}
	if len(v) > stdinValueMax {
		return nil, UsageError(fmt.Errorf("value on standard input is over %d bytes", stdinValueMax))
	}
	return v, nil
}

func kvGet(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value stored under KEY",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				v, err := c.Get(ctx, a[0], readOpts(stale)...)
				if err != nil {
					return err
				}
				return out.value(a[0], v)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica (faster, may be behind)")
	return cmd
}

func kvDel(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				if err := c.Delete(ctx, a[0]); err != nil {
					return err
				}
				return out.deleted(a[0])
			})
		},
	}
}

func kvList(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List keys that start with PREFIX",
		Args:  args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				keys, err := c.Keys(ctx, first(a), readOpts(stale)...)
				if err != nil {
					return err
				}
				return out.keys(keys)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica (faster, may be behind)")
	return cmd
}

func clusterCommand() *cobra.Command {
	f := &common{}
	cmd := group("cluster", "Inspect and maintain the cluster", f)
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the answering node's Raft state and the cluster's members",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				s, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return out.status(s)
			})
		},
	})
	var to uint32
	transfer := &cobra.Command{
		Use:   "transfer-leader",
		Short: "Hand leadership to another voter (--to ID, or the most up-to-date follower)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				leader, err := c.TransferLeader(ctx, to)
				if err != nil {
					return err
				}
				return out.transferred(leader)
			})
		},
	}
	transfer.Flags().Uint32Var(&to, "to", 0, "id of the voter to hand leadership to (0: the most up-to-date follower)")
	cmd.AddCommand(transfer)
	addMemberCommands(cmd, f)
	return cmd
}

func readOpts(stale bool) []client.ReadOption {
	if stale {
		return []client.ReadOption{client.Stale()}
	}
	return nil
}

func first(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}
