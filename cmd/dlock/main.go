// Command dlock is the dlock server and its command-line client in one
// static binary: `dlock dev` runs a local cluster, `dlock serve` runs one
// node, and `dlock lock|kv|cluster ...` talk to a cluster.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/internal/cli"
)

func main() {
	root := &cobra.Command{
		Use:           "dlock",
		Short:         "dlock: a Raft-replicated distributed lock service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), devCommand(), configCommand(), certsCommand(), healthCommand())
	cli.AddClientCommands(root)
	// Flag mistakes anywhere exit 2, like every other usage error.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.UsageError(err) })
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return cli.UsageError(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cli.ExitCode(err))
	}
}
