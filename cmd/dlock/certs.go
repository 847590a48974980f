package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/pki"
)

// certsCommand is the `dlock certs` group.
func certsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create certificates for mutual TLS",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.UsageError(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(certsInitCommand())
	return cmd
}

type certsOptions struct {
	dir      string
	nodes    []string
	clients  []string
	validity time.Duration
	force    bool
	ifAbsent bool
}

func certsInitCommand() *cobra.Command {
	o := certsOptions{}
	cmd := &cobra.Command{
		Use:   "init --dir DIR --node ID=HOST[,HOST...] ... [--client NAME ...]",
		Short: "Write a development CA, node certificates and client certificates",
		Long: `Write a new development certificate authority (ECDSA P-256) and the
certificates a cluster with mutual TLS needs, into DIR:

  ca.pem, ca-key.pem                  the CA (keep ca-key.pem private)
  node-ID.pem, node-ID-key.pem        per --node: server and client use, with
                                      its HOSTs (DNS names or IPs) plus
                                      127.0.0.1, ::1 and localhost as names
  client-NAME.pem, client-NAME-key.pem  per --client: client use, Subject
                                      CommonName NAME (the client's principal)

Keys are written with mode 0600. Give each node the hosts its peers and
clients dial it by (the hosts of its peer_address and peer_cli_address).
Existing files are never overwritten unless --force is given; with
--if-absent, a DIR that already holds every file is left as it is.
It prints the config section to paste into each node's file, and the
environment a client needs.

  dlock certs init --dir tls --node 1=10.0.0.1 --node 2=10.0.0.2 \
    --node 3=10.0.0.3 --client admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCertsInit(o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "output directory (created if missing)")
	f.StringArrayVar(&o.nodes, "node", nil, "a node, ID=HOST[,HOST...]; repeat per node")
	f.StringArrayVar(&o.clients, "client", nil, "a client certificate's name (its CommonName); repeat per client")
	f.DurationVar(&o.validity, "validity", pki.DefaultValidity, "how long node and client certificates are valid")
	f.BoolVar(&o.force, "force", false, "overwrite existing files")
	f.BoolVar(&o.ifAbsent, "if-absent", false, "do nothing, successfully, if DIR already holds every file")
	return cmd
}

func runCertsInit(o certsOptions, out io.Writer) error {
	if o.dir == "" {
		return cli.UsageError(errors.New("dlock: --dir is required"))
	}
	if o.force && o.ifAbsent {
		return cli.UsageError(errors.New("dlock: --force and --if-absent contradict each other"))
	}
	plan := pki.Plan{Clients: o.clients, Validity: o.validity}
	var errs []error
	for _, spec := range o.nodes {
		n, err := pki.ParseNode(spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan.Nodes = append(plan.Nodes, n)
	}
	if err := errors.Join(append(errs, plan.Check())...); err != nil {
		return cli.UsageError(fmt.Errorf("dlock: certs init: %w", err))
	}
	if o.ifAbsent && allExist(o.dir, plan) {
		fmt.Fprintf(out, "dlock certs init: %s already holds every file; nothing written\n", o.dir)
		return nil
	}
	files, err := plan.Files()
	if err != nil {
		return fmt.Errorf("dlock: certs init: %w", err)
	}
	if err := config.WriteFiles(o.dir, files, o.force); err != nil {
		return fmt.Errorf("dlock: certs init: %w", err)
	}
	printCertsSnippet(out, o.dir, plan)
	return nil
}

// allExist reports whether every file plan writes is in dir.
func allExist(dir string, plan pki.Plan) bool {
	names := []string{pki.CAFile, pki.CAKeyFile}
	for _, n := range plan.Nodes {
		c, k := pki.NodeFiles(n.ID)
		names = append(names, c, k)
	}
	for _, name := range plan.Clients {
		c, k := pki.ClientFiles(name)
		names = append(names, c, k)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

func printCertsSnippet(out io.Writer, dir string, plan pki.Plan) {
	fmt.Fprintf(out, "Wrote a development CA and %d node and %d client certificate(s) to %s.\n",
		len(plan.Nodes), len(plan.Clients), dir)
	for _, n := range plan.Nodes {
		cert, key := pki.NodeFiles(n.ID)
		fmt.Fprintf(out, "\n# Node %d: add to its config file (paths as seen from the node).\n", n.ID)
		fmt.Fprint(out, tlsSection(filepath.Join(dir, pki.CAFile), filepath.Join(dir, cert), filepath.Join(dir, key)))
	}
	for _, name := range plan.Clients {
		cert, key := pki.ClientFiles(name)
		fmt.Fprintf(out, "\n# Client %q:\n", name)
		fmt.Fprintf(out, "export %s=%s %s=%s %s=%s\n", cli.EnvCACert, filepath.Join(dir, pki.CAFile),
			cli.EnvCert, filepath.Join(dir, cert), cli.EnvKey, filepath.Join(dir, key))
	}
}

// tlsSection is a config file's tls section with both planes on one
// certificate.
func tlsSection(ca, cert, key string) string {
	plane := fmt.Sprintf("    ca_file: %q\n    cert_file: %q\n    key_file: %q\n", ca, cert, key)
	return "tls:\n  peer:\n" + plane + "  client:\n" + plane
}
