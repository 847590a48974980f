// Package mtls turns a plane's tls config keys into crypto/tls
// configurations for mutual TLS 1.3, and re-reads the files when they
// change, so certificates rotate without a restart.
//
// A caller's duties:
//
//  1. Load each enabled plane (FromConfig does both): it reads and checks the
//     files and fails with *config.KeyError errors naming the key.
//  2. Give ServerConfig to a listener (the peer mux, the client gRPC server)
//     and ClientConfig to each connection the node dials.
//  3. Nothing to stop: a Source has no goroutine. Each handshake compares the
//     files' modification time, size and identity with those last read, and
//     reads them again when one changed. New connections then use the new
//     certificate and CA; open connections keep theirs. A change that fails
//     to load (half-written, mismatched key, not signed by the CA) is logged
//     as a warning and the previous certificate stays in use until the files
//     change again.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
)

// Plane says which plane a Source secures; the peer plane asks more of
// the certificates it accepts.
type Plane int

const (
	// Client is the client port: any certificate the CA signed for client
	// use is accepted.
	Client Plane = iota
	// Peer is the peer port: the other side must present a node
	// certificate (signed for both server and client use), so a client
	// certificate from a CA shared by both planes cannot speak Raft.
	Peer
)

// Source holds one plane's CA pool and this node's certificate, read from
// files and read again when they change. It is safe for concurrent use.
type Source struct {
	key   string // "tls.peer" or "tls.client"
	files config.TLSFiles
	plane Plane
	log   *slog.Logger

	mu     sync.Mutex
	stamps [3]stamp // of ca, cert, key when last read
	mat    material
}

// material is what one successful read of the files gives.
type material struct {
	pool *x509.CertPool
	pair *tls.Certificate
}

// FromConfig loads the planes c enables; a nil Source is a plaintext plane.
// Errors name the key, e.g. "tls.peer.cert_file: open x.pem: no such file
// or directory".
func FromConfig(c config.TLSConfig, log *slog.Logger) (peer, client *Source, err error) {
	var errs []error
	if c.Peer.Enabled() {
		peer, err = Load("tls.peer", c.Peer, Peer, log)
		errs = append(errs, err)
	}
	if c.Client.Enabled() {
		client, err = Load("tls.client", c.Client, Client, log)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return peer, client, nil
}

// Load reads a plane's files. key is the plane's config key, used in
// errors and log lines.
func Load(key string, f config.TLSFiles, plane Plane, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Source{key: key, files: f, plane: plane, log: log}
	s.stamps = s.stat()
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	s.mat = m
	return s, nil
}

// stamp identifies one version of a file.
type stamp struct {
	info os.FileInfo // nil if the file could not be stat'ed
}

func (a stamp) same(b stamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

func (s *Source) paths() [3]string {
	return [3]string{s.files.CAFile, s.files.CertFile, s.files.KeyFile}
}

func (s *Source) stat() [3]stamp {
	var st [3]stamp
	for i, p := range s.paths() {
		if fi, err := os.Stat(p); err == nil {
			st[i].info = fi
		}
	}
	return st
}

// read loads and checks the three files.
func (s *Source) read() (material, error) {
	pool, err := readPool(s.files.CAFile)
	if err != nil {
		return material{}, &config.KeyError{Key: s.key + ".ca_file", Msg: err.Error()}
	}
	certPEM, err := os.ReadFile(s.files.CertFile)
	if err != nil {
		return material{}, &config.KeyError{Key: s.key + ".cert_file", Msg: err.Error()}
	}
	if _, err := leafOf(certPEM); err != nil {
		return material{}, &config.KeyError{Key: s.key + ".cert_file", Msg: fmt.Sprintf("%s: %v", s.files.CertFile, err)}
	}
	keyPEM, err := os.ReadFile(s.files.KeyFile)
	if err != nil {
		return material{}, &config.KeyError{Key: s.key + ".key_file", Msg: err.Error()}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return material{}, &config.KeyError{Key: s.key + ".key_file", Msg: fmt.Sprintf("%s: %v", s.files.KeyFile, err)}
	}
	if s.plane != Peer {
		// A client-plane certificate may come from another CA than the one that signs clients.
		return material{pool: pool, pair: &pair}, nil
	}
	if err := checkOwn(pair.Leaf, pool, pair.Certificate); err != nil {
		return material{}, &config.KeyError{Key: s.key + ".cert_file",
			Msg: fmt.Sprintf("%s: %v (the node's own certificate must verify against %s.ca_file for server and client use)", s.files.CertFile, err, s.key)}
	}
	return material{pool: pool, pair: &pair}, nil
}

func readPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// leafOf parses the first certificate of a PEM chain.
func leafOf(chain []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, chain = pem.Decode(chain)
		if b == nil {
			return nil, errors.New("no PEM certificate in it")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// checkOwn verifies a node's own peer certificate against the peer CA for
// both uses, as its peers will.
func checkOwn(leaf *x509.Certificate, pool *x509.CertPool, chain [][]byte) error {
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return err
		}
	}
	return nil
}

// current returns the material to use now, reading the files again if
// they changed since they were last read.
func (s *Source) current() material {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stat()
	changed := false
	for i := range st {
		if !st[i].same(s.stamps[i]) {
			changed = true
		}
	}
	if !changed {
		return s.mat
	}
	// Remember what was seen either way: a bad version is reported once,
	// and read again only once the files change again.
	s.stamps = st
	m, err := s.read()
	if err != nil {
		s.log.Warn("TLS files changed but cannot be used; keeping the previous certificate", "plane", s.key, "err", err)
		return s.mat
	}
	s.mat = m
	s.log.Info("TLS files reloaded", "plane", s.key, "serial", m.pair.Leaf.SerialNumber.String(),
		"not_after", m.pair.Leaf.NotAfter.Format(time.RFC3339))
	return m
}

// ServerConfig returns the configuration for a listener of the plane: TLS
// 1.3 only, this node's certificate, and a client certificate required and
// verified against the CA (on the peer plane, a node certificate). Each
// handshake takes the files' current version. It offers ALPN "h2" for gRPC.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				NextProtos:   []string{"h2"},
				Certificates: []tls.Certificate{*m.pair},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.pool,
			}
			if s.plane == Peer {
				c.VerifyConnection = requireNodeCertificate
			}
			return c, nil
		},
	}
}

// ClientConfig returns the configuration for one connection to a peer
// dialled as serverName (its host, a DNS name or an IP address): TLS 1.3,
// this node's certificate, the peer's verified against the CA and
// serverName. Call it per connection: it takes the files' current version.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	m := s.current()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ServerName:   serverName,
		RootCAs:      m.pool,
		Certificates: []tls.Certificate{*m.pair},
	}
}

// requireNodeCertificate refuses a peer whose (already verified) client
// certificate is not also for server use: a client certificate.
func requireNodeCertificate(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("dlock: peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil
	}
	return fmt.Errorf("dlock: certificate %q is not a node certificate (no server-auth usage); the peer port takes nodes only", leaf.Subject.CommonName)
}
