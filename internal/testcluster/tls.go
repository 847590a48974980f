package testcluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/mtls"
	"github.com/dlock-raft/dlock/internal/node"
	"github.com/dlock-raft/dlock/internal/pki"
)

// ClientName is the CommonName of the client certificate a TLS test cluster
// issues for the test itself.
const ClientName = "testcluster"

// PKI is a test cluster's certificate authority and the files it issued, in
// one directory: ca.pem, node-ID.pem and node-ID-key.pem per node, and
// client-NAME.pem and client-NAME-key.pem per client, as `dlock certs init`
// names them.
type PKI struct {
	Dir string
	CA  *pki.CA
	// Validity of the certificates issued from now on; default 1h.
	Validity time.Duration
	t        testing.TB
}

// NewPKI creates a CA in dir.
func NewPKI(t testing.TB, dir string) *PKI {
	t.Helper()
	ca, err := pki.NewCA("dlock test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	p := &PKI{Dir: dir, CA: ca, Validity: time.Hour, t: t}
	p.write(pki.CAFile, ca.CertPEM(), 0o644)
	return p
}

func (p *PKI) write(name string, data []byte, mode os.FileMode) {
	p.t.Helper()
	// Write beside and rename, as an operator rotating a file should, so a
	// reader never sees half a file.
	tmp := filepath.Join(p.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, mode); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.Dir, name)); err != nil {
		p.t.Fatal(err)
	}
}

// IssueNode writes (or replaces) node id's certificate and key for hosts.
func (p *PKI) IssueNode(id uint32, hosts ...string) config.TLSFiles {
	p.t.Helper()
	c, k, err := p.CA.Issue(pki.Request{CommonName: fmt.Sprintf("node-%d", id), Hosts: hosts, Node: true,
		NotBefore: time.Now(), Validity: p.Validity})
	if err != nil {
		p.t.Fatal(err)
	}
	cf, kf := pki.NodeFiles(id)
	p.write(kf, k, 0o600)
	p.write(cf, c, 0o644)
	return p.NodeFiles(id)
}

// NodeFiles are node id's files, both planes use them.
func (p *PKI) NodeFiles(id uint32) config.TLSFiles {
	cf, kf := pki.NodeFiles(id)
	return config.TLSFiles{CAFile: filepath.Join(p.Dir, pki.CAFile), CertFile: filepath.Join(p.Dir, cf),
		KeyFile: filepath.Join(p.Dir, kf)}
}

// IssueClient writes client name's certificate and key and returns their
// files.
func (p *PKI) IssueClient(name string) config.TLSFiles {
	p.t.Helper()
	c, k, err := p.CA.Issue(pki.Request{CommonName: name, NotBefore: time.Now(), Validity: p.Validity})
	if err != nil {
		p.t.Fatal(err)
	}
	cf, kf := pki.ClientFiles(name)
	p.write(kf, k, 0o600)
	p.write(cf, c, 0o644)
	return config.TLSFiles{CAFile: filepath.Join(p.Dir, pki.CAFile), CertFile: filepath.Join(p.Dir, cf),
		KeyFile: filepath.Join(p.Dir, kf)}
}

// ClientTLS returns a TLS configuration with client name's certificate
// (issued on first use) that trusts this CA.
func (p *PKI) ClientTLS(name string) *tls.Config {
	p.t.Helper()
	f := p.IssueClient(name)
	cfg, err := client.LoadTLSConfig(f.CAFile, f.CertFile, f.KeyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	return cfg
}

// both sets both planes of c to files.
func both(c *config.Config, files config.TLSFiles) {
	c.TLS = config.TLSConfig{Peer: files, Client: files}
}

// dialOption is how test helpers dial a node's client port: with the test
// client's certificate when the cluster runs TLS.
func dialOption(cfg *tls.Config) grpc.DialOption {
	if cfg == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// loadTLS loads the planes cfg enables, as dlock serve does.
func loadTLS(cfg *config.Config, logger *slog.Logger) (node.PeerTLS, *tls.Config, error) {
	peer, cl, err := mtls.FromConfig(cfg.TLS, logger)
	if err != nil {
		return nil, nil, err
	}
	var peerTLS node.PeerTLS
	var clientTLS *tls.Config
	if peer != nil {
		peerTLS = peer
	}
	if cl != nil {
		clientTLS = cl.ServerConfig()
	}
	return peerTLS, clientTLS, nil
}
