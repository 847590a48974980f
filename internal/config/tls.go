package config

// TLSConfig turns on mutual TLS, per plane. A plane whose three keys are all empty stays plaintext, so
// a file without a tls section (every seed file) runs as before. Both planes are independent: a cluster
// may encrypt its peer plane only, its client plane only, or both. The files are read when the node
// starts and again whenever they change on disk (see docs/security.md); their content is checked then,
// not by Validate. Optional section; default empty (plaintext on both planes).
type TLSConfig struct {
	// Peer secures the peer port (Raft and the peer service): the node accepts only TLS 1.3 connections
	// whose client certificate CA signed for both server and client use (a node certificate), and it
	// dials its peers with CertFile, checking their certificates against CA and the dialled host name.
	Peer TLSFiles `yaml:"peer,omitempty"`
	// Client secures the client port: clients must present a certificate CA signed; the node presents
	// CertFile, which must name the hosts clients dial.
	Client TLSFiles `yaml:"client,omitempty"`
}

// TLSFiles are one plane's PEM files. Set all three or none.
type TLSFiles struct {
	// CAFile holds the CA certificate(s) that sign the other side's certificates, PEM.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile is this node's certificate (chain), PEM; its leaf is signed by a CA in CAFile.
	CertFile string `yaml:"cert_file,omitempty"`
	// KeyFile is CertFile's private key, PEM (PKCS #8, PKCS #1 or SEC 1). Keep it mode 0600.
	KeyFile string `yaml:"key_file,omitempty"`
}

// Enabled reports whether any of the plane's keys is set.
func (f TLSFiles) Enabled() bool { return f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" }

func (c *Config) validateTLS(p *problems) {
	for _, plane := range []struct {
		key   string
		files TLSFiles
	}{{"tls.peer", c.TLS.Peer}, {"tls.client", c.TLS.Client}} {
		f := plane.files
		if !f.Enabled() {
			continue
		}
		for _, k := range []struct{ name, v string }{{"ca_file", f.CAFile}, {"cert_file", f.CertFile}, {"key_file", f.KeyFile}} {
			if k.v == "" {
				p.add(plane.key+"."+k.name, "empty, but %s sets other keys; give all of ca_file, cert_file and key_file, or none", plane.key)
			}
		}
	}
}
