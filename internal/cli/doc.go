// Package cli holds the client-side commands of the dlock binary: lock, kv and cluster, built on
// package client. cmd/dlock adds them to its root command with AddClientCommands and turns the error
// Execute returns into the process's exit status with ExitCode; docs/cli.md is the user reference.
//
// Each command writes its result to the command's OutOrStdout, as text for people (the default) or
// JSON for programs (-o json), and returns its error to the caller: nothing here prints errors or exits.
package cli
