package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/mtls"
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

// A node whose peer certificate another CA signed cannot join the quorum:
// the two nodes of the cluster's CA elect a leader and serve, refusing its
// connections; once one of them stops, the remaining node and the foreign
// one are not a majority, and writes fail.
func TestTLSPeerOfAnotherCAIsNotPartOfTheQuorum(t *testing.T) {
	logs := &syncBuffer{}
	foreign := testcluster.NewPKI(t, filepath.Join(t.TempDir(), "foreign"))
	c := testcluster.StartInProcessOpts(t, 3, testcluster.InProcessOptions{
		TLS:    true,
		NoWait: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Edit: func(cfg *config.Config) {
			if cfg.ID.SelfID == 3 {
				host, _, _ := net.SplitHostPort(cfg.Network.SelfAddress)
				// Node 3 trusts both CAs; only its own certificate is foreign.
				cfg.TLS.Peer = foreign.IssueNode(3, host)
				cfg.TLS.Peer.CAFile = bundle(t, cfg.TLS.Peer.CAFile, cfg.TLS.Client.CAFile)
			}
		},
	})
	good := c.Endpoints()[:2]
	cl, err := client.New(good, client.WithTLS(c.PKI.ClientTLS("app")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put through nodes 1 and 2: %v, want it committed by their majority", err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	waitFor(t, 30*time.Second, "nodes 1 and 2 to log refusing node 3's certificate", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "refused a peer connection") && strings.Contains(l, "certificate signed by unknown authority") &&
				(strings.Contains(l, "node=1") || strings.Contains(l, "node=2")) {
				return true
			}
		}
		return false
	})
	if st, err := c.Node(2).Status(); err != nil || st.Ready || st.LeaderID != 0 {
		t.Fatalf("node 3 status = %+v, %v; want no leader known and nothing served", st, err)
	}

	leader := c.Leader()
	if leader < 0 || leader > 1 {
		t.Fatalf("leader index %d, want node 1 or 2", leader)
	}
	c.Crash(1 - leader)
	short, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	_, err = cl.Put(short, "k2", []byte("v"))
	if !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with node %d and the foreign node 3 left = %v, want unavailable: they are no majority", leader+1, err)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: it did not happen", d, what)
		}
		<-tick.C
	}
}

// bundle writes a file holding the PEM files' certificates, one after the other.
func bundle(t *testing.T, files ...string) string {
	t.Helper()
	var b []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	p := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dlock certs init writes a CA, node and client certificates that a
// cluster's nodes load, prints the config to paste, refuses to overwrite
// without --force, and writes nothing on bad input.
func TestCertsInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	args := []string{"certs", "init", "--dir", dir, "--node", "1=10.0.0.1,node1.example", "--node", "2=10.0.0.2", "--client", "alice"}
	out, errOut, code := dlockCmd(t, "", args...)
	if code != 0 {
		t.Fatalf("certs init: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"tls:\n  peer:\n", filepath.Join(dir, "node-2-key.pem"), "DLOCK_CERT=" + filepath.Join(dir, "client-alice.pem")} {
		if !strings.Contains(out, want) {
			t.Fatalf("certs init printed\n%s\nwant it to contain %q", out, want)
		}
	}
	// The printed node files load as a node's tls.peer and tls.client do.
	cfg, err := config.Parse([]byte(tlsSnippet(t, out, 1)))
	if err != nil {
		t.Fatalf("the printed section for node 1 does not parse: %v", err)
	}
	if _, _, err := mtls.FromConfig(cfg.TLS, nil); err != nil {
		t.Fatalf("node 1's files do not load: %v", err)
	}
	for _, name := range []string{"ca-key.pem", "node-1-key.pem", "node-2-key.pem", "client-alice-key.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", name, fi, err)
		}
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))

	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"again without --force", args, 1, "pass --force"},
		{"a bad node", []string{"certs", "init", "--dir", dir, "--node", "0=x", "--force"}, 2, `id "0" is not a number`},
		{"a bad client name", []string{"certs", "init", "--dir", dir, "--client", "../x", "--force"}, 2, "not allowed"},
		{"no --dir", []string{"certs", "init", "--client", "a"}, 2, "--dir is required"},
		{"--if-absent with every file there", append(slices.Clone(args), "--if-absent"), 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := dlockCmd(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q\n%s", code, errOut, tt.wantCode, tt.wantErr, out)
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(now, ca) {
				t.Fatal("ca.pem changed")
			}
		})
	}
	if _, errOut, code := dlockCmd(t, "", append(args, "--force")...); code != 0 {
		t.Fatalf("certs init --force: exit %d: %s", code, errOut)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); bytes.Equal(now, ca) {
		t.Fatal("certs init --force left ca.pem as it was, want a new CA")
	}
}

// tlsSnippet cuts node id's tls section out of certs init's output.
func tlsSnippet(t *testing.T, out string, id int) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "# Node "+strconv.Itoa(id)+":")
	if !ok {
		t.Fatalf("no section for node %d in\n%s", id, out)
	}
	_, rest, _ = strings.Cut(rest, "\n")
	section, _, _ := strings.Cut(rest, "\n\n")
	return section
}
