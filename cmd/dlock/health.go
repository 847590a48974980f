package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/cli"
)

// healthCommand probes one node, for container health checks: the image has
// no shell or curl, so Compose runs `/dlock health`.
func healthCommand() *cobra.Command {
	var endpoint, url string
	var timeout time.Duration
	var caCert, cert, key string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if a node is ready to serve, 1 if not",
		Long: `Probe one node and exit 0 if it is ready to serve clients, 1 if it is not or
does not answer, printing one line either way. By default it asks the
standard gRPC health service on the node's client port (--endpoint), which
every node serves; with --http it asks an HTTP endpoint instead, such as
the /readyz of observability.metrics_address.

  dlock health --endpoint 127.0.0.1:24005
  dlock health --http http://127.0.0.1:9405/readyz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return cli.UsageError(fmt.Errorf("dlock: --timeout %s: want a positive duration", timeout))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var msg string
			var err error
			if url != "" {
				msg, err = probeHTTP(ctx, url)
			} else {
				creds := insecure.NewCredentials()
				if caCert != "" || cert != "" || key != "" {
					cfg, err := client.LoadTLSConfig(caCert, cert, key)
					if err != nil {
						return cli.UsageError(fmt.Errorf("--cacert/--cert/--key: %w", err))
					}
					creds = credentials.NewTLS(cfg)
				}
				msg, err = probeGRPC(ctx, endpoint, creds)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "endpoint", "127.0.0.1:24005", "the node's client address (gRPC health service)")
	f.StringVar(&url, "http", "", "probe this HTTP URL instead (e.g. http://127.0.0.1:9405/readyz); ready means status 200")
	f.DurationVar(&timeout, "timeout", 2*time.Second, "give up after this long")
	// A node whose client port runs mutual TLS needs a client certificate
	// even for the health service: the handshake comes before any call.
	f.StringVar(&caCert, "cacert", os.Getenv(cli.EnvCACert), "with mutual TLS on the client port: PEM file of the CA that signed the nodes' certificates; default from $"+cli.EnvCACert)
	f.StringVar(&cert, "cert", os.Getenv(cli.EnvCert), "PEM file of a client certificate; default from $"+cli.EnvCert)
	f.StringVar(&key, "key", os.Getenv(cli.EnvKey), "PEM file of --cert's private key; default from $"+cli.EnvKey)
	return cmd
}

// errNotReady: the node answered that it is not ready.
var errNotReady = errors.New("dlock: not ready")

func probeGRPC(ctx context.Context, endpoint string, creds credentials.TransportCredentials) (string, error) {
	conn, err := grpc.NewClient("passthrough:///"+endpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", fmt.Errorf("dlock: %s: %w", endpoint, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return "", fmt.Errorf("dlock: %s: health check: %w", endpoint, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", fmt.Errorf("%w: %s: %s", errNotReady, endpoint, resp.GetStatus())
	}
	return fmt.Sprintf("%s: %s", endpoint, resp.GetStatus()), nil
}

func probeHTTP(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", cli.UsageError(fmt.Errorf("dlock: --http %q: %w", url, err))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dlock: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	line := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: %s: %s %s", errNotReady, url, resp.Status, line)
	}
	return fmt.Sprintf("%s: %s", url, line), nil
}
