package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/dlock-raft/dlock/client"
)

// Environment variables that set the defaults of --cacert, --cert and --key.
const (
	EnvCACert = "DLOCK_CACERT"
	EnvCert   = "DLOCK_CERT"
	EnvKey    = "DLOCK_KEY"
)

// tlsFlags are the client TLS flags of a command group. Any of them set turns TLS on.
type tlsFlags struct {
	caCert, cert, key string
}

func addTLSFlags(pf *pflag.FlagSet, f *tlsFlags) {
	pf.StringVar(&f.caCert, "cacert", os.Getenv(EnvCACert),
		"PEM file of the CA that signed the nodes' certificates; turns TLS on; default from $"+EnvCACert)
	pf.StringVar(&f.cert, "cert", os.Getenv(EnvCert),
		"PEM file of this client's certificate, for clusters with mutual TLS; default from $"+EnvCert)
	pf.StringVar(&f.key, "key", os.Getenv(EnvKey), "PEM file of --cert's private key; default from $"+EnvKey)
}

// options returns the client options the flags ask for: none when no flag is set.
func (f tlsFlags) options() ([]client.Option, error) {
	if f.caCert == "" && f.cert == "" && f.key == "" {
		return nil, nil
	}
	if (f.cert == "") != (f.key == "") {
		return nil, UsageError(fmt.Errorf("--cert %q and --key %q: give both or neither", f.cert, f.key))
	}
	cfg, err := client.LoadTLSConfig(f.caCert, f.cert, f.key)
	if err != nil {
		return nil, UsageError(fmt.Errorf("--cacert/--cert/--key: %w", err))
	}
	return []client.Option{client.WithTLS(cfg)}, nil
}
