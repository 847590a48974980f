package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/server"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial int64

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "dlock test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for cn, for a server (on 127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, cn string, isServer bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if isServer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveExtra serves the API of cluster node 0 on another listener, with
// its own options, until the test ends. Only calls that never wait for a
// grant are made through it.
func serveExtra(t *testing.T, c *testcluster.InProcess, opts server.Options) string {
	t.Helper()
	ln, err := freeport.Listen("127.0.0.1") // not a port probed for a node that restarts
	if err != nil {
		t.Fatal(err)
	}
	opts.Limits = c.Configs[0].Limits
	srv := server.New(c.Node(0), server.NewWaiters(), opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ln.Addr().String()
}

func dialTLS(t *testing.T, addr string, ca *testCA, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func codeOf(err error) codes.Code { return status.Code(err) }

// TestAccessByClientCertificate: a verified client certificate's Subject
// CommonName names the principal; without a certificate or token the call
// is Unauthenticated; a certificate naming no principal is authenticated
// but permitted nothing; a token on a plaintext connection is refused
// unless auth.allow_insecure_tokens.
func TestAccessByClientCertificate(t *testing.T) {
	c := testcluster.StartInProcessWith(t, 1, withAuth)
	ctx := ctxFor(t)
	rootTok, err := aclClient(t, c.Endpoints(), "").Bootstrap(ctx, "root")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	root := aclClient(t, c.Endpoints(), rootTok.Secret)
	if err := root.AddPrincipal(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if err := root.Grant(ctx, "svc", client.Rule{Permission: client.PermWrite, Prefix: "svc/"}); err != nil {
		t.Fatal(err)
	}

	ca := newTestCA(t)
	strict := config.AuthConfig{Enabled: true} // tokens only over TLS
	tlsAddr := serveExtra(t, c, server.Options{Auth: strict, TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "node", true)},
		ClientCAs:    ca.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS13,
	}})
	plainAddr := serveExtra(t, c, server.Options{Auth: strict})

	svcCert, strangerCert := ca.issue(t, "svc", false), ca.issue(t, "stranger", false)
	svc := dialTLS(t, tlsAddr, ca, &svcCert)
	who, err := dlockv1.NewAclClient(svc).WhoAmI(ctx, &dlockv1.WhoAmIRequest{})
	if err != nil || who.GetPrincipal() != "svc" || who.GetAuthenticatedBy() != "certificate" {
		t.Fatalf("whoami with svc's certificate: %v, %v; want svc by certificate", who, err)
	}
	kv := dlockv1.NewKVClient(svc)
	if _, err := kv.Put(ctx, &dlockv1.PutRequest{Key: "svc/a", Value: []byte("v")}); err != nil {
		t.Fatalf("svc puts svc/a: %v", err)
	}
	if _, err := kv.Put(ctx, &dlockv1.PutRequest{Key: "other/a", Value: []byte("v")}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("svc puts other/a: got %v, want PermissionDenied", err)
	}

	stranger := dialTLS(t, tlsAddr, ca, &strangerCert)
	if _, err := dlockv1.NewKVClient(stranger).Put(ctx, &dlockv1.PutRequest{Key: "svc/b", Value: []byte("v")}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("a certificate naming no principal: got %v, want PermissionDenied", err)
	}
	noCert := dialTLS(t, tlsAddr, ca, nil)
	if _, err := dlockv1.NewKVClient(noCert).Get(ctx, &dlockv1.GetRequest{Key: "svc/a"}); codeOf(err) != codes.Unauthenticated {
		t.Fatalf("TLS without a certificate or token: got %v, want Unauthenticated", err)
	}
	bearer := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+rootTok.Secret)
	if _, err := dlockv1.NewKVClient(noCert).Get(bearer, &dlockv1.GetRequest{Key: "svc/a"}); err != nil {
		t.Fatalf("root's token over TLS: %v", err)
	}

	plain, err := grpc.NewClient(plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := dlockv1.NewKVClient(plain).Get(bearer, &dlockv1.GetRequest{Key: "svc/a"}); codeOf(err) != codes.Unauthenticated {
		t.Fatalf("a token without TLS, insecure tokens off: got %v, want Unauthenticated", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic abc")
	if _, err := dlockv1.NewKVClient(noCert).Get(bad, &dlockv1.GetRequest{Key: "svc/a"}); codeOf(err) != codes.Unauthenticated {
		t.Fatalf("a malformed authorization header: got %v, want Unauthenticated", err)
	}
}

// TestTokenNeedsTLSInTheClient: WithToken without AllowInsecureToken
// refuses a connection without TLS, so the token is never sent in
// plaintext.
func TestTokenNeedsTLSInTheClient(t *testing.T) {
	_, err := client.New([]string{"127.0.0.1:1"}, client.WithToken(client.NewTokenSecret()))
	if !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "transport level security") {
		t.Fatalf("got %v, want ErrInvalid: the token needs transport security", err)
	}
}
