// Package pki issues the certificates dlock's mutual TLS runs on: a
// development certificate authority, node certificates (server and client
// usage, with the node's hosts as subject alternative names) and client
// certificates (client usage, the client's name as Subject CommonName, which
// access control reads as the principal). ECDSA P-256 keys, standard library
// only.
//
// A caller's duties:
//
//  1. Build a Plan: the nodes with their hosts, the client names.
//  2. Call Plan.Files: it checks the plan, creates the CA and issues every
//     certificate, all in memory.
//  3. Write the files with config.WriteFiles, which refuses to overwrite
//     unless told to and gives keys mode 0600.
//
// The CA's key is written beside its certificate so that more certificates
// can be issued later with any tool; it is a development CA. Production
// clusters should use their own PKI and point the tls keys at its files.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
)

// Defaults and bounds of a Plan.
const (
	// DefaultValidity is how long issued node and client certificates are valid.
	DefaultValidity = 365 * 24 * time.Hour
	// ValidityMax bounds Plan.Validity.
	ValidityMax = 10 * 365 * 24 * time.Hour
	// caValidity is the CA's lifetime: longer than any certificate it issues.
	caValidity = ValidityMax + 30*24*time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = 5 * time.Minute
	// NameBytesMax bounds a client name (its certificate's CommonName).
	NameBytesMax = 64
	// HostsMax bounds the hosts of one node.
	HostsMax = 32
	// ClientsMax and NodesMax bound a plan.
	ClientsMax = 64
	NodesMax   = config.MembersMax
)

// Node is one node to issue a certificate for.
type Node struct {
	ID uint32
	// Hosts are the DNS names and IP addresses peers and clients dial it by.
	// 127.0.0.1, ::1 and localhost are always added.
	Hosts []string
}

// Plan says which certificates to issue.
type Plan struct {
	Nodes   []Node
	Clients []string
	// Validity of node and client certificates; 0 means DefaultValidity.
	Validity time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// File names inside the output directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// NodeFiles returns the certificate and key file names of node id.
func NodeFiles(id uint32) (cert, key string) {
	return fmt.Sprintf("node-%d.pem", id), fmt.Sprintf("node-%d-key.pem", id)
}

// ClientFiles returns the certificate and key file names of client name.
func ClientFiles(name string) (cert, key string) {
	return "client-" + name + ".pem", "client-" + name + "-key.pem"
}

// ParseNode reads "ID=HOST[,HOST...]", e.g. "1=10.0.0.1,node1.dlock.internal".
func ParseNode(spec string) (Node, error) {
	const form = "want ID=HOST[,HOST...], e.g. 1=10.0.0.1,node1.example"
	idText, hosts, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if !ok {
		return Node{}, fmt.Errorf("node %q: no '='; %s", spec, form)
	}
	var id uint32
	if _, err := fmt.Sscan(idText, &id); err != nil || id == 0 || fmt.Sprint(id) != strings.TrimSpace(idText) {
		return Node{}, fmt.Errorf("node %q: id %q is not a number in 1..4294967295", spec, idText)
	}
	n := Node{ID: id}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			n.Hosts = append(n.Hosts, h)
		}
	}
	return n, nil
}

// Check reports every problem with the plan, joined.
func (p Plan) Check() error {
	var errs []error
	if len(p.Nodes) == 0 && len(p.Clients) == 0 {
		errs = append(errs, errors.New("nothing to issue: give at least one node or client"))
	}
	if len(p.Nodes) > NodesMax {
		errs = append(errs, fmt.Errorf("%d nodes above %d", len(p.Nodes), NodesMax))
	}
	if len(p.Clients) > ClientsMax {
		errs = append(errs, fmt.Errorf("%d clients above %d", len(p.Clients), ClientsMax))
	}
	if p.Validity < 0 || p.Validity > ValidityMax {
		errs = append(errs, fmt.Errorf("validity %s: want 0 (default %s) up to %s", p.Validity, DefaultValidity, ValidityMax))
	}
	ids := map[uint32]bool{}
	for _, n := range p.Nodes {
		if n.ID == 0 {
			errs = append(errs, errors.New("node id 0 is reserved; use 1..4294967295"))
		}
		if ids[n.ID] {
			errs = append(errs, fmt.Errorf("node %d given twice", n.ID))
		}
		ids[n.ID] = true
		if len(n.Hosts) > HostsMax {
			errs = append(errs, fmt.Errorf("node %d: %d hosts above %d", n.ID, len(n.Hosts), HostsMax))
		}
		for _, h := range n.Hosts {
			if err := checkHost(h); err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", n.ID, err))
			}
		}
	}
	names := map[string]bool{}
	for _, c := range p.Clients {
		if err := CheckClientName(c); err != nil {
			errs = append(errs, err)
		}
		if names[c] {
			errs = append(errs, fmt.Errorf("client %q given twice", c))
		}
		names[c] = true
	}
	return errors.Join(errs...)
}

// CheckClientName accepts 1..NameBytesMax letters, digits and ._@- not
// starting with '.' or '-': the name is both a CommonName and part of file
// names.
func CheckClientName(name string) error {
	if name == "" || len(name) > NameBytesMax {
		return fmt.Errorf("client name %q: want 1 to %d characters", name, NameBytesMax)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)
		if !ok {
			return fmt.Errorf("client name %q: %q not allowed; use letters, digits and ._@-", name, r)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("client name %q: must not start with %q", name, name[0])
	}
	return nil
}

func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if strings.ContainsAny(h, ":/ ") || len(h) > 253 {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name (give hosts without ports)", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q is not a DNS name", h)
		}
	}
	return nil
}

// Files checks the plan, creates a CA and issues every certificate. Keys
// get mode 0600, certificates 0644.
func (p Plan) Files() ([]config.GenFile, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	ca, err := NewCA("dlock development CA", now)
	if err != nil {
		return nil, err
	}
	return p.IssueWith(ca)
}

// IssueWith checks the plan and issues every certificate with ca; the
// files include ca's certificate and key.
func (p Plan) IssueWith(ca *CA) ([]config.GenFile, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	validity := p.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	caKey, err := EncodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	files := []config.GenFile{
		{Path: CAFile, Data: ca.CertPEM(), Mode: 0o644},
		{Path: CAKeyFile, Data: caKey, Mode: 0o600},
	}
	for _, n := range p.Nodes {
		c, k, err := ca.Issue(Request{CommonName: fmt.Sprintf("node-%d", n.ID), Hosts: n.Hosts, Node: true,
			NotBefore: now, Validity: validity})
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", n.ID, err)
		}
		cf, kf := NodeFiles(n.ID)
		files = append(files, config.GenFile{Path: cf, Data: c, Mode: 0o644}, config.GenFile{Path: kf, Data: k, Mode: 0o600})
	}
	for _, name := range p.Clients {
		c, k, err := ca.Issue(Request{CommonName: name, NotBefore: now, Validity: validity})
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", name, err)
		}
		cf, kf := ClientFiles(name)
		files = append(files, config.GenFile{Path: cf, Data: c, Mode: 0o644}, config.GenFile{Path: kf, Data: k, Mode: 0o600})
	}
	return files, nil
}

// CA is a certificate authority in memory.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA named cn, valid from now.
func NewCA(cn string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"dlock"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM is the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Request describes one certificate to issue.
type Request struct {
	CommonName string
	// Hosts become DNS or IP subject alternative names (nodes only).
	Hosts []string
	// Node asks for server and client usage and adds the loopback names;
	// otherwise the certificate is for clients only.
	Node      bool
	NotBefore time.Time
	Validity  time.Duration
}

// Issue signs a new key's certificate for r and returns both in PEM.
func (ca *CA) Issue(r Request) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.CommonName, Organization: []string{"dlock"}},
		NotBefore:    r.NotBefore.Add(-backdate),
		NotAfter:     r.NotBefore.Add(r.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if r.Node {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		addSANs(tmpl, append(slices.Clone(r.Hosts), "127.0.0.1", "::1", "localhost"))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), crypto.Signer(ca.Key))
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %q: %w", r.CommonName, err)
	}
	keyPEM, err = EncodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// addSANs adds each distinct host as an IP or DNS subject alternative name.
func addSANs(tmpl *x509.Certificate, hosts []string) {
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

// EncodeKey returns key as a PKCS #8 "PRIVATE KEY" PEM block.
func EncodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial returns a random 128-bit serial number.
func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}
