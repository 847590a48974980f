package client

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// WithTLS makes the client dial every endpoint over TLS with cfg (a clone of it; cfg is not kept). For a
// cluster whose client port runs mutual TLS (tls.client in the node's config), cfg must carry a client
// certificate the cluster's client CA signed, and RootCAs that verify the nodes' certificates; the
// client checks each node's certificate against the host of the endpoint it dials, so endpoints must
// use a name or address the node's certificate lists. LoadTLSConfig builds such a cfg from PEM files.
// Default: plaintext. A nil cfg is an error wrapping ErrInvalid.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return invalidf("TLS config is nil")
		}
		o.tls = cfg.Clone()
		return nil
	}
}

// LoadTLSConfig reads a TLS configuration for WithTLS from PEM files: caFile, the CA certificate(s)
// that verify the nodes (empty: the system's roots), and certFile and keyFile, this client's
// certificate and key (both empty: no client certificate, which a mutual-TLS cluster refuses). The files
// are read once: a long-running client that rotates its certificate builds its own tls.Config with
// GetClientCertificate. Errors name the file and wrap ErrInvalid.
func LoadTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, invalidf("CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, invalidf("CA file %q: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, invalidf("certificate %q and key %q: give both or neither", certFile, keyFile)
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, invalidf("certificate %q, key %q: %v", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
