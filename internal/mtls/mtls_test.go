package mtls

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/pki"
)

type fixture struct {
	t   testing.TB
	dir string
	ca  *pki.CA
}

func newFixture(t testing.TB) *fixture {
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), ca: ca}
	f.write("ca.pem", ca.CertPEM())
	return f
}

func (f *fixture) write(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// node issues a node certificate with validity v and writes it as node.pem.
func (f *fixture) node(v time.Duration) config.TLSFiles {
	f.t.Helper()
	c, k, err := f.ca.Issue(pki.Request{CommonName: "node-1", Hosts: []string{"127.0.0.1"}, Node: true, NotBefore: time.Now(), Validity: v})
	if err != nil {
		f.t.Fatal(err)
	}
	return config.TLSFiles{CAFile: filepath.Join(f.dir, "ca.pem"), KeyFile: f.write("node-key.pem", k), CertFile: f.write("node.pem", c)}
}

// Load names the key of the file it cannot use.
func TestLoadErrorsNameTheKey(t *testing.T) {
	f := newFixture(t)
	good := f.node(time.Hour)
	other := newFixture(t).node(time.Hour)
	garbage := f.write("garbage.pem", []byte("hello"))
	for _, tt := range []struct {
		name    string
		give    func(config.TLSFiles) config.TLSFiles
		wantKey string
		wantMsg string
	}{
		{"missing CA", func(c config.TLSFiles) config.TLSFiles { c.CAFile = "/nonexistent/ca.pem"; return c }, "tls.peer.ca_file", "no such file"},
		{"CA not PEM", func(c config.TLSFiles) config.TLSFiles { c.CAFile = garbage; return c }, "tls.peer.ca_file", "no PEM certificate"},
		{"missing cert", func(c config.TLSFiles) config.TLSFiles { c.CertFile = "/nonexistent/c.pem"; return c }, "tls.peer.cert_file", "no such file"},
		{"cert not PEM", func(c config.TLSFiles) config.TLSFiles { c.CertFile = garbage; return c }, "tls.peer.cert_file", "no PEM certificate"},
		{"missing key", func(c config.TLSFiles) config.TLSFiles { c.KeyFile = "/nonexistent/k.pem"; return c }, "tls.peer.key_file", "no such file"},
		{"key of another certificate", func(c config.TLSFiles) config.TLSFiles { c.KeyFile = other.KeyFile; return c }, "tls.peer.key_file", "does not match"},
		{"cert of another CA", func(c config.TLSFiles) config.TLSFiles {
			c.CertFile, c.KeyFile = other.CertFile, other.KeyFile
			return c
		}, "tls.peer.cert_file", "unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("tls.peer", tt.give(good), Peer, nil)
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tt.wantKey || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Load = %v, want a KeyError for %s mentioning %q", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

// A listener built on ServerConfig presents the files' current certificate
// to each new connection; a replacement that cannot be used is logged and
// the previous certificate stays.
func TestServerConfigFollowsTheFiles(t *testing.T) {
	f := newFixture(t)
	files := f.node(time.Hour)
	logs := &lockedBuffer{}
	src, err := Load("tls.client", files, Client, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	dial := func() string {
		t.Helper()
		cfg := src.ClientConfig("127.0.0.1") // a client with the node's own certificate will do
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := dial()
	f.node(2 * time.Hour)
	second := dial()
	if second == first {
		t.Fatalf("after replacing the files the listener presents serial %s again, want a new one", first)
	}
	f.write("node.pem", []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	if got := dial(); got != second {
		t.Fatalf("after a broken replacement the listener presents %s, want the previous %s", got, second)
	}
	if !strings.Contains(logs.String(), "keeping the previous certificate") || !strings.Contains(logs.String(), "tls.client.cert_file") {
		t.Fatalf("log = %q, want a warning naming tls.client.cert_file", logs.String())
	}
}

// lockedBuffer is a log sink the server's goroutine writes and the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The CA file is read again too: a client of a new CA is refused until the
// node's ca_file holds that CA beside the old one, then accepted, without
// a restart (a CA rotation's first step).
func TestCAFileFollowsTheFiles(t *testing.T) {
	f := newFixture(t)
	files := f.node(time.Hour)
	src, err := Load("tls.client", files, Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if c.(*tls.Conn).Handshake() == nil {
				_, _ = c.Write([]byte("y"))
			}
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()

	newCA, err := pki.NewCA("new CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := newCA.Issue(pki.Request{CommonName: "alice", NotBefore: time.Now(), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	call := func() error {
		t.Helper()
		cfg := src.ClientConfig("127.0.0.1") // trusts the node's CA
		// Present it whatever CAs the node says it accepts.
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := call(); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Fatalf("client of the new CA before the CA file has it: %v, want refused as of an unknown CA", err)
	}
	f.write("ca.pem", append(f.ca.CertPEM(), newCA.CertPEM()...))
	if err := call(); err != nil {
		t.Fatalf("client of the new CA once the CA file holds both CAs: %v, want accepted", err)
	}
}
