package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
)

func parse(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM block in %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The files of a plan verify: every certificate chains to the CA, nodes
// for server and client use with their hosts and loopback as names,
// clients for client use only with their name as CommonName; keys are
// private to their owner, and nothing is overwritten without asking.
func TestPlanFilesVerify(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	plan := Plan{Nodes: []Node{{ID: 1, Hosts: []string{"10.0.0.1", "node1.example"}}, {ID: 2, Hosts: []string{"raft_peer2"}}},
		Clients: []string{"alice", "svc-backup"}, Now: now}
	files, err := plan.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteFiles(dir, files, false); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	ca := parse(t, read(CAFile))
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA: IsCA %v, key %v; want a CA with an ECDSA key", ca.IsCA, ca.PublicKeyAlgorithm)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	for _, tt := range []struct {
		file, dns string
		usage     x509.ExtKeyUsage
		wantCN    string
		wantIPs   []string
	}{
		{"node-1.pem", "node1.example", x509.ExtKeyUsageServerAuth, "node-1", []string{"10.0.0.1", "127.0.0.1", "::1"}},
		{"node-1.pem", "localhost", x509.ExtKeyUsageClientAuth, "node-1", nil},
		{"node-2.pem", "raft_peer2", x509.ExtKeyUsageServerAuth, "node-2", []string{"127.0.0.1"}},
		{"client-alice.pem", "", x509.ExtKeyUsageClientAuth, "alice", nil},
		{"client-svc-backup.pem", "", x509.ExtKeyUsageClientAuth, "svc-backup", nil},
	} {
		t.Run(tt.file+"/"+tt.dns, func(t *testing.T) {
			c := parse(t, read(tt.file))
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.dns, KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
				t.Fatalf("verify for %q, usage %v: %v", tt.dns, tt.usage, err)
			}
			if c.Subject.CommonName != tt.wantCN {
				t.Fatalf("CommonName %q, want %q", c.Subject.CommonName, tt.wantCN)
			}
			if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 || c.IsCA {
				t.Fatalf("key usage %v, IsCA %v; want digital signature, not a CA", c.KeyUsage, c.IsCA)
			}
			for _, ip := range tt.wantIPs {
				if !slices.ContainsFunc(c.IPAddresses, func(x net.IP) bool { return x.Equal(net.ParseIP(ip)) }) {
					t.Fatalf("IP SANs %v lack %s", c.IPAddresses, ip)
				}
			}
		})
	}
	client := parse(t, read("client-alice.pem"))
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verifies for server use; want client use only")
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(f.Path, "-key.pem") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), want)
		}
	}

	// Again into the same directory: refused, and nothing changes.
	before := read("ca.pem")
	again, err := Plan{Nodes: []Node{{ID: 1}}}.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteFiles(dir, again, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write = %v, want a refusal naming --force", err)
	}
	if string(read("ca.pem")) != string(before) {
		t.Fatal("a refused write changed ca.pem")
	}
}

// Bad plans are refused with every problem named, before anything is made.
func TestPlanCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		give Plan
		want string
	}{
		{"empty", Plan{}, "nothing to issue"},
		{"id 0", Plan{Nodes: []Node{{ID: 0}}}, "node id 0 is reserved"},
		{"repeated node", Plan{Nodes: []Node{{ID: 1}, {ID: 1}}}, "node 1 given twice"},
		{"host with port", Plan{Nodes: []Node{{ID: 1, Hosts: []string{"10.0.0.1:14005"}}}}, "give hosts without ports"},
		{"client name with slash", Plan{Clients: []string{"a/b"}}, `'/' not allowed`},
		{"client name starting with dot", Plan{Clients: []string{".x"}}, "must not start with"},
		{"repeated client", Plan{Clients: []string{"a", "a"}}, `client "a" given twice`},
		{"validity too long", Plan{Clients: []string{"a"}, Validity: ValidityMax + 1}, "validity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.give.Files(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Files() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseNode(t *testing.T) {
	for _, tt := range []struct {
		give    string
		want    Node
		wantErr string
	}{
		{"1=10.0.0.1,node1", Node{ID: 1, Hosts: []string{"10.0.0.1", "node1"}}, ""},
		{"2=", Node{ID: 2}, ""},
		{"x=host", Node{}, "is not a number"},
		{"host", Node{}, "no '='"},
	} {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseNode(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseNode(%q) = %v, want %q", tt.give, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.ID != tt.want.ID || !slices.Equal(got.Hosts, tt.want.Hosts) {
				t.Fatalf("ParseNode(%q) = %+v, %v; want %+v", tt.give, got, err, tt.want)
			}
		})
	}
}
