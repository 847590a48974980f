package main

import (
	"fmt"
	"io"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/pki"
)

// devTLSDir is where dlock dev --tls keeps its certificates, inside --dir.
const devTLSDir = "tls"

// devClientName is the client certificate dlock dev --tls issues for its
// own readiness checks and for the user's CLI.
const devClientName = "dev"

func devPlan(o devOptions) pki.Plan {
	plan := pki.Plan{Clients: []string{devClientName}}
	for i := 1; i <= o.nodes; i++ {
		plan.Nodes = append(plan.Nodes, pki.Node{ID: uint32(i), Hosts: []string{o.host}})
	}
	return plan
}

// devCerts writes the dev cluster's CA and certificates under --dir, unless
// an earlier run left them all there.
func devCerts(o devOptions) error {
	dir := filepath.Join(o.dir, devTLSDir)
	plan := devPlan(o)
	if allExist(dir, plan) {
		return nil
	}
	files, err := plan.Files()
	if err != nil {
		return fmt.Errorf("dlock: --tls: %w", err)
	}
	if err := config.WriteFiles(dir, files, false); err != nil {
		return fmt.Errorf("dlock: --tls: %w (or start with --fresh)", err)
	}
	return nil
}

// devTLS points node i's config at its certificate, on both planes. Paths
// are relative to --dir, where the nodes run.
func devTLS(c *config.Config, i int) {
	cert, key := pki.NodeFiles(uint32(i))
	f := config.TLSFiles{CAFile: filepath.Join(devTLSDir, pki.CAFile), CertFile: filepath.Join(devTLSDir, cert),
		KeyFile: filepath.Join(devTLSDir, key)}
	c.TLS = config.TLSConfig{Peer: f, Client: f}
}

// devClientFiles are the dev client's CA, certificate and key.
func devClientFiles(o devOptions) (ca, cert, key string) {
	dir, _ := filepath.Abs(filepath.Join(o.dir, devTLSDir))
	c, k := pki.ClientFiles(devClientName)
	return filepath.Join(dir, pki.CAFile), filepath.Join(dir, c), filepath.Join(dir, k)
}

// devDialOption is how dev dials its nodes' client ports.
func devDialOption(o devOptions) (grpc.DialOption, error) {
	if !o.tls {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	cfg, err := client.LoadTLSConfig(devClientFiles(o))
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

func printDevTLS(out io.Writer, o devOptions) {
	if !o.tls {
		return
	}
	ca, cert, key := devClientFiles(o)
	fmt.Fprintf(out, "export %s=%s %s=%s %s=%s\n", cli.EnvCACert, ca, cli.EnvCert, cert, cli.EnvKey, key)
}
