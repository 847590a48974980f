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
	root.AddCommand(serveCommand(), devCommand())
	cli.AddClientCommands(root)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(cli.ExitCode(err))
	}
}
