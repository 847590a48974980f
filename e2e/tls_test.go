package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// A cluster with mutual TLS on both planes serves locks to a client with a
// certificate its CA signed, through the Go client and the CLI, and refuses
// every client that cannot prove that: no certificate, a certificate from
// another CA, or no TLS at all.
func TestTLSClusterServesOnlyCertifiedClients(t *testing.T) {
	c := testcluster.StartOpts(t, 3, testcluster.Options{TLS: true})
	c.WaitLeader(30 * time.Second)
	eps := c.Endpoints()

	// A certified client locks, writes and reads.
	cl, err := client.New(eps, client.WithTLS(c.ClientTLS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	l, err := cl.Acquire(ctx, "tls-job", client.WithTTL(10*time.Second))
	if err != nil {
		t.Fatalf("Acquire over mutual TLS: %v, want a lock", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release over mutual TLS: %v", err)
	}
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put over mutual TLS: %v", err)
	}

	foreign := testcluster.NewPKI(t, filepath.Join(t.TempDir(), "foreign"))
	noCert, err := client.LoadTLSConfig(c.PKI.NodeFiles(1).CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	foreignCert := foreign.ClientTLS("intruder")
	foreignCert.RootCAs = c.ClientTLS.RootCAs // it trusts the cluster; the cluster does not trust it

	for _, tt := range []struct {
		name string
		cfg  *tls.Config // nil: plaintext
		want string      // the TLS error the node answers with
	}{
		{"no client certificate", noCert, "remote error: tls: certificate required"},
		{"certificate from another CA", foreignCert, "remote error: tls: unknown certificate authority"},
		{"plaintext client", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The node refuses the connection itself...
			if tt.cfg != nil {
				if err := refusal(t, eps[0], tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("first read after the handshake = %v, want %q", err, tt.want)
				}
			}
			// ...so the client never gets a call through.
			var opts []client.Option
			if tt.cfg != nil {
				opts = append(opts, client.WithTLS(tt.cfg))
			}
			bad, err := client.New(eps, append(opts, client.WithRetryLimit(len(eps)), client.WithDialTimeout(2*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			if _, err = bad.Put(ctx, "intruder", []byte("x")); !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("Put = %v, want ErrUnavailable", err)
			}
		})
	}
	// A client that does not trust the cluster's CA refuses the node itself.
	wrongRoots := c.ClientTLS.Clone()
	wrongRoots.RootCAs = foreign.ClientTLS("x").RootCAs
	if err := refusal(t, eps[0], wrongRoots); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("handshake trusting another CA = %v, want \"certificate signed by unknown authority\"", err)
	}
	// Nothing the refused clients sent was applied.
	if _, err := cl.Get(ctx, "intruder"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get(intruder) = %v, want ErrNotFound", err)
	}

	// The CLI, by flags and by environment.
	files := c.PKI.IssueClient("cli")
	epList := strings.Join(eps, ",")
	out, errOut, code := dlockCmd(t, "", "lock", "acquire", "cli-job", "--ttl", "10s", "--endpoints", epList,
		"--cacert", files.CAFile, "--cert", files.CertFile, "--key", files.KeyFile)
	if code != 0 {
		t.Fatalf("dlock lock acquire with --cacert/--cert/--key: exit %d, want 0\n%s%s", code, out, errOut)
	}
	t.Setenv("DLOCK_CACERT", files.CAFile)
	t.Setenv("DLOCK_CERT", files.CertFile)
	t.Setenv("DLOCK_KEY", files.KeyFile)
	if out, errOut, code := dlockCmd(t, "", "lock", "query", "cli-job", "--endpoints", epList); code != 0 || !strings.Contains(out, "cli-job") {
		t.Fatalf("dlock lock query with $DLOCK_CACERT/CERT/KEY: exit %d, want 0 and the lock\n%s%s", code, out, errOut)
	}
	t.Setenv("DLOCK_CERT", "")
	t.Setenv("DLOCK_KEY", "")
	if out, errOut, code := dlockCmd(t, "", "cluster", "status", "--endpoints", epList, "--timeout", "2s"); code != 5 {
		t.Fatalf("dlock cluster status without a client certificate: exit %d, want 5 (unavailable)\n%s%s", code, out, errOut)
	}
}

// A node reads its certificate again when the files change: after the
// files are replaced by a new certificate of the same CA, new connections
// on both planes get the new one, without a restart, and the node keeps
// serving. A replacement that does not parse keeps the previous certificate
// and is logged.
func TestTLSCertificateReloadWithoutRestart(t *testing.T) {
	c := testcluster.StartOpts(t, 1, testcluster.Options{TLS: true})
	c.WaitLeader(30 * time.Second)
	nd := c.Nodes[0]
	peerTLS := c.PKI.IssueNode(99, "127.0.0.1") // a peer's certificate, to dial the peer port as a node
	before := presented(t, nd.ClientAddr, c.ClientTLS)
	if got := presented(t, nd.PeerAddr, loadTLS(t, peerTLS)); got.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Fatalf("peer port presents serial %s, client port %s; want the node's one certificate", got.SerialNumber, before.SerialNumber)
	}

	host, _, _ := net.SplitHostPort(nd.ClientAddr)
	c.PKI.Validity = 2 * time.Hour
	c.PKI.IssueNode(1, host) // same CA, new key, new serial, new expiry

	for _, plane := range []struct {
		name, addr string
		cfg        *tls.Config
	}{
		{"client port", nd.ClientAddr, c.ClientTLS},
		{"peer port", nd.PeerAddr, loadTLS(t, peerTLS)},
	} {
		after := presented(t, plane.addr, plane.cfg)
		if after.SerialNumber.Cmp(before.SerialNumber) == 0 || after.NotAfter.Equal(before.NotAfter) {
			t.Fatalf("%s after replacing the files presents serial %s (not after %s), want a new certificate (old serial %s, not after %s)",
				plane.name, after.SerialNumber, after.NotAfter, before.SerialNumber, before.NotAfter)
		}
	}
	reloaded := presented(t, nd.ClientAddr, c.ClientTLS)
	cl, err := client.New(c.Endpoints(), client.WithTLS(c.ClientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "after-reload", []byte("v")); err != nil {
		t.Fatalf("Put after the reload: %v", err)
	}

	// A broken replacement: the node keeps the certificate it has.
	files := c.PKI.NodeFiles(1)
	if err := os.WriteFile(files.CertFile+".tmp", []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(files.CertFile+".tmp", files.CertFile); err != nil {
		t.Fatal(err)
	}
	if got := presented(t, nd.ClientAddr, c.ClientTLS); got.SerialNumber.Cmp(reloaded.SerialNumber) != 0 {
		t.Fatalf("after a broken certificate file the node presents serial %s, want the previous %s", got.SerialNumber, reloaded.SerialNumber)
	}
	if log := c.Log(1); !strings.Contains(log, "keeping the previous certificate") || !strings.Contains(log, "tls.client.cert_file") {
		t.Fatalf("node log does not report the broken file by key:\n%s", log)
	}
}

func loadTLS(t *testing.T, f config.TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := client.LoadTLSConfig(f.CAFile, f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// presented opens a new TLS connection to addr and returns the certificate
// the node presented.
func presented(t *testing.T, addr string, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	cfg = cfg.Clone()
	cfg.ServerName = host
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// refusal dials addr with cfg and returns the error of the handshake or, in
// TLS 1.3 where the server checks the client's certificate after the client
// finished, of the first read: the server's alert.
func refusal(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	cfg = cfg.Clone()
	cfg.ServerName = host
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		return err
	}
	var b [1]byte
	_, err = conn.Read(b[:])
	return err
}
