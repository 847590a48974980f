package node

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/mtls"
	"github.com/dlock-raft/dlock/internal/pki"
)

// issue writes a certificate of ca under dir and returns the plane files.
func issue(t *testing.T, dir string, ca *pki.CA, name string, node bool) config.TLSFiles {
	t.Helper()
	c, k, err := ca.Issue(pki.Request{CommonName: name, Hosts: []string{"127.0.0.1"}, Node: node, NotBefore: time.Now(), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := config.TLSFiles{CAFile: filepath.Join(dir, name+"-ca.pem"), CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
	for p, data := range map[string][]byte{f.CAFile: ca.CertPEM(), f.CertFile: c, f.KeyFile: k} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func tlsMux(t *testing.T, src PeerTLS) *mux {
	t.Helper()
	ln, err := freeport.Listen("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, ln.Addr().String(), src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { m.Close() })
	return m
}

// The peer port with tls.peer set takes only TLS connections from nodes
// of its CA: a node of another CA, a client certificate of the same CA and
// a plaintext peer are refused before they can say which protocol they
// speak; a node of the CA reaches Raft.
func TestPeerPortTakesOnlyNodesOfItsCA(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t), newCA(t)
	load := func(f config.TLSFiles) *mtls.Source {
		s, err := mtls.Load("tls.peer", f, mtls.Peer, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	server := tlsMux(t, load(issue(t, dir, ca, "node-1", true)))
	addr := server.ln.Addr().String()

	clientCert := issue(t, dir, ca, "alice", false)
	clientOnly, err := tls.LoadX509KeyPair(clientCert.CertFile, clientCert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	foreign := load(issue(t, dir, other, "node-9", true)).ClientConfig("127.0.0.1")
	foreign.RootCAs = load(issue(t, dir, ca, "node-2", true)).ClientConfig("127.0.0.1").RootCAs // it trusts us
	sameCA := load(issue(t, dir, ca, "node-3", true)).ClientConfig("127.0.0.1")
	withClientCert := sameCA.Clone()
	withClientCert.Certificates = []tls.Certificate{clientOnly}

	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"a node certificate of another CA", foreign, "remote error: tls: unknown certificate authority"},
		{"a client certificate of the same CA", withClientCert, "remote error: tls: bad certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := tls.Client(dialRaw(t, addr), tt.cfg)
			defer conn.Close()
			err := conn.Handshake()
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("peer connection = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		conn := dialRaw(t, addr)
		defer conn.Close()
		if _, err := conn.Write([]byte{protoRaft}); err != nil {
			t.Fatal(err)
		}
		if n, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatalf("plaintext peer read %d bytes, want the connection closed", n)
		}
	})

	// A node of the CA, dialling through its own mux, reaches Raft, and
	// its bytes arrive intact.
	peer := tlsMux(t, load(issue(t, dir, ca, "node-4", true)))
	conn, err := peer.dial(addr, 5*time.Second, protoRaft)
	if err != nil {
		t.Fatalf("dial as a node of the CA: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := server.raft.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	buf := make([]byte, 5)
	_ = got.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(got, buf); err != nil || !bytes.Equal(buf, []byte("hello")) {
		t.Fatalf("Raft listener read %q, %v; want the first connection it gets to be the node's, saying hello", buf, err)
	}
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}
